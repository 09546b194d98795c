import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from rest_framework.test import APIClient

from tests.factories import MembershipFactory, ProjectFactory, UserFactory, token_for

# Playwright's sync API runs an event loop in the test thread; the ORM calls the tests
# make beside it are synchronous and safe.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

ROOT = Path(__file__).resolve().parent.parent


def api_client(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(user)}")
    return client


@pytest.fixture
def project(db):
    return ProjectFactory()


@pytest.fixture
def manager(project):
    return MembershipFactory(project=project, role="manager").user


@pytest.fixture
def annotator(project):
    return MembershipFactory(project=project, role="annotator").user


@pytest.fixture
def outsider(db):
    return UserFactory()


@pytest.fixture
def staff(db):
    return UserFactory(is_staff=True)


def _database_url(settings_dict) -> str:
    user = settings_dict.get("USER") or ""
    password = f":{settings_dict['PASSWORD']}" if settings_dict.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    host = settings_dict.get("HOST") or "127.0.0.1"
    if host.startswith("/"):  # a Unix socket folder (the embedded PostgreSQL)
        return f"postgres://{auth}{quote(host, safe='')}/{settings_dict['NAME']}"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{auth}{host}:{port}/{settings_dict['NAME']}"


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker):
    """A real `celery -A config worker` on the broker of CELERY_BROKER_URL, working on the
    test database and on this session's own queue."""
    from django.conf import settings

    from config.celery import app

    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        pytest.skip("the worker tests need DATABASE_URL to point at PostgreSQL")
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    env = dict(
        os.environ,
        DATABASE_URL=_database_url(db),
        DJANGO_SETTINGS_MODULE="config.settings.test",
        CELERY_TASK_DEFAULT_QUEUE=queue,
    )
    app.control.purge()
    log = open(ROOT / "var" / "test-worker.log", "w")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-Q",
            f"{queue},{settings.ANNOTATION_FEATURIZE_QUEUE}",
            "--concurrency=2",
            "--loglevel=INFO",
            "--without-mingle",
            "--without-gossip",
            "-n",
            f"tests-{os.getpid()}@%h",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    name = f"tests-{os.getpid()}@"
    while time.monotonic() < deadline:
        replies = app.control.ping(timeout=1.0)
        if any(name in key for reply in replies for key in reply):
            break
        if proc.poll() is not None:
            raise RuntimeError(
                f"the Celery worker exited with {proc.returncode}; see var/test-worker.log"
            )
    else:
        proc.kill()
        raise RuntimeError("the Celery worker did not answer within 60 s")
    yield proc
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture
def worker(celery_worker_process, transactional_db):
    """A running worker, and a database whose commits it sees."""
    return celery_worker_process


def wait_for(predicate, *, timeout: float = 60.0, interval: float = 0.2, what: str = "condition"):
    """Poll `predicate` until it returns a truthy value; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
