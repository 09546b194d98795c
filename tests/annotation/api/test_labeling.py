import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from annotation.models import Annotation, Assignment, Item, Project
from tests.conftest import api_client
from tests.factories import ItemFactory, MembershipFactory, queue

pytestmark = pytest.mark.django_db


def next_for(user, project):
    return api_client(user).post(f"/api/projects/{project.id}/next/")


def label(user, project, item_id, name="cat"):
    return api_client(user).post(
        f"/api/projects/{project.id}/annotations/", {"item": item_id, "label": name}, format="json"
    )


def test_next_hands_out_the_best_queued_item(project, annotator):
    items = ItemFactory.create_batch(3, project=project)
    queue(project, [items[2], items[0], items[1]])
    body = next_for(annotator, project).json()
    assert body["state"] == "ok"
    assert body["item"]["id"] == items[2].id
    assert body["item"]["text"] == items[2].text
    assert set(body["item"]) == {"id", "external_id", "text", "meta"}


def test_next_twice_returns_the_item_already_held(project, annotator):
    queue(project, ItemFactory.create_batch(2, project=project))
    first = next_for(annotator, project).json()["item"]["id"]
    assert next_for(annotator, project).json()["item"]["id"] == first


def test_two_annotators_get_different_items(project, annotator):
    other = MembershipFactory(project=project).user
    queue(project, ItemFactory.create_batch(2, project=project))
    assert (
        next_for(annotator, project).json()["item"]["id"]
        != next_for(other, project).json()["item"]["id"]
    )


def test_label_spends_the_reserved_cost(project, annotator):
    queue(project, ItemFactory.create_batch(2, project=project))
    item_id = next_for(annotator, project).json()["item"]["id"]
    response = label(annotator, project, item_id)
    assert response.status_code == 201
    project.refresh_from_db()
    assert (project.spent, project.reserved) == (1, 1)
    assert Item.objects.get(pk=item_id).status == "labeled"
    assert Assignment.objects.get(item_id=item_id).status == "submitted"


def test_same_label_twice_is_idempotent(project, annotator):
    queue(project, ItemFactory.create_batch(1, project=project))
    item_id = next_for(annotator, project).json()["item"]["id"]
    assert label(annotator, project, item_id).status_code == 201
    assert label(annotator, project, item_id).status_code == 200
    project.refresh_from_db()
    assert project.spent == 1
    assert Annotation.objects.count() == 1


def test_changing_own_label_costs_nothing(project, annotator):
    queue(project, ItemFactory.create_batch(1, project=project))
    item_id = next_for(annotator, project).json()["item"]["id"]
    label(annotator, project, item_id, "cat")
    assert label(annotator, project, item_id, "dog").status_code == 200
    project.refresh_from_db()
    assert project.spent == 1
    assert Annotation.objects.get().label == "dog"


def test_label_not_in_label_set_is_400(project, annotator):
    queue(project, ItemFactory.create_batch(1, project=project))
    item_id = next_for(annotator, project).json()["item"]["id"]
    response = label(annotator, project, item_id, "horse")
    assert response.status_code == 400
    assert response.json()["field"] == "label"


def test_label_for_item_assigned_to_someone_else_is_409(project, annotator):
    other = MembershipFactory(project=project).user
    queue(project, ItemFactory.create_batch(1, project=project))
    item_id = next_for(other, project).json()["item"]["id"]
    response = label(annotator, project, item_id)
    assert response.status_code == 409
    assert "not assigned to you" in response.json()["detail"]


def test_label_for_item_never_handed_out_is_409(project, annotator):
    item = ItemFactory(project=project)
    queue(project, [item])
    assert label(annotator, project, item.id).status_code == 409


def test_label_for_item_labeled_by_someone_else_is_409(project, annotator):
    other = MembershipFactory(project=project).user
    queue(project, ItemFactory.create_batch(1, project=project))
    item_id = next_for(other, project).json()["item"]["id"]
    label(other, project, item_id)
    assert label(annotator, project, item_id).status_code == 409


