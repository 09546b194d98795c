"""How the round tasks fail: a bug fails the round with its error recorded; a transient
database error is retried, and the round goes on."""

import pytest
from django.db import OperationalError

from annotation import tasks
from annotation.models import Round
from annotation.services import rounds
from tests.factories import ProjectFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def running_round():
    project = ProjectFactory()
    return Round.objects.create(project=project, number=1, strategy="margin")


def raising(*errors):
    """A stand-in service that raises `errors` one per call, then returns."""
    calls = []

    def service(**kwargs):
        calls.append(kwargs)
        if len(calls) <= len(errors):
            raise errors[len(calls) - 1]

    service.calls = calls
    return service


@pytest.mark.parametrize(
    ("task", "service"),
    [
        (tasks.round_run_task, "round_run"),
        (tasks.round_reduce_task, "round_reduce"),
    ],
)
def test_a_bug_fails_the_round_with_its_error(running_round, monkeypatch, task, service):
    monkeypatch.setattr(rounds, service, raising(ValueError("no such label 'x'")))
    task.apply(args=[running_round.pk])
    running_round.refresh_from_db()
    assert running_round.status == Round.Status.FAILED
    assert running_round.error == "ValueError: no such label 'x'"


def test_a_bug_in_a_shard_fails_the_round(running_round, monkeypatch):
    monkeypatch.setattr(rounds, "round_score_shard", raising(KeyError("vector")))
    tasks.round_score_shard_task.apply(args=[running_round.pk, 0])
    running_round.refresh_from_db()
    assert (running_round.status, running_round.error) == ("failed", "KeyError: 'vector'")


def test_a_transient_database_error_is_retried_and_the_round_goes_on(running_round, monkeypatch):
    service = raising(OperationalError("server closed the connection unexpectedly"))
    monkeypatch.setattr(rounds, "round_run", service)
    tasks.round_run_task.apply(args=[running_round.pk], throw=False)
    assert len(service.calls) == 2  # the retry ran the service again
    running_round.refresh_from_db()
    assert (running_round.status, running_round.error) == (Round.Status.RUNNING, "")
