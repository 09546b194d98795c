"""Pausing a project (Project.paused): managers only; no hand-out and no automatic round
while paused; labels for items already on screen still count."""

import numpy as np
import pytest

from annotation.models import Annotation, Item, Project, Round
from annotation.services.rounds import round_maybe_start
from tests.conftest import api_client
from tests.factories import ItemFactory, queue

pytestmark = pytest.mark.django_db


def pause(user, project, paused=True):
    return api_client(user).patch(f"/api/projects/{project.id}/", {"paused": paused}, format="json")


def test_an_annotator_cannot_pause_the_project(project, annotator):
    response = pause(annotator, project)
    assert response.status_code == 403
    assert Project.objects.get(pk=project.pk).paused is False


def test_a_manager_pauses_the_project(project, manager):
    response = pause(manager, project)
    assert response.status_code == 200, response.json()
    assert response.json()["paused"] is True
    assert Project.objects.get(pk=project.pk).paused is True


def test_a_manager_resumes_the_project(project, manager):
    Project.objects.filter(pk=project.pk).update(paused=True)
    response = pause(manager, project, paused=False)
    assert response.status_code == 200, response.json()
    assert Project.objects.get(pk=project.pk).paused is False


def test_paused_must_be_a_boolean(project, manager):
    response = pause(manager, project, paused="soon")
    assert response.status_code == 400
    assert "paused" in response.json()


def test_a_paused_project_hands_out_no_item_and_says_why(project, annotator):
    queue(project, ItemFactory.create_batch(2, project=project))
    Project.objects.filter(pk=project.pk).update(paused=True)
    body = api_client(annotator).post(f"/api/projects/{project.id}/next/").json()
    assert (body["item"], body["state"]) == (None, "paused")
    assert not Item.objects.filter(project=project, leased_to__isnull=False).exists()


def test_a_label_on_an_item_leased_before_the_pause_is_accepted(project, annotator, manager):
    queue(project, ItemFactory.create_batch(2, project=project))
    item = api_client(annotator).post(f"/api/projects/{project.id}/next/").json()["item"]
    assert pause(manager, project).status_code == 200
    response = api_client(annotator).post(
        f"/api/projects/{project.id}/annotations/", {"item": item["id"], "label": "cat"}
    )
    assert response.status_code == 201, response.json()
    assert Annotation.objects.get(item_id=item["id"]).label == "cat"
    assert Project.objects.get(pk=project.pk).spent == 1


def featurized(project, n=10):
    rng = np.random.default_rng(0)
    return Item.objects.bulk_create(
        Item(project=project, vector=rng.normal(size=4).astype(np.float32).tobytes())
        for _ in range(n)
    )


def test_a_paused_project_starts_no_round_by_itself(project, sent):
    featurized(project)
    Project.objects.filter(pk=project.pk).update(paused=True)
    assert round_maybe_start(project_id=project.pk) is None
    assert not Round.objects.filter(project=project).exists() and sent == []


@pytest.fixture
def sent(monkeypatch):
    """The tasks the services send, recorded instead of going to the broker."""
    from annotation.services import dispatch

    calls = []
    monkeypatch.setattr(
        dispatch, "_send", lambda name, *args, **options: calls.append((name, args)) or True
    )
    return calls


def start_round(user, project):
    return api_client(user).post(f"/api/projects/{project.id}/rounds/")


def test_a_manager_starts_a_round_now(project, manager, sent):
    featurized(project)
    queue(project, ItemFactory.create_batch(5, project=project))  # a full queue: no auto round
    response = start_round(manager, project)
    assert response.status_code == 201, response.json()
    assert (response.json()["number"], response.json()["status"]) == (2, "running")
    assert Round.objects.get(project=project, number=2).status == "running"


def test_an_annotator_cannot_start_a_round(project, annotator, sent):
    featurized(project)
    assert start_round(annotator, project).status_code == 403
    assert not Round.objects.filter(project=project).exists()


def test_a_round_is_not_started_beside_a_running_one(project, manager, sent):
    featurized(project)
    Round.objects.create(project=project, number=1, strategy="random")
    response = start_round(manager, project)
    assert response.status_code == 409
    assert response.json()["code"] == "round_running"
    assert "Round 1 is running" in response.json()["detail"]


def test_a_round_needs_featurized_items(project, manager, sent):
    ItemFactory(project=project)  # not featurized
    response = start_round(manager, project)
    assert response.status_code == 409
    assert response.json()["code"] == "empty_pool"
    assert not Round.objects.filter(project=project).exists()