def test_label_for_unknown_item_is_404(project, annotator):
    assert label(annotator, project, 999999).status_code == 404


def test_outsider_gets_no_item(project, outsider):
    queue(project, ItemFactory.create_batch(1, project=project))
    assert next_for(outsider, project).status_code == 404


def test_outsider_cannot_label_an_item_leased_to_a_member(project, annotator, outsider):
    queue(project, ItemFactory.create_batch(1, project=project))
    item_id = next_for(annotator, project).json()["item"]["id"]
    assert label(outsider, project, item_id).status_code == 404
    assert not Annotation.objects.exists()
    assert Item.objects.get(pk=item_id).leased_to == annotator


def test_a_lease_left_active_after_its_item_was_freed_is_closed_and_the_item_leased(
    project, annotator
):
    (item,) = ItemFactory.create_batch(1, project=project)
    queue(project, [item])
    other = MembershipFactory(project=project).user
    stale = Assignment.objects.create(
        item=item, user=other, status="active", expires_at=timezone.now() - timedelta(hours=1)
    )
    body = next_for(annotator, project).json()
    assert (body["state"], body["item"]["id"]) == ("ok", item.id)
    stale.refresh_from_db()
    assert stale.status == "expired"
    assert Assignment.objects.get(item=item, status="active").user == annotator


def skip(user, project, item_id):
    return api_client(user).post(
        f"/api/projects/{project.id}/skip/", {"item": item_id}, format="json"
    )


def test_skipped_item_goes_to_another_annotator_not_back_to_the_skipper(project, annotator):
    other = MembershipFactory(project=project).user
    queue(project, ItemFactory.create_batch(2, project=project))
    item_id = next_for(annotator, project).json()["item"]["id"]
    assert skip(annotator, project, item_id).status_code == 200
    assert next_for(annotator, project).json()["item"]["id"] != item_id
    assert next_for(other, project).json()["item"]["id"] == item_id


def test_skip_keeps_the_reservation_for_the_others(project, annotator):
    queue(project, ItemFactory.create_batch(2, project=project))
    item_id = next_for(annotator, project).json()["item"]["id"]
    skip(annotator, project, item_id)
    project.refresh_from_db()
    assert project.reserved == 2
    item = Item.objects.get(pk=item_id)
    assert (item.status, item.leased_to_id, item.skip_count) == ("queued", None, 1)
    assert Assignment.objects.get(item_id=item_id).status == "skipped"


def test_an_item_skipped_by_enough_annotators_leaves_the_queue(project, settings):
    settings.ANNOTATION_SKIP_LIMIT = 2
    first, second = (MembershipFactory(project=project).user for _ in range(2))
    queue(project, ItemFactory.create_batch(1, project=project))
    item_id = next_for(first, project).json()["item"]["id"]
    skip(first, project, item_id)
    assert next_for(second, project).json()["item"]["id"] == item_id
    skip(second, project, item_id)
    project.refresh_from_db()
    assert Item.objects.get(pk=item_id).status == "skipped"
    assert project.reserved == 0


def test_one_annotator_looping_next_and_skip_drains_nothing(project, annotator):
    items = ItemFactory.create_batch(5, project=project)
    queue(project, items)
    for _ in range(20):
        body = next_for(annotator, project).json()
        if body["item"] is None:
            break
        skip(annotator, project, body["item"]["id"])
    assert body == {**body, "item": None, "state": "waiting"}
    project.refresh_from_db()
    assert project.reserved == 5
    assert Item.objects.filter(project=project, status="queued").count() == 5
    other = MembershipFactory(project=project).user
    assert next_for(other, project).json()["item"]["id"] == items[0].id


def test_skip_of_an_item_not_held_is_409(project, annotator):
    items = ItemFactory.create_batch(1, project=project)
    queue(project, items)
    assert skip(annotator, project, items[0].id).status_code == 409
    assert Item.objects.get(pk=items[0].id).skip_count == 0


