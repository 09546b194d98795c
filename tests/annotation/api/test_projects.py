from decimal import Decimal

import pytest

from annotation.models import Item, Membership, Project
from tests.conftest import api_client
from tests.factories import ItemFactory, MembershipFactory, ProjectFactory, queue

pytestmark = pytest.mark.django_db

NEW = {"name": "Reviews", "labels": ["pos", "neg"], "budget": 100, "acquisition": "bald"}


def test_staff_creates_project_and_becomes_its_manager(staff):
    response = api_client(staff).post("/api/projects/", NEW, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["labels"] == ["pos", "neg"]
    assert body["budget"] == 100
    assert body["remaining"] == 100
    assert body["spent"] == 0 and body["reserved"] == 0
    assert body["item_count"] == 0 and body["labeled_count"] == 0 and body["round"] == 0
    assert Membership.objects.get(project_id=body["id"], user=staff).role == "manager"


def test_non_staff_cannot_create_project(outsider):
    response = api_client(outsider).post("/api/projects/", NEW, format="json")
    assert response.status_code == 403
    assert not Project.objects.exists()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"labels": []}, "labels"),
        ({"labels": ["a", "a"]}, "labels"),
        ({"budget": -1}, "budget"),
        ({"budget": "lots"}, "budget"),
        ({"acquisition": "magic"}, "acquisition"),
        ({"batch_size": 0}, "batch_size"),
        ({"colour": "red"}, "colour"),
        ({"spent": 5}, "spent"),
    ],
)
def test_create_refuses_bad_field_naming_it(staff, change, field):
    response = api_client(staff).post("/api/projects/", {**NEW, **change}, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert not Project.objects.exists()


def test_adaptive_groups_are_set_at_creation(staff):
    new = {**NEW, "group_mode": "adaptive", "group_floor": 0.25}
    response = api_client(staff).post("/api/projects/", new, format="json")
    assert response.status_code == 201, response.json()
    assert (response.json()["group_mode"], response.json()["group_floor"]) == ("adaptive", 0.25)
    project = Project.objects.get()
    assert (project.group_mode, project.group_floor) == ("adaptive", 0.25)


def test_a_manager_turns_adaptive_groups_on(project, manager):
    response = api_client(manager).patch(
        f"/api/projects/{project.id}/",
        {"group_mode": "adaptive", "group_floor": 0.05},
        format="json",
    )
    assert response.status_code == 200, response.json()
    project.refresh_from_db()
    assert (project.group_mode, project.group_floor) == ("adaptive", 0.05)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"group_mode": "greedy"}, "group_mode"),
        ({"group_floor": -0.1}, "group_floor"),
        ({"group_floor": 1.5}, "group_floor"),
        ({"group_floor": "much"}, "group_floor"),
    ],
)
def test_bad_group_settings_are_refused_naming_the_field(project, manager, change, field):
    response = api_client(manager).patch(f"/api/projects/{project.id}/", change, format="json")
    assert response.status_code == 400
    assert field in response.json()
    project.refresh_from_db()
    assert (project.group_mode, project.group_floor) == ("fixed", 0.1)


def test_annotator_lists_only_own_projects(project, annotator):
    ProjectFactory()
    response = api_client(annotator).get("/api/projects/")
    assert response.status_code == 200
    assert [p["id"] for p in response.json()] == [project.id]


def test_outsider_gets_404_for_project(project, outsider):
    assert api_client(outsider).get(f"/api/projects/{project.id}/").status_code == 404


def test_anonymous_gets_401(project):
    assert api_client().get(f"/api/projects/{project.id}/").status_code == 401


def test_annotator_cannot_change_project(project, annotator):
    response = api_client(annotator).patch(
        f"/api/projects/{project.id}/", {"budget": 50}, format="json"
    )
    assert response.status_code == 403
    project.refresh_from_db()
    assert project.budget == Decimal(10)


def test_raising_budget_takes_effect_at_once(project, manager):
    response = api_client(manager).patch(
        f"/api/projects/{project.id}/", {"budget": 50}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["remaining"] == 50
    project.refresh_from_db()
    assert project.budget == Decimal(50)


def test_lowering_budget_below_spent_is_refused(project, manager, annotator):
    items = ItemFactory.create_batch(3, project=project)
    queue(project, items)
    from annotation.services.labeling import item_next_for
    from annotation.services.queue import annotation_submit

    for _ in range(3):
        item, _state = item_next_for(project=project, user=annotator)
        annotation_submit(project=project, user=annotator, item_id=item.id, label="cat")
    response = api_client(manager).patch(
        f"/api/projects/{project.id}/", {"budget": 2}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["field"] == "budget"
    project.refresh_from_db()
    assert project.budget == Decimal(10)


def test_lowering_budget_releases_queued_reservations_that_no_longer_fit(project, manager):
    items = ItemFactory.create_batch(5, project=project)
    queue(project, items)
    assert project.reserved == 5
    response = api_client(manager).patch(
        f"/api/projects/{project.id}/", {"budget": 3}, format="json"
    )
    assert response.status_code == 200, response.json()
    project.refresh_from_db()
    assert project.budget == 3 and project.reserved == 3
    statuses = [i.status for i in project.items.order_by("id")]
    assert statuses == ["queued", "queued", "queued", "unlabeled", "unlabeled"]


def test_manager_adds_member_by_username(project, manager, outsider):
    response = api_client(manager).post(
        f"/api/projects/{project.id}/members/",
        {"username": outsider.username, "role": "annotator"},
        format="json",
    )
    assert response.status_code == 201
    assert api_client(outsider).get(f"/api/projects/{project.id}/").status_code == 200


def test_adding_unknown_user_names_the_field(project, manager):
    response = api_client(manager).post(
        f"/api/projects/{project.id}/members/",
        {"username": "nobody", "role": "annotator"},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["field"] == "username"


def test_annotator_cannot_add_members(project, annotator, outsider):
    response = api_client(annotator).post(
        f"/api/projects/{project.id}/members/",
        {"username": outsider.username, "role": "manager"},
        format="json",
    )
    assert response.status_code == 403
    assert not MembershipFactory._meta.model.objects.filter(user=outsider).exists()


def test_project_shows_how_many_items_cannot_be_featurized(project, manager):
    ItemFactory(project=project)
    failed = ItemFactory(project=project)
    Item.objects.filter(pk=failed.pk).update(featurize_error="ValueError: no")
    body = api_client(manager).get(f"/api/projects/{project.id}/").json()
    assert (body["item_count"], body["featurized_count"], body["featurize_failed_count"]) == (
        2,
        0,
        1,
    )
