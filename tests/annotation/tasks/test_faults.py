"""Faults on real services: a worker process killed mid-round, Redis restarted while
annotators label, the web server restarted."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta
from decimal import Decimal

import numpy as np
import pytest
import requests
from django.db.models import Sum

from annotation.models import Annotation, Item, Project, Round
from tests.conftest import ROOT, _database_url, api_client, wait_for
from tests.factories import MembershipFactory, ProjectFactory, queue, token_for

pytestmark = pytest.mark.worker


def features_project(n: int, *, budget: int, batch: int = 20, dim: int = 16) -> Project:
    """A project of `n` featurized items in 4 clusters (labels by cluster)."""
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(4, dim)) * 4
    clusters = rng.integers(0, 4, size=n)
    X = (centers[clusters] + rng.normal(size=(n, dim))).astype(np.float32)
    project = ProjectFactory(
        kind="features",
        labels=["a", "b", "c", "d"],
        budget=budget,
        batch_size=batch,
        acquisition="vote_entropy",
    )
    Item.objects.bulk_create(
        [
            Item(
                project=project,
                features=x.tolist(),
                vector=x.tobytes(),
                external_id=f"x{i}",
                meta={"cluster": int(c)},
            )
            for i, (x, c) in enumerate(zip(X, clusters, strict=True))
        ]
    )
    return project


def budget_is_consistent(project: Project) -> None:
    project.refresh_from_db()
    queued = Item.objects.filter(project=project, status="queued").aggregate(s=Sum("cost"))["s"]
    labeled = Annotation.objects.filter(item__project=project).aggregate(s=Sum("cost"))["s"]
    assert project.reserved == (queued or Decimal(0))
    assert project.spent == (labeled or Decimal(0))
    assert project.spent + project.reserved <= project.budget


def label_queue(project: Project, user, n: int) -> None:
    client = api_client(user)
    for _ in range(n):
        body = client.post(f"/api/projects/{project.id}/next/").json()
        assert body["state"] == "ok", body
        response = client.post(
            f"/api/projects/{project.id}/annotations/",
            {"item": body["item"]["id"], "label": "abcd"[body["item"]["meta"]["cluster"]]},
            format="json",
        )
        assert response.status_code == 201


def pool_children(worker_pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(worker_pid)], capture_output=True, text=True)
    return [int(pid) for pid in out.stdout.split()]


def test_round_survives_a_worker_process_killed_mid_round(worker):
    project = features_project(6000, budget=200)
    user = MembershipFactory(project=project).user
    # Enough labels for a trained round, queued and labeled through the real paths, with
    # no round starting by itself meanwhile (low-water mark 0).
    Project.objects.filter(pk=project.pk).update(queue_low_water=0)
    queue(project, list(Item.objects.filter(project=project).order_by("id")[:40]))
    label_queue(project, user, 40)
    Project.objects.filter(pk=project.pk).update(queue_low_water=None)
    from annotation.services.rounds import round_maybe_start

    rnd = round_maybe_start(project_id=project.id)
    assert rnd is not None
    wait_for(
        lambda: Round.objects.get(pk=rnd.pk).shard_count > 0, what="the round to dispatch shards"
    )
    victims = pool_children(worker.pid)
    assert victims
    for pid in victims:  # SIGKILL every pool process: whatever shard ran is lost mid-way
        os.kill(pid, signal.SIGKILL)
    wait_for(
        lambda: Round.objects.get(pk=rnd.pk).status != "running",
        timeout=120,
        what="the round to complete after the kill",
    )
    rnd.refresh_from_db()
    assert rnd.status == "done", rnd.error
    assert rnd.queued_count == project.batch_size
    queued = list(
        Item.objects.filter(project=project, status="queued").values_list("id", flat=True)
    )
    assert len(queued) == len(set(queued)) == rnd.queued_count
    budget_is_consistent(project)


def test_hand_out_resumes_within_30_s_of_a_whole_worker_killed_mid_round(worker, settings):
    """The worker and its pool die at once (SIGKILL, a lost machine) while a round scores:
    the round's heartbeat stops, `next` replaces it once stale, and a restarted worker (the
    supervisor, as in `make run`) queues a new batch: hand-out resumes within 30 s, not
    when the broker's visibility timeout (10 minutes) hands the lost messages out again."""
    from annotation.services.rounds import round_maybe_start

    settings.ANNOTATION_ROUND_STALE_SECONDS = 15
    project = features_project(6000, budget=200)
    user = MembershipFactory(project=project).user
    Project.objects.filter(pk=project.pk).update(queue_low_water=0)
    queue(project, list(Item.objects.filter(project=project).order_by("id")[:40]))
    label_queue(project, user, 40)
    Project.objects.filter(pk=project.pk).update(queue_low_water=None)
    # 32 members train for seconds: the kill lands while the round's first step works.
    Project.objects.filter(pk=project.pk).update(ensemble_size=32)
    rnd = round_maybe_start(project_id=project.id)
    wait_for(
        lambda: (lambda r: r.heartbeat_at - r.started_at > timedelta(milliseconds=10))(
            Round.objects.get(pk=rnd.pk)
        ),
        interval=0.05,
        what="the worker to start the round",
    )
    starts = worker.starts
    worker.kill()
    killed = time.monotonic()
    Project.objects.filter(pk=project.pk).update(ensemble_size=5)  # the replacement: quick
    client = api_client(user)
    body = {"state": "waiting"}
    while body["state"] == "waiting" and time.monotonic() - killed < 90:
        body = client.post(f"/api/projects/{project.id}/next/").json()
        time.sleep(0.5)
    resumed = time.monotonic() - killed
    assert body["state"] == "ok", body
    assert resumed < 30, f"hand-out resumed {resumed:.1f} s after the kill"
    assert worker.starts == starts + 1
    assert Round.objects.get(pk=rnd.pk).status == "failed"
    budget_is_consistent(project)