def expire_lease(item_id):
    Item.objects.filter(pk=item_id).update(lease_expires_at="2000-01-01T00:00:00Z")


def test_expired_lease_is_released_on_the_next_hand_out(project, annotator):
    other = MembershipFactory(project=project).user
    items = ItemFactory.create_batch(2, project=project)
    queue(project, items)
    item_id = next_for(annotator, project).json()["item"]["id"]
    expire_lease(item_id)
    assert next_for(other, project).json()["item"]["id"] != item_id
    item = Item.objects.get(pk=item_id)
    assert (item.status, item.leased_to_id) == ("unlabeled", None)
    assert Assignment.objects.get(item_id=item_id).status == "expired"


def test_expired_lease_releases_the_reservation(project, annotator):
    queue(project, ItemFactory.create_batch(2, project=project))
    item_id = next_for(annotator, project).json()["item"]["id"]
    expire_lease(item_id)
    next_for(annotator, project)
    project.refresh_from_db()
    assert (project.spent, project.reserved) == (0, 1)


def test_released_item_is_handed_out_again_once_requeued(project, annotator):
    other = MembershipFactory(project=project).user
    item = ItemFactory(project=project)
    queue(project, [item])
    next_for(annotator, project)
    expire_lease(item.id)
    assert next_for(other, project).json()["item"] is None  # released, back in the pool
    queue(project, [item])  # what the next round does with a still-informative item
    assert next_for(other, project).json()["item"]["id"] == item.id


def test_late_label_before_release_spends_the_reservation(project, annotator):
    queue(project, ItemFactory.create_batch(1, project=project))
    item_id = next_for(annotator, project).json()["item"]["id"]
    expire_lease(item_id)
    assert label(annotator, project, item_id).status_code == 201
    project.refresh_from_db()
    assert (project.spent, project.reserved) == (1, 0)


def test_late_label_after_release_is_accepted_while_budget_allows(project, annotator):
    queue(project, ItemFactory.create_batch(2, project=project))
    item_id = next_for(annotator, project).json()["item"]["id"]
    expire_lease(item_id)
    next_for(annotator, project)  # releases the expired lease, leases the other item
    assert label(annotator, project, item_id).status_code == 201
    project.refresh_from_db()
    assert (project.spent, project.reserved) == (1, 1)
    assert Item.objects.get(pk=item_id).status == "labeled"


def test_late_label_after_release_is_409_when_budget_is_gone(project, annotator):
    project.budget = 2
    project.save()
    queue(project, ItemFactory.create_batch(3, project=project))  # two fit
    item_id = next_for(annotator, project).json()["item"]["id"]
    expire_lease(item_id)
    next_for(annotator, project)  # releases it...
    project.refresh_from_db()
    queue(project, ItemFactory.create_batch(1, project=project))  # ...and a round fills it up
    project.refresh_from_db()
    assert project.spent + project.reserved == project.budget
    response = label(annotator, project, item_id)
    assert response.status_code == 409
    assert "budget" in response.json()["detail"]


def test_late_label_on_a_requeued_free_item_spends_its_new_reservation(project, annotator):
    item = ItemFactory(project=project)
    queue(project, [item])
    next_for(annotator, project)
    expire_lease(item.id)
    next_for(annotator, project)  # releases it
    queue(project, [item])  # queued again, nobody holds it
    assert label(annotator, project, item.id).status_code == 201
    project.refresh_from_db()
    assert (project.spent, project.reserved) == (1, 0)


def test_late_label_after_someone_else_took_the_item_is_409(project, annotator):
    other = MembershipFactory(project=project).user
    item = ItemFactory(project=project)
    queue(project, [item])
    next_for(annotator, project)
    expire_lease(item.id)
    next_for(other, project)  # releases it
    queue(project, [item])
    assert next_for(other, project).json()["item"]["id"] == item.id
    assert label(annotator, project, item.id).status_code == 409
    assert label(other, project, item.id).status_code == 201


def release(user, project, item_id):
    return api_client(user).post(
        f"/api/projects/{project.id}/lease/", {"item": item_id, "action": "release"}
    )


