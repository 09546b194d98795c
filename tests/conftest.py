import os
import signal
import subprocess
import sys
import threading
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


@pytest.fixture(autouse=True)
def no_dns_for_webhook_urls(monkeypatch):
    """Webhook URL checks resolve host names (annotation.services.webhooks): in the tests
    only IP literals and localhost resolve, so no DNS query leaves the machine (the API
    fuzzing registers hooks at made-up hosts)."""
    import ipaddress
    import socket

    from annotation.services import webhooks

    real = socket.getaddrinfo

    def local_only(host, *args, **kwargs):
        try:
            ipaddress.ip_address(str(host).split("%", 1)[0])
        except ValueError:
            if host != "localhost":
                raise socket.gaierror(socket.EAI_NONAME, "tests resolve no host names") from None
        return real(host, *args, **kwargs)

    monkeypatch.setattr(webhooks.socket, "getaddrinfo", local_only)


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


class WorkerProcess:
    """A real `celery -A config worker` in its own process group, supervised like
    `make run`'s workers: when it exits (killed whole with SIGKILL, as a lost machine, or
    after an unrecoverable broker error) it is started again, and `starts` counts it."""

    def __init__(
        self,
        env: dict,
        queues: str,
        name: str,
        log_name: str = "test-worker.log",
        concurrency: int = 2,
    ):
        self.env, self.queues, self.name = env, queues, name
        self.concurrency = concurrency
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.log_path = ROOT / "var" / log_name
        self.log = open(self.log_path, "a")  # noqa: SIM115 (closed in stop)
        self._stopping = threading.Event()
        self._supervisor = threading.Thread(target=self._supervise, daemon=True)

    def _supervise(self) -> None:
        while not self._stopping.wait(0.5):
            if self.proc is not None and self.proc.poll() is not None:
                self.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def start(self) -> None:
        from config.celery import app

        self.starts += 1
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-Q",
                self.queues,
                f"--concurrency={self.concurrency}",
                "--loglevel=INFO",
                "--without-mingle",
                "--without-gossip",
                "-n",
                f"{self.name}@%h",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            replies = app.control.ping(timeout=1.0)
            if any(f"{self.name}@" in key for reply in replies for key in reply):
                if not self._supervisor.is_alive():
                    self._supervisor.start()
                return
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"the Celery worker exited with {self.proc.returncode}; see {self.log_path}"
                )
        self.kill()
        raise RuntimeError("the Celery worker did not answer within 60 s")

    def kill(self) -> None:
        """SIGKILL the worker and its pool processes at once (the supervisor restarts it)."""
        os.killpg(self.proc.pid, signal.SIGKILL)

    def stop(self) -> None:
        self._stopping.set()
        self._supervisor.join(timeout=5)
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker):
    """A real worker (WorkerProcess) on the broker of CELERY_BROKER_URL, working on the
    test database and on this session's own queues."""
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
        # Webhook receivers of the tests listen on 127.0.0.1.
        ANNOTATION_WEBHOOK_ALLOW_PRIVATE="1",
    )
    app.control.purge()
    (ROOT / "var" / "test-worker.log").write_text("")
    worker = WorkerProcess(
        env, f"{queue},{settings.ANNOTATION_FEATURIZE_QUEUE}", f"tests-{os.getpid()}"
    )
    worker.start()
    yield worker
    worker.stop()


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
