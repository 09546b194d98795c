"""A round that stops beating is replaced; a round that just failed is retried only after
ANNOTATION_ROUND_RETRY_SECONDS (sends recorded, not sent)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from annotation.models import Round
from annotation.services.rounds import round_maybe_start
from tests.annotation.services.test_rounds import add_items, blobs, sent  # noqa: F401
from tests.factories import ProjectFactory

pytestmark = pytest.mark.django_db(transaction=True)


def pool_project():
    project = ProjectFactory(kind="features", budget=100, batch_size=10)
    add_items(project, blobs(50)[0])
    return project


def started_round(project, sent):  # noqa: F811
    rnd = round_maybe_start(project_id=project.id)
    assert rnd is not None and sent[-1] == ("annotation.round_run", (rnd.id,))
    return rnd


def test_a_round_whose_heartbeat_went_stale_is_replaced(sent, settings):  # noqa: F811
    settings.ANNOTATION_ROUND_STALE_SECONDS = 30
    project = pool_project()
    old = started_round(project, sent)
    Round.objects.filter(pk=old.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=31))
    new = round_maybe_start(project_id=project.id)
    old.refresh_from_db()
    assert new is not None and new.number == old.number + 1
    assert old.status == Round.Status.FAILED and "ANNOTATION_ROUND_STALE_SECONDS" in old.error
    assert sent[-1] == ("annotation.round_run", (new.id,))


def test_a_round_with_a_fresh_heartbeat_is_left_running(sent, settings):  # noqa: F811
    settings.ANNOTATION_ROUND_STALE_SECONDS = 30
    project = pool_project()
    old = started_round(project, sent)
    Round.objects.filter(pk=old.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=20))
    assert round_maybe_start(project_id=project.id) is None
    old.refresh_from_db()
    assert old.status == Round.Status.RUNNING
    assert Round.objects.filter(project=project).count() == 1


def test_a_round_that_just_failed_is_not_retried_at_once(sent, settings):  # noqa: F811
    settings.ANNOTATION_ROUND_RETRY_SECONDS = 10
    project = pool_project()
    failed = started_round(project, sent)
    Round.objects.filter(pk=failed.pk).update(
        status=Round.Status.FAILED, finished_at=timezone.now() - timedelta(seconds=5)
    )
    assert round_maybe_start(project_id=project.id) is None
    Round.objects.filter(pk=failed.pk).update(finished_at=timezone.now() - timedelta(seconds=11))
    retried = round_maybe_start(project_id=project.id)
    assert retried is not None and retried.number == failed.number + 1


def test_a_broker_that_refuses_the_send_fails_the_round_at_once(monkeypatch):
    from annotation.services import dispatch

    monkeypatch.setattr(dispatch, "_send", lambda name, *args, **options: False)
    project = pool_project()
    rnd = round_maybe_start(project_id=project.id)
    rnd.refresh_from_db()
    assert rnd.status == Round.Status.FAILED and rnd.error == "The broker was unavailable."
