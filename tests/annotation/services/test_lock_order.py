"""The lock order of annotation.services.queue (items, then groups, then the project) under
real concurrency: the interleavings that used to deadlock, driven on purpose."""

import threading

import pytest

from annotation.models import Annotation, Item, Project, Round
from annotation.services import queue as queue_service
from annotation.services.queue import item_leases_expire
from annotation.services.rounds import round_queue
from tests.conftest import api_client
from tests.factories import ItemFactory, MembershipFactory, ProjectFactory, queue

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_late_label_and_a_round_requeuing_its_item_neither_deadlock_nor_fail():
    """A late label holds the item's row and then needs the project row; a round queueing
    that same item holds the project row. If the round waited for the item row while
    holding the project (the old order), PostgreSQL would find a deadlock and one side
    would fail (a 500 for the label). The round takes items with SKIP LOCKED: both finish."""
    project = ProjectFactory(budget=10)
    user = MembershipFactory(project=project).user
    item = ItemFactory(project=project)
    queue(project, [item])
    assert api_client(user).post(f"/api/projects/{project.id}/next/").json()["item"]["id"] == (
        item.id
    )
    Item.objects.filter(pk=item.pk).update(lease_expires_at="2000-01-01T00:00:00Z")
    assert item_leases_expire(project_id=project.id) == 1  # back in the pool, unreserved
    project.refresh_from_db()
    number = project.round + 1
    rnd = Round.objects.create(project=project, number=number, strategy="random")
    Project.objects.filter(pk=project.pk).update(round=number)

    label_holds_item = threading.Event()
    round_waiting = threading.Event()
    original = queue_service._lease_lost_by

    def pause_while_holding_the_item(item_row, who):
        label_holds_item.set()  # the label's transaction holds the item row now
        round_waiting.wait(timeout=5)
        return original(item_row, who)

    outcome = {}

    def late_label():
        try:
            response = api_client(user).post(
                f"/api/projects/{project.id}/annotations/",
                {"item": item.id, "label": "cat"},
                format="json",
            )
            outcome["label"] = response.status_code
        except Exception as exc:  # noqa: BLE001 (the test reports it)
            outcome["label"] = exc

    def requeue():
        try:
            round_queue(round_id=rnd.pk, picks=[(item.id, 1.0)])
            outcome["round"] = "done"
        except Exception as exc:  # noqa: BLE001
            outcome["round"] = exc

    queue_service._lease_lost_by = pause_while_holding_the_item
    try:
        labeler = threading.Thread(target=late_label)
        labeler.start()
        assert label_holds_item.wait(timeout=10)
        rounder = threading.Thread(target=requeue)
        rounder.start()
        rounder.join(timeout=2)  # blocked on the item here would mean the old lock order
        round_waiting.set()
        labeler.join(timeout=20)
        rounder.join(timeout=20)
    finally:
        queue_service._lease_lost_by = original
    assert outcome == {"label": 201, "round": "done"}
    item.refresh_from_db()
    project.refresh_from_db()
    assert item.status == "labeled"
    assert Annotation.objects.get(item=item).label == "cat"
    assert (project.spent, project.reserved) == (1, 0)
    assert Round.objects.get(pk=rnd.pk).queued_count == 0
