from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from annotation.models import Annotation, BudgetGroup, Item
from tests.conftest import api_client
from tests.factories import ItemFactory, MembershipFactory, ProjectFactory, queue

pytestmark = pytest.mark.django_db


def put_groups(user, project, groups):
    return api_client(user).put(f"/api/projects/{project.id}/groups/", groups, format="json")


def test_groups_take_shares_and_amounts(project, manager):
    response = put_groups(
        manager, project, [{"name": "a", "share": 0.5}, {"name": "b", "budget": 3}]
    )
    assert response.status_code == 200, response.json()
    assert {g["name"]: g["budget"] for g in response.json()} == {"a": 5, "b": 3}


def test_group_allocations_cannot_exceed_the_budget(project, manager):
    response = put_groups(
        manager, project, [{"name": "a", "share": 0.8}, {"name": "b", "budget": 3}]
    )
    assert response.status_code == 400
    assert response.json()["field"] == "groups"
    assert not BudgetGroup.objects.exists()


def test_group_needs_share_or_budget(project, manager):
    response = put_groups(manager, project, [{"name": "a"}])
    assert response.status_code == 400
    assert "share" in str(response.json())
    assert not BudgetGroup.objects.exists()


def test_group_share_over_one_is_refused(project, manager):
    response = put_groups(manager, project, [{"name": "a", "share": 1.5}])
    assert response.status_code == 400
    assert "share" in str(response.json())


def test_shares_follow_the_project_budget(project, manager):
    put_groups(manager, project, [{"name": "a", "share": 0.5}])
    api_client(manager).patch(f"/api/projects/{project.id}/", {"budget": 40}, format="json")
    assert BudgetGroup.objects.get(name="a").budget == 20


def test_lowering_a_group_unqueues_what_no_longer_fits(project, manager):
    put_groups(manager, project, [{"name": "a", "budget": 3}])
    items = ItemFactory.create_batch(3, project=project, group="a")
    queue(project, items)
    response = put_groups(manager, project, [{"name": "a", "budget": 1}])
    assert response.status_code == 200, response.json()
    group = BudgetGroup.objects.get(name="a")
    assert (group.budget, group.reserved) == (1, 1)
    project.refresh_from_db()
    assert project.reserved == 1


def test_annotator_cannot_set_groups(project, annotator):
    assert put_groups(annotator, project, [{"name": "a", "budget": 1}]).status_code == 403
    assert not BudgetGroup.objects.exists()


@pytest.mark.parametrize(
    ("rule", "value", "floor", "row", "cost"),
    [
        ("given", 1, 0.01, {"text": "abc"}, Decimal(1)),
        ("flat", 2.5, 0.01, {"text": "abc"}, Decimal("2.5")),
        ("text_length", 1, 0.2, {"text": "x" * 500}, Decimal("0.5")),
        ("text_length", 1, 0.2, {"text": "x" * 10}, Decimal("0.2")),
        ("flat", 2.5, 0.01, {"text": "abc", "cost": 7}, Decimal(7)),
    ],
)
def test_cost_rule_prices_items_that_give_no_cost(staff, rule, value, floor, row, cost):
    project = ProjectFactory(kind="", cost_rule=rule, cost_value=value, cost_floor=floor)
    MembershipFactory(project=project, user=staff, role="manager")
    response = api_client(staff).post(f"/api/projects/{project.id}/items/", [row], format="json")
    assert response.status_code == 201, response.json()
    assert Item.objects.get().cost == cost


def test_quota_stops_handing_out_items(project, manager, annotator):
    queue(project, ItemFactory.create_batch(3, project=project))
    api_client(manager).post(
        f"/api/projects/{project.id}/members/",
        {"username": annotator.username, "role": "annotator", "quota_total": 1},
        format="json",
    )
    client = api_client(annotator)
    item = client.post(f"/api/projects/{project.id}/next/").json()["item"]
    client.post(
        f"/api/projects/{project.id}/annotations/",
        {"item": item["id"], "label": "cat"},
        format="json",
    )
    assert client.post(f"/api/projects/{project.id}/next/").json()["state"] == "quota_reached"


def test_out_of_scope_label_must_be_a_label(project, manager):
    response = api_client(manager).patch(
        f"/api/projects/{project.id}/", {"out_of_scope_label": "junk"}, format="json"
    )
    assert response.status_code == 400
    assert "out_of_scope_label" in response.json()


def test_export_marks_out_of_scope_labels(project, manager, annotator):
    from annotation.services.labeling import item_next_for
    from annotation.services.queue import annotation_submit

    project.labels = ["cat", "dog", "junk"]
    project.out_of_scope_label = "junk"
    project.save()
    queue(project, ItemFactory.create_batch(2, project=project))
    for name in ("junk", "cat"):
        item, _ = item_next_for(project=project, user=annotator)
        annotation_submit(project=project, user=annotator, item_id=item.id, label=name)
    response = api_client(manager).get(f"/api/projects/{project.id}/export/?format=json")
    import json

    records = json.loads(b"".join(response.streaming_content))
    assert [(r["label"], r["out_of_scope"]) for r in records] == [("junk", True), ("cat", False)]


def test_daily_quota_counts_only_todays_labels(project, manager, annotator):
    items = ItemFactory.create_batch(4, project=project)
    queue(project, items)
    MembershipFactory._meta.model.objects.filter(project=project, user=annotator).update(
        quota_daily=1
    )
    client = api_client(annotator)
    first = client.post(f"/api/projects/{project.id}/next/").json()["item"]
    client.post(
        f"/api/projects/{project.id}/annotations/",
        {"item": first["id"], "label": "cat"},
        format="json",
    )
    assert client.post(f"/api/projects/{project.id}/next/").json()["state"] == "quota_reached"
    yesterday = timezone.now() - timedelta(days=1)
    Annotation.objects.filter(annotator=annotator).update(created_at=yesterday)
    assert client.post(f"/api/projects/{project.id}/next/").json()["state"] == "ok"
