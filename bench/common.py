"""What the benchmarks that run the real services share: their own database and broker."""

import subprocess


def fresh_database(url: str) -> None:
    """Drop, create and migrate the PostgreSQL database of `url` (the bench's own), then set
    Django up on it (DATABASE_URL must already name it)."""
    import dj_database_url

    db = dj_database_url.parse(url)
    args = ["-h", db["HOST"] or "127.0.0.1", "-p", str(db["PORT"] or 5432)]
    args += ["-U", db["USER"] or "postgres"]
    subprocess.run(["dropdb", *args, "--if-exists", "--force", db["NAME"]], check=True)
    subprocess.run(["createdb", *args, db["NAME"]], check=True)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def purge_broker(url: str) -> None:
    """Empty the bench's Redis db (and only it): whatever was enqueued and not consumed."""
    import redis

    redis.Redis.from_url(url).flushdb()