def test_a_label_after_the_page_released_the_item_is_accepted(project, annotator):
    """A reload: the old page's release beacon can arrive after the new page got the held
    item back and showed it. Its label must not be lost."""
    queue(project, ItemFactory.create_batch(2, project=project))
    item_id = next_for(annotator, project).json()["item"]["id"]
    assert release(annotator, project, item_id).status_code == 200
    assert label(annotator, project, item_id).status_code == 201
    project.refresh_from_db()
    assert (project.spent, project.reserved) == (1, 1)


def test_a_label_after_release_is_409_once_someone_else_holds_the_item(project, annotator):
    other = MembershipFactory(project=project).user
    queue(project, ItemFactory.create_batch(1, project=project))
    item_id = next_for(annotator, project).json()["item"]["id"]
    release(annotator, project, item_id)
    assert next_for(other, project).json()["item"]["id"] == item_id
    assert label(annotator, project, item_id).status_code == 409


def test_a_label_after_release_then_skip_is_409(project, annotator):
    queue(project, ItemFactory.create_batch(1, project=project))
    item_id = next_for(annotator, project).json()["item"]["id"]
    release(annotator, project, item_id)
    assert next_for(annotator, project).json()["item"]["id"] == item_id
    api_client(annotator).post(f"/api/projects/{project.id}/skip/", {"item": item_id})
    assert label(annotator, project, item_id).status_code == 409


def test_budget_exhausted_after_exactly_budget_labels(project, annotator):
    project.budget = 3
    project.save()
    items = ItemFactory.create_batch(5, project=project)
    queue(project, items)  # only three fit the budget
    labeled = 0
    while True:
        body = next_for(annotator, project).json()
        if body["state"] != "ok":
            break
        assert label(annotator, project, body["item"]["id"]).status_code == 201
        labeled += 1
    assert body["state"] == "budget_exhausted"
    assert labeled == 3
    project.refresh_from_db()
    assert (project.spent, project.reserved) == (3, 0)


def test_pool_exhausted_when_everything_is_labeled(project, annotator):
    queue(project, ItemFactory.create_batch(1, project=project))
    label(annotator, project, next_for(annotator, project).json()["item"]["id"])
    assert next_for(annotator, project).json()["state"] == "pool_exhausted"


def test_label_and_next_in_one_request(project, annotator):
    queue(project, ItemFactory.create_batch(2, project=project))
    first = next_for(annotator, project).json()["item"]["id"]
    response = api_client(annotator).post(
        f"/api/projects/{project.id}/annotations/",
        {"item": first, "label": "cat", "next": True},
        format="json",
    )
    assert response.status_code == 201
    assert response.json()["next"]["state"] == "ok"
    assert response.json()["next"]["item"]["id"] != first


