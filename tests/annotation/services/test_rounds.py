"""Rounds run in-process (Celery eager) on PostgreSQL: sharding, groups, out of scope."""

import numpy as np
import pytest

from annotation.models import Annotation, BudgetGroup, Item, Project, Round
from annotation.services.rounds import round_maybe_start
from config.celery import app
from tests.factories import ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def eager():
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def add_items(project, X, *, groups=None, costs=None, labels=None, user=None):
    """Featurized items; with `labels`, the first len(labels) are labeled by `user`."""
    items = Item.objects.bulk_create(
        [
            Item(
                project=project,
                features=x.tolist(),
                vector=x.astype(np.float32).tobytes(),
                group=groups[i] if groups is not None else "",
                cost=costs[i] if costs is not None else 1,
                external_id=f"x{i}",
            )
            for i, x in enumerate(X)
        ]
    )
    for item, label in zip(items, labels or [], strict=False):
        Item.objects.filter(pk=item.pk).update(status="labeled")
        Annotation.objects.create(item=item, annotator=user, label=label, cost=item.cost)
    return items


def blobs(n, seed=0, classes=2, dim=6):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(classes, dim)) * 4
    y = rng.integers(0, classes, size=n)
    return centers[y] + rng.normal(size=(n, dim)), y


def test_round_scores_the_pool_in_shards_and_queues_a_batch(eager, settings):
    settings.ANNOTATION_SHARD_SIZE = 50
    project = ProjectFactory(kind="features", budget=100, batch_size=10, acquisition="bald")
    X, y = blobs(300)
    add_items(project, X, labels=["cat" if c else "dog" for c in y[:40]], user=UserFactory())
    rnd = round_maybe_start(project_id=project.id)
    rnd.refresh_from_db()
    assert rnd.status == "done", rnd.error
    assert not rnd.cold_start and rnd.shard_count == 6 and rnd.accuracy > 0.8
    queued = Item.objects.filter(project=project, status="queued")
    assert queued.count() == 10
    assert set(queued.values_list("acquisition", flat=True)) == {"bald"}
    assert sorted(queued.values_list("queue_rank", flat=True)) == list(range(10))
    project.refresh_from_db()
    assert project.reserved == 10


@pytest.fixture
def sent(monkeypatch):
    """The tasks the services send, recorded instead of going to the broker."""
    from annotation.services import dispatch

    calls = []
    monkeypatch.setattr(
        dispatch, "_send", lambda name, *args, **options: calls.append((name, args)) or True
    )
    return calls


def test_every_step_of_a_running_round_redelivered_queues_nothing_twice(sent, settings):
    from annotation.services.rounds import round_reduce, round_run, round_score_shard

    settings.ANNOTATION_SHARD_SIZE = 40
    project = ProjectFactory(kind="features", budget=100, batch_size=10, acquisition="bald")
    X, y = blobs(160)
    add_items(project, X, labels=["cat" if c else "dog" for c in y[:40]], user=UserFactory())
    rnd = round_maybe_start(project_id=project.id)
    assert rnd.status == Round.Status.RUNNING
    round_run(round_id=rnd.id)
    round_run(round_id=rnd.id)  # redelivered while the round is running
    rnd.refresh_from_db()
    assert rnd.status == Round.Status.RUNNING and rnd.shard_count == 3
    assert rnd.shards.count() == 3
    for index in range(rnd.shard_count):
        round_score_shard(round_id=rnd.id, index=index)
        round_score_shard(round_id=rnd.id, index=index)  # redelivered
    assert Item.objects.filter(project=project, status="queued").count() == 0
    round_reduce(round_id=rnd.id)
    round_reduce(round_id=rnd.id)  # redelivered
    rnd.refresh_from_db()
    assert rnd.status == Round.Status.DONE, rnd.error
    assert Item.objects.filter(project=project, status="queued").count() == 10
    project.refresh_from_db()
    assert project.reserved == 10