def test_labels_go_on_while_redis_is_down_and_rounds_resume(worker, settings):
    settings.ANNOTATION_ROUND_STALE_SECONDS = 3
    settings.ANNOTATION_ROUND_RETRY_SECONDS = 1
    project = features_project(400, budget=100)
    user = MembershipFactory(project=project).user
    queue(project, list(Item.objects.filter(project=project).order_by("id")[:30]))
    subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", "6379", "shutdown", "nosave"])
    try:
        wait_for(lambda: _redis_down(), timeout=10, what="Redis to stop")
        label_queue(project, user, 25)  # the queue runs low: rounds cannot be sent
        assert Annotation.objects.filter(item__project=project).count() == 25
    finally:
        subprocess.run(
            [
                "redis-server",
                "--daemonize",
                "yes",
                "--bind",
                "127.0.0.1",
                "--port",
                "6379",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            check=True,
        )
        wait_for(lambda: not _redis_down(), timeout=20, what="Redis to come back")
    time.sleep(3)  # let any round that lost its task go stale
    label_queue(project, user, 5)
    wait_for(
        lambda: Round.objects.filter(project=project, status="done").exists(),
        timeout=120,
        what="a round to complete after Redis came back",
    )
    budget_is_consistent(project)


def _redis_down() -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", 6379)) != 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(port: int, env: dict) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi", "-b", f"127.0.0.1:{port}", "-w", "2"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group, so the test can kill it whole
    )
    wait_for(lambda: _up(port), timeout=30, what="the web server to start")
    return proc


def _up(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/accounts/login/", timeout=1).ok
    except requests.RequestException:
        return False


def test_accepted_labels_survive_a_web_server_kill(worker):
    from django.conf import settings

    project = features_project(100, budget=50)
    user = MembershipFactory(project=project, role="manager").user
    queue(project, list(Item.objects.filter(project=project).order_by("id")[:20]))
    headers = {"Authorization": f"Token {token_for(user)}"}
    env = dict(
        os.environ,
        DATABASE_URL=_database_url(settings.DATABASES["default"]),
        DJANGO_SETTINGS_MODULE="config.settings.test",
    )
    port = _free_port()
    accepted = []
    web = _serve(port, env)
    try:
        base = f"http://127.0.0.1:{port}/api/projects/{project.id}"
        for _ in range(10):
            item = requests.post(f"{base}/next/", headers=headers, timeout=10).json()["item"]
            answer = requests.post(
                f"{base}/annotations/",
                json={"item": item["id"], "label": "a"},
                headers=headers,
                timeout=10,
            )
            if answer.status_code == 201:
                accepted.append(item["id"])
        # The whole server dies at once, master and workers (a lone SIGKILL to the master
        # leaves orphaned workers answering on the port for a moment).
        os.killpg(web.pid, signal.SIGKILL)
        web.wait(timeout=10)
        web = _serve(port, env)
        export = requests.get(f"{base}/export/?format=jsonl", headers=headers, timeout=10)
        exported = [json.loads(line)["id"] for line in export.text.splitlines()]
        assert len(accepted) == 10
        assert sorted(exported) == sorted(accepted)
    finally:
        os.killpg(web.pid, signal.SIGKILL)
        web.wait(timeout=10)


def test_no_request_fails_after_the_database_dropped_every_connection(worker):
    """What a PostgreSQL restart does to a web process's persistent connections: every one
    is cut. The next requests are answered (CONN_HEALTH_CHECKS), none with a 500."""
    from django.conf import settings
    from django.db import connection

    project = features_project(10, budget=5)
    user = MembershipFactory(project=project, role="manager").user
    headers = {"Authorization": f"Token {token_for(user)}"}
    env = dict(
        os.environ,
        DATABASE_URL=_database_url(settings.DATABASES["default"]),
        DJANGO_SETTINGS_MODULE="config.settings.test",
        DATABASE_CONN_MAX_AGE="600",
    )
    port = _free_port()
    web = _serve(port, env)
    try:
        url = f"http://127.0.0.1:{port}/api/projects/{project.id}/"
        for _ in range(8):  # every gunicorn thread opens its persistent connection
            assert requests.get(url, headers=headers, timeout=10).status_code == 200
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            assert cursor.fetchone()[0] >= 1
        codes = [requests.get(url, headers=headers, timeout=10).status_code for _ in range(16)]
        assert codes == [200] * 16
    finally:
        os.killpg(web.pid, signal.SIGKILL)
        web.wait(timeout=10)
