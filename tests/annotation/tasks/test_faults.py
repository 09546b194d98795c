"""Faults on real services: a worker process killed mid-round, Redis restarted while
annotators label, the web server restarted."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
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