@pytest.mark.django_db(transaction=True)
def test_concurrent_next_calls_never_share_an_item(project):
    users = [MembershipFactory(project=project).user for _ in range(8)]
    project.budget = 100
    project.save()
    queue(project, ItemFactory.create_batch(8, project=project))
    got: list[int] = []
    barrier = threading.Barrier(len(users))

    def take(user):
        barrier.wait()
        body = next_for(user, project).json()
        got.append(body["item"]["id"])
        connection.close()

    threads = [threading.Thread(target=take, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 8
    assert len(set(got)) == 8


def lease(user, project, item_id, action):
    return api_client(user).post(
        f"/api/projects/{project.id}/lease/", {"item": item_id, "action": action}, format="json"
    )


def test_renewing_a_lease_pushes_its_expiry_back(project, annotator):
    queue(project, ItemFactory.create_batch(1, project=project))
    item_id = next_for(annotator, project).json()["item"]["id"]
    Item.objects.filter(pk=item_id).update(lease_expires_at=timezone.now())
    response = lease(annotator, project, item_id, "renew")
    assert response.status_code == 200
    expires = Item.objects.get(pk=item_id).lease_expires_at
    assert expires > timezone.now() + timedelta(seconds=project.lease_seconds - 5)
    assert Assignment.objects.get(item_id=item_id, status="active").expires_at == expires


def test_released_item_goes_back_to_the_free_queue_with_its_reservation(project, annotator):
    queue(project, ItemFactory.create_batch(1, project=project))
    item_id = next_for(annotator, project).json()["item"]["id"]
    assert lease(annotator, project, item_id, "release").status_code == 200
    item = Item.objects.get(pk=item_id)
    project.refresh_from_db()
    assert (item.status, item.leased_to_id, project.reserved) == ("queued", None, 1)
    assert Assignment.objects.get(item_id=item_id).status == "released"
    other = MembershipFactory(project=project).user
    assert next_for(other, project).json()["item"]["id"] == item_id


def test_renewing_someone_elses_lease_is_409(project, annotator):
    other = MembershipFactory(project=project).user
    queue(project, ItemFactory.create_batch(1, project=project))
    item_id = next_for(other, project).json()["item"]["id"]
    assert lease(annotator, project, item_id, "renew").status_code == 409
    assert lease(annotator, project, item_id, "release").status_code == 409
    assert Item.objects.get(pk=item_id).leased_to_id == other.id


def test_manager_returns_skipped_items_to_the_pool(project, annotator, manager, settings):
    settings.ANNOTATION_SKIP_LIMIT = 1
    queue(project, ItemFactory.create_batch(1, project=project))
    item_id = next_for(annotator, project).json()["item"]["id"]
    skip(annotator, project, item_id)
    assert (
        api_client(annotator).post(f"/api/projects/{project.id}/skipped/return/").status_code == 403
    )
    response = api_client(manager).post(f"/api/projects/{project.id}/skipped/return/")
    assert response.json() == {"returned": 1}
    item = Item.objects.get(pk=item_id)
    assert (item.status, item.skip_count) == ("unlabeled", 0)


def with_prediction(project, top="dog", probability=0.75):
    Project.objects.filter(pk=project.pk).update(show_predictions=True)
    project.refresh_from_db()
    item = ItemFactory(project=project)
    other = "cat" if top == "dog" else "dog"
    queue(project, [item])
    Item.objects.filter(pk=item.pk).update(
        prediction={"labels": [[top, probability], [other, 1 - probability]]}
    )
    return item


def test_next_shows_the_model_suggestion_when_the_project_says_so(project, annotator):
    item = with_prediction(project)
    body = next_for(annotator, project).json()
    assert body["item"]["id"] == item.id
    assert body["item"]["suggestion"] == [
        {"label": "dog", "probability": 0.75},
        {"label": "cat", "probability": 0.25},
    ]


def test_next_hides_suggestions_by_default(project, annotator):
    with_prediction(project)
    Project.objects.filter(pk=project.pk).update(show_predictions=False)
    assert "suggestion" not in next_for(annotator, project).json()["item"]


def test_a_label_records_whether_it_agreed_with_the_suggestion(project, annotator):
    item = with_prediction(project)
    next_for(annotator, project)
    assert label(annotator, project, item.id, "cat").status_code == 201
    annotation = Annotation.objects.get(item=item)
    assert (annotation.suggestion_probability, annotation.suggestion_agreed) == (0.75, False)
    label(annotator, project, item.id, "dog")  # changing it to the suggestion
    annotation.refresh_from_db()
    assert annotation.suggestion_agreed is True


def test_a_manager_sees_the_round_strategy_and_score_that_queued_the_item(project, manager):
    queue(project, ItemFactory.create_batch(2, project=project))
    item = next_for(manager, project).json()["item"]
    assert item["queued_by"] == {"round": 1, "strategy": "random", "score": 1.0}
    held = next_for(manager, project).json()["item"]  # the held item, read by the ORM
    assert held["queued_by"] == item["queued_by"]


def test_an_annotator_never_sees_what_queued_the_item(project, annotator):
    queue(project, ItemFactory.create_batch(1, project=project))
    assert "queued_by" not in next_for(annotator, project).json()["item"]