def test_out_of_scope_items_get_no_budget(eager):
    project = ProjectFactory(
        kind="features",
        budget=100,
        batch_size=10,
        labels=["a", "b", "junk"],
        out_of_scope_label="junk",
        acquisition="random",
    )
    rng = np.random.default_rng(0)
    junk = rng.normal(size=(100, 6)) + 20  # far away: the model is sure about these
    good, y = blobs(100)
    X = np.concatenate([junk[:20], good[:20], junk[20:], good[20:]])
    labels = ["junk"] * 20 + ["a" if c else "b" for c in y[:20]]
    add_items(project, X, labels=labels, user=UserFactory())
    round_maybe_start(project_id=project.id)
    queued = Item.objects.filter(project=project, status="queued")
    assert queued.count() == 10
    assert all(np.asarray(i.features).mean() < 10 for i in queued)


def test_adaptive_groups_split_the_batch_and_say_why(eager):
    project = ProjectFactory(
        kind="features",
        budget=200,
        batch_size=20,
        group_mode=Project.GroupMode.ADAPTIVE,
        group_floor=0.2,
    )
    easy, y_easy = blobs(200, seed=1)
    hard = np.random.default_rng(2).normal(size=(200, 6))  # labels are noise: no learning
    y_hard = np.random.default_rng(3).integers(0, 2, size=200)
    X = np.concatenate([easy[:30], hard[:30], easy[30:], hard[30:]])
    groups = ["easy"] * 30 + ["hard"] * 30 + ["easy"] * 170 + ["hard"] * 170
    labels = ["cat" if c else "dog" for c in np.concatenate([y_easy[:30], y_hard[:30]])]
    add_items(project, X, groups=groups, labels=labels, user=UserFactory())
    rnd = round_maybe_start(project_id=project.id)
    rnd.refresh_from_db()
    assert rnd.status == "done", rnd.error
    stats = rnd.group_stats
    assert set(stats) == {"easy", "hard"}
    assert stats["easy"]["slots"] + stats["hard"]["slots"] == 20
    assert min(stats["easy"]["slots"], stats["hard"]["slots"]) >= 4
    for name in ("easy", "hard"):
        assert stats[name]["labels"] == 30 and stats[name]["error"] is not None
        got = Item.objects.filter(project=project, status="queued", group=name).count()
        assert got == stats[name]["slots"]


def test_adaptive_rounds_respect_group_budgets(eager):
    project = ProjectFactory(
        kind="features", budget=200, batch_size=20, group_mode=Project.GroupMode.ADAPTIVE
    )
    BudgetGroup.objects.create(project=project, name="b", budget=3)
    X, y = blobs(300)
    groups = ["a" if i % 2 else "b" for i in range(300)]
    add_items(
        project,
        X,
        groups=groups,
        labels=["cat" if c else "dog" for c in y[:40]],
        user=UserFactory(),
    )
    BudgetGroup.objects.filter(name="b").update(spent=0)
    round_maybe_start(project_id=project.id)
    rnd = Round.objects.get(project=project)
    assert rnd.status == "done"
    assert rnd.group_stats["b"]["slots"] > 3  # the allocation wants more than b's budget
    queued = Item.objects.filter(project=project, status="queued")
    assert queued.filter(group="b").count() == 3  # ... and the cap holds it to 3
    assert BudgetGroup.objects.get(name="b").reserved == 3
    assert queued.filter(group="a").count() == rnd.group_stats["a"]["slots"]


def test_a_later_cold_start_round_picks_where_the_labels_are_not(eager):
    # A dense blob holds the labels so far; the next cold-start pick is in the other blob.
    project = ProjectFactory(kind="features", budget=100, batch_size=1)
    rng = np.random.default_rng(0)
    dense = 10 + rng.normal(size=(72, 6)) * 0.3  # its two first rows get labeled
    loose = -10 + rng.normal(size=(30, 6))
    add_items(project, np.concatenate([dense, loose]), labels=["cat", "cat"], user=UserFactory())
    rnd = round_maybe_start(project_id=project.id)
    rnd.refresh_from_db()
    assert rnd.status == "done", rnd.error
    assert rnd.cold_start
    queued = Item.objects.get(project=project, status="queued")
    assert int(queued.external_id[1:]) >= 72  # from the loose blob
