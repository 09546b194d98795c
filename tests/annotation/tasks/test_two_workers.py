"""The distributed path: two Celery workers (node names pair-a and pair-b, as two hosts
would run them) on the same test queue share one round's shards. Which worker scored a
shard is read from each worker's own log (the round records no worker): its "Task
annotation.round_score_shard[...] succeeded" lines."""

import os
import re
import threading
from decimal import Decimal

import numpy as np
import pytest
from django.conf import settings

from annotation.models import Annotation, Item, Round, RoundShard
from annotation.services import dispatch, rounds
from tests.conftest import ROOT, WorkerProcess, _database_url, wait_for
from tests.factories import ProjectFactory, UserFactory

pytestmark = pytest.mark.worker

SHARDS = 8
SUCCEEDED = re.compile(rf"Task {re.escape(dispatch.ROUND_SHARD)}\[[^\]]+\] succeeded")


@pytest.fixture
def pair(transactional_db):
    """Two workers of their own on the session's default queue, each with its own log and
    one pool process (prefetching one task: each takes the next shard only when free),
    started side by side."""
    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        pytest.skip("the worker tests need DATABASE_URL to point at PostgreSQL")
    env = dict(
        os.environ,
        DATABASE_URL=_database_url(db),
        DJANGO_SETTINGS_MODULE="config.settings.test",
        CELERY_TASK_DEFAULT_QUEUE=settings.CELERY_TASK_DEFAULT_QUEUE,
        ANNOTATION_SHARD_SIZE=str(settings.ANNOTATION_SHARD_SIZE),
    )
    workers = []
    for letter in "ab":
        log_name = f"test-worker-pair-{letter}.log"
        (ROOT / "var" / log_name).write_text("")
        name = f"pair-{letter}-{os.getpid()}"
        workers.append(
            WorkerProcess(env, settings.CELERY_TASK_DEFAULT_QUEUE, name, log_name, concurrency=1)
        )
    errors: list[Exception] = []

    def start(worker):
        try:
            worker.start()
        except Exception as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    starters = [threading.Thread(target=start, args=(w,)) for w in workers]
    for thread in starters:
        thread.start()
    for thread in starters:
        thread.join()
    try:
        assert not errors, errors
        yield workers
    finally:
        stoppers = [
            threading.Thread(target=worker.stop) for worker in workers if worker.proc is not None
        ]
        for thread in stoppers:
            thread.start()
        for thread in stoppers:
            thread.join()


def trained_project():
    """A project past its cold start (20 labels of two classes) whose pool of unlabeled,
    featurized items makes SHARDS shards."""
    project = ProjectFactory(
        labels=["cat", "dog"], budget=Decimal(1000), acquisition="margin", ensemble_size=2
    )
    rng = np.random.default_rng(0)
    annotator = UserFactory()
    labeled = Item.objects.bulk_create(
        Item(
            project=project,
            status=Item.Status.LABELED,
            vector=rng.normal(size=8).astype(np.float32).tobytes(),
        )
        for _ in range(20)
    )
    Annotation.objects.bulk_create(
        Annotation(item=item, annotator=annotator, label=("cat", "dog")[n % 2], cost=1)
        for n, item in enumerate(labeled)
    )
    Item.objects.bulk_create(
        Item(project=project, vector=rng.normal(size=8).astype(np.float32).tobytes())
        for _ in range(SHARDS * settings.ANNOTATION_SHARD_SIZE)
    )
    return project


def test_one_rounds_shards_are_scored_on_both_workers(pair):
    project = trained_project()
    started = rounds.round_maybe_start(project_id=project.pk)
    assert started is not None

    def finished():
        rnd = Round.objects.get(pk=started.pk)
        return rnd if rnd.status != Round.Status.RUNNING else None

    rnd = wait_for(finished, timeout=45, what="the round to finish on the two workers")
    assert rnd.status == Round.Status.DONE, rnd.error
    assert rnd.shard_count == SHARDS
    assert not RoundShard.objects.filter(round=rnd, done_at__isnull=True).exists()
    scored = {worker.name: len(SUCCEEDED.findall(worker.log_path.read_text())) for worker in pair}
    assert all(count >= 1 for count in scored.values()), scored
    # The session's own worker, when this session started it, may have taken some too.
    assert sum(scored.values()) <= SHARDS
