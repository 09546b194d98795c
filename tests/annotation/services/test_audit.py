"""The audit slice: a share of each trained round picked uniformly at random, and the
unbiased accuracy estimate it gives (rounds run in-process, Celery eager, PostgreSQL)."""

import pytest

from annotation.models import Annotation, Item, Round
from annotation.selectors.rounds import round_list, wilson_interval
from annotation.services.rounds import audit_size, round_maybe_start
from tests.annotation.services.test_rounds import add_items, blobs, eager  # noqa: F401
from tests.conftest import api_client
from tests.factories import MembershipFactory, ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def trained_project(audit_share, batch_size=10):
    project = ProjectFactory(
        kind="features",
        budget=200,
        batch_size=batch_size,
        acquisition="margin",
        audit_share=audit_share,
    )
    X, y = blobs(300)
    add_items(project, X, labels=["cat" if c else "dog" for c in y[:40]], user=UserFactory())
    return project


def test_a_trained_round_spends_its_audit_share_on_uniform_picks(eager):  # noqa: F811
    project = trained_project(audit_share=0.2)
    rnd = round_maybe_start(project_id=project.id)
    rnd.refresh_from_db()
    queued = Item.objects.filter(project=project, status="queued")
    strategies = sorted(queued.values_list("acquisition", flat=True))
    assert strategies == ["audit"] * 2 + ["margin"] * 8
    assert rnd.audit_count == 2 and rnd.queued_count == 10


def test_audit_items_are_spread_through_the_batch(eager):  # noqa: F811
    project = trained_project(audit_share=0.2)
    round_maybe_start(project_id=project.id)
    ranks = Item.objects.filter(project=project, acquisition="audit").values_list(
        "queue_rank", flat=True
    )
    assert sorted(ranks) == [2, 6]


def test_no_audit_share_means_no_audit_items(eager):  # noqa: F811
    project = trained_project(audit_share=0.0)
    round_maybe_start(project_id=project.id)
    assert not Item.objects.filter(project=project, acquisition="audit").exists()
    assert Item.objects.filter(project=project, status="queued").count() == 10


def test_the_audit_slice_has_at_least_two_items_and_at_most_half_the_batch():
    assert audit_size(ProjectFactory.build(audit_share=0.05, batch_size=10)) == 2
    assert audit_size(ProjectFactory.build(audit_share=0.5, batch_size=3)) == 1
    assert audit_size(ProjectFactory.build(audit_share=0.1, batch_size=50)) == 5


def test_a_trained_round_stores_its_models_top_labels_with_each_queued_item(eager):  # noqa: F811
    project = trained_project(audit_share=0.2)
    round_maybe_start(project_id=project.id)
    predictions = Item.objects.filter(project=project, status="queued").values_list(
        "prediction", flat=True
    )
    for prediction in predictions:
        names = [name for name, _ in prediction["labels"]]
        probabilities = [p for _, p in prediction["labels"]]
        assert sorted(names) == ["cat", "dog"]
        assert probabilities == sorted(probabilities, reverse=True)
        assert sum(probabilities) == pytest.approx(1, abs=1e-3)


def label_audit(project, rnd, outcomes):
    """Label `rnd`'s audit items: True agrees with the stored prediction, False not."""
    user = UserFactory()
    items = Item.objects.filter(project=project, queued_round=rnd.number, acquisition="audit")
    for item, agree in zip(items.order_by("id"), outcomes, strict=True):
        top = item.prediction["labels"][0][0]
        label = top if agree else next(n for n in project.labels if n != top)
        Item.objects.filter(pk=item.pk).update(status="labeled")
        Annotation.objects.create(item=item, annotator=user, label=label, cost=item.cost)


def test_the_round_list_estimates_accuracy_from_the_labeled_audit_items(eager):  # noqa: F811
    project = trained_project(audit_share=0.4)
    rnd = round_maybe_start(project_id=project.id)
    label_audit(project, rnd, [True, True, True, False])
    listed = {r.number: r for r in round_list(project=project)}[rnd.number]
    assert (listed.audit_labeled, listed.audit_accuracy) == (4, 0.75)
    assert (listed.audit_low, listed.audit_high) == pytest.approx(wilson_interval(3, 4))


def test_a_round_without_labeled_audit_items_has_no_estimate(eager):  # noqa: F811
    project = trained_project(audit_share=0.2)
    rnd = round_maybe_start(project_id=project.id)
    listed = {r.number: r for r in round_list(project=project)}[rnd.number]
    assert (listed.audit_labeled, listed.audit_accuracy, listed.audit_low) == (0, None, None)


def test_the_rounds_api_shows_the_estimate_beside_the_out_of_bag_figure(eager):  # noqa: F811
    project = trained_project(audit_share=0.2)
    rnd = round_maybe_start(project_id=project.id)
    label_audit(project, rnd, [True, False])
    manager = MembershipFactory(project=project, role="manager").user
    body = api_client(manager).get(f"/api/projects/{project.id}/rounds/").json()
    row = next(r for r in body if r["number"] == rnd.number)
    assert (row["audit_count"], row["audit_labeled"], row["audit_accuracy"]) == (2, 2, 0.5)
    assert row["accuracy"] == Round.objects.get(pk=rnd.pk).accuracy


def test_wilson_interval_matches_the_textbook_values():
    low, high = wilson_interval(8, 10)
    assert (round(low, 3), round(high, 3)) == (0.49, 0.943)
    assert wilson_interval(0, 5)[0] == 0.0 and wilson_interval(5, 5)[1] == 1.0


def test_auto_draws_a_strategy_says_why_and_keeps_its_state(eager):  # noqa: F811
    from annotation.models import Project

    project = trained_project(audit_share=0.2)
    Project.objects.filter(pk=project.pk).update(acquisition="auto")
    rnd = round_maybe_start(project_id=project.id)
    rnd.refresh_from_db()
    project.refresh_from_db()
    assert rnd.strategy in ("margin", "bald", "random")
    assert rnd.strategy_reason.startswith(f"auto: drew {rnd.strategy}")
    assert project.strategy_state["pending"][0][0] == rnd.number
    picked = Item.objects.filter(project=project, status="queued").exclude(acquisition="audit")
    assert set(picked.values_list("acquisition", flat=True)) == {rnd.strategy}


def test_auto_credits_a_round_with_the_next_rounds_audit_accuracy(eager):  # noqa: F811
    from annotation.models import Project
    from annotation.services.rounds import _auto_strategy

    project = trained_project(audit_share=0.4)
    Project.objects.filter(pk=project.pk).update(acquisition="auto")
    first = round_maybe_start(project_id=project.id)
    Item.objects.filter(project=project, status="queued").update(status="unlabeled")
    Project.objects.filter(pk=project.pk).update(reserved=0)
    second = round_maybe_start(project_id=project.id)
    label_audit(project, second, [True, True, True, False])
    project.refresh_from_db()
    _auto_strategy(project, Round(project=project, number=second.number + 1))
    project.refresh_from_db()
    assert [r[0] for r in project.strategy_state["rewards"]] == [first.number]
    assert project.strategy_state["rewards"][0][2] == 0.75
