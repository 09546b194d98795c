"""Labels: submit (spends the reserved cost), idempotent repeats, relabeling, late labels."""

from django.db import connection, transaction
from django.utils import timezone

from annotation.errors import Conflict, ValidationFailed
from annotation.models import Annotation, Assignment, Item, Project
from annotation.services.budgets import budget_spend_reserved, budget_spend_unreserved
from annotation.services.items import item_get_for_update
from annotation.services.sql import one_statement_sql


def annotation_submit(
    *, project: Project, user, item_id: int, label: str
) -> tuple[Annotation, bool]:
    """Record `user`'s label for an item; returns (annotation, created), and leaves the
    project's `spent` and `budget` as they are after the label.

    Holds the item's row lock for the whole decision, so a label and a concurrent hand-out,
    skip, lease expiry or second label of the same item are serialized. Cases:
    - the item is queued and leased to the user (even if the lease has run out but was not
      released yet): the label is stored, the reserved cost is spent;
    - the user's lease expired and was released (the item went back to the pool, its
      reservation freed): the late label is accepted while nobody else holds or labeled the
      item and the budget allows it (the cost is spent anew), else 409;
    - the user already labeled it: same label -> nothing changes (idempotent), another
      label -> the label is changed at no new cost;
    - anything else (someone else holds or labeled it, it was never handed to the user)
      -> 409.
    """
    if label not in project.labels:
        raise ValidationFailed(
            f"{label!r} is not one of this project's labels: {', '.join(project.labels)}.",
            field="label",
        )
    if one_statement_sql() and not connection.in_atomic_block:
        annotation = _label_leased_sql(project, user, item_id, label)
        if annotation is not None:
            return annotation, True
    with transaction.atomic():
        item = item_get_for_update(project=project, item_id=item_id)
        if item.status == Item.Status.LABELED:
            return _relabel(project, user, item, label), False
        if item.status == Item.Status.QUEUED and item.leased_to_id == user.pk:
            return _label_reserved(project, user, item, label), True
        if item.leased_to_id is None and _lease_expired_for(item, user):
            if item.status == Item.Status.QUEUED:  # queued again by a round, and free
                return _label_reserved(project, user, item, label), True
            if item.status == Item.Status.UNLABELED:
                return _label_unreserved(project, user, item, label), True
        raise Conflict("This item is not assigned to you.", field="item")


def _lease_expired_for(item: Item, user) -> bool:
    return Assignment.objects.filter(
        item_id=item.pk, user=user, status=Assignment.Status.EXPIRED
    ).exists()


def _relabel(project: Project, user, item: Item, label: str) -> Annotation:
    annotation = Annotation.objects.select_for_update().get(item=item)
    if annotation.annotator_id != user.pk:
        raise Conflict("This item was labeled by someone else.", field="item")
    if annotation.label != label:
        annotation.label = label
        annotation.save(update_fields=["label", "updated_at"])
    project.refresh_from_db(fields=["spent", "budget"])
    return annotation


# The common case in one statement (PostgreSQL, autocommit: one round trip, no BEGIN or
# COMMIT): lock the item if it is queued and leased to the user, move its cost from
# reserved to spent in the project ledger (the one contended row lock, held only for this
# statement) and its group's, mark the item labeled, close the assignment and insert the
# annotation. Every sub-statement hangs off the project update, so if the item is not the
# user's or the reservation is missing, nothing is written and no row comes back; the
# caller then takes the general path.
_LABEL_SQL = """
WITH target AS (
    SELECT id, cost, "group" FROM annotation_item
    WHERE id = %(item)s AND project_id = %(project)s AND status = 'queued'
      AND leased_to_id = %(user)s
    FOR UPDATE
), ledger AS (
    UPDATE annotation_project AS project
    SET reserved = project.reserved - target.cost, spent = project.spent + target.cost
    FROM target
    WHERE project.id = %(project)s AND project.reserved >= target.cost
    RETURNING project.spent, project.budget, target.id, target.cost, target."group"
), group_ledger AS (
    UPDATE annotation_budgetgroup AS grp
    SET reserved = grp.reserved - ledger.cost, spent = grp.spent + ledger.cost
    FROM ledger
    WHERE grp.project_id = %(project)s AND ledger."group" <> '' AND grp.name = ledger."group"
      AND grp.reserved >= ledger.cost
), labeled AS (
    UPDATE annotation_item AS item
    SET status = 'labeled', leased_to_id = NULL, lease_expires_at = NULL
    FROM ledger WHERE item.id = ledger.id
), submitted AS (
    UPDATE annotation_assignment AS assignment SET status = 'submitted'
    FROM ledger WHERE assignment.item_id = ledger.id AND assignment.status = 'active'
), annotation AS (
    INSERT INTO annotation_annotation (item_id, annotator_id, label, cost, created_at, updated_at)
    SELECT ledger.id, %(user)s, %(label)s, ledger.cost, %(now)s, %(now)s FROM ledger
    RETURNING id
)
SELECT annotation.id, ledger.spent, ledger.budget, ledger.cost, ledger."group"
FROM ledger, annotation
"""


def _label_leased_sql(project: Project, user, item_id: int, label: str) -> Annotation | None:
    """PostgreSQL: label an item queued and leased to `user` in one statement; None if
    the item is in any other state (the general path decides what that means)."""
    now = timezone.now()
    params = {"project": project.pk, "item": item_id, "user": user.pk, "label": label, "now": now}
    with connection.cursor() as cursor:
        cursor.execute(_LABEL_SQL, params)
        row = cursor.fetchone()
    if row is None:
        return None
    annotation_id, project.spent, project.budget, cost, group = row
    item = Item(id=item_id, project=project, status=Item.Status.LABELED, cost=cost, group=group)
    annotation = Annotation(id=annotation_id, item=item, annotator=user, label=label, cost=cost)
    annotation.created_at = annotation.updated_at = now
    for instance in (item, annotation):
        instance._state.adding, instance._state.db = False, "default"
    return annotation


def _label_reserved(project: Project, user, item: Item, label: str) -> Annotation:
    """Label an item (row locked by the caller) whose cost is reserved: spend it."""
    Item.objects.filter(pk=item.pk).update(
        status=Item.Status.LABELED, leased_to=None, lease_expires_at=None
    )
    Assignment.objects.filter(item=item, status=Assignment.Status.ACTIVE).update(
        status=Assignment.Status.SUBMITTED
    )
    annotation = Annotation.objects.create(item=item, annotator=user, label=label, cost=item.cost)
    # The budget last: the project row is the one every label locks.
    budget_spend_reserved(project_id=project.pk, cost=item.cost, group=item.group)
    project.refresh_from_db(fields=["spent", "budget"])
    return annotation


def _label_unreserved(project: Project, user, item: Item, label: str) -> Annotation:
    """A late label on an item back in the pool: spend its cost if the budget allows."""
    budget_spend_unreserved(project_id=project.pk, cost=item.cost, group=item.group)
    Item.objects.filter(pk=item.pk).update(status=Item.Status.LABELED)
    annotation = Annotation.objects.create(item=item, annotator=user, label=label, cost=item.cost)
    project.refresh_from_db(fields=["spent", "budget"])
    return annotation


def annotation_last_for(*, project: Project, user) -> Annotation | None:
    """The user's most recent label in the project (the labeling page's `u` key)."""
    return (
        Annotation.objects.filter(item__project=project, annotator=user)
        .select_related("item")
        .order_by("-updated_at", "-id")
        .first()
    )
