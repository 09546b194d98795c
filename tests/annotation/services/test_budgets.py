from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from annotation.models import BudgetGroup, Item, Project
from tests.factories import ItemFactory, ProjectFactory, queue

pytestmark = pytest.mark.django_db


def test_database_refuses_spending_past_the_budget():
    project = ProjectFactory(budget=Decimal(2))
    with pytest.raises(IntegrityError), transaction.atomic():
        Project.objects.filter(pk=project.pk).update(spent=Decimal(3))


def test_database_refuses_reserving_past_a_group_budget():
    group = BudgetGroup.objects.create(project=ProjectFactory(), name="g", budget=Decimal(1))
    with pytest.raises(IntegrityError), transaction.atomic():
        BudgetGroup.objects.filter(pk=group.pk).update(reserved=Decimal(2))


def test_queue_reserves_only_what_fits_the_budget():
    project = ProjectFactory(budget=Decimal(4))
    items = [ItemFactory(project=project, cost=c) for c in (Decimal(3), Decimal(2), Decimal(1))]
    rnd = queue(project, items)
    assert [i.status for i in items] == ["queued", "unlabeled", "queued"]
    assert project.reserved == 4
    assert (rnd.queued_count, rnd.queued_cost) == (2, 4)


def test_queue_ranks_items_in_pick_order():
    project = ProjectFactory(budget=Decimal(10))
    items = ItemFactory.create_batch(3, project=project)
    rnd = queue(project, [items[2], items[0], items[1]])
    assert [(i.queue_rank, i.queued_round, i.acquisition) for i in items] == [
        (1, rnd.number, "random"),
        (2, rnd.number, "random"),
        (0, rnd.number, "random"),
    ]
    assert [i.score for i in items] == [0.999, 0.998, 1.0]
    assert all(i.status == "queued" and i.queued_at is not None for i in items)


def test_queue_respects_group_allocations():
    project = ProjectFactory(budget=Decimal(10))
    BudgetGroup.objects.create(project=project, name="rare", budget=Decimal(1))
    items = [
        ItemFactory(project=project, group="rare"),
        ItemFactory(project=project, group="rare"),
        ItemFactory(project=project, group="common"),
    ]
    queue(project, items)
    assert [i.status for i in items] == ["queued", "unlabeled", "queued"]
    assert BudgetGroup.objects.get(name="rare").reserved == 1


def test_queue_skips_items_that_are_no_longer_unlabeled():
    project = ProjectFactory()
    item = ItemFactory(project=project, status=Item.Status.LABELED)
    queue(project, [item])
    assert project.reserved == 0
