"""Budget rules: `spent + reserved <= budget` for the project and for every budget group.

An item's cost is reserved when a round queues it, moved from reserved to spent when it is
labeled, and released when it is skipped or dropped from the queue. Every change is a
conditional UPDATE, and the CHECK constraints on Project and BudgetGroup make the database
refuse any write that would overspend, so no interleaving of requests can break the rule.
"""

from decimal import Decimal

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from annotation.errors import Conflict, ValidationFailed
from annotation.models import Assignment, BudgetGroup, Item, Project


def _group_qs(*, project_id: int, group: str):
    return BudgetGroup.objects.filter(project_id=project_id, name=group)


def budget_spend_reserved(*, project_id: int, cost: Decimal, group: str) -> None:
    """Move `cost` from reserved to spent. Call inside the transaction that labels the item."""
    updated = Project.objects.filter(pk=project_id, reserved__gte=cost).update(
        reserved=F("reserved") - cost, spent=F("spent") + cost
    )
    if updated != 1:
        raise Conflict("The item's cost is not reserved in the project budget.", code="budget")
    if group:
        _group_qs(project_id=project_id, group=group).filter(reserved__gte=cost).update(
            reserved=F("reserved") - cost, spent=F("spent") + cost
        )


def budget_release(*, project_id: int, cost: Decimal, group: str) -> None:
    """Give back a reservation (skip, or an item dropped from the queue)."""
    Project.objects.filter(pk=project_id, reserved__gte=cost).update(reserved=F("reserved") - cost)
    if group:
        _group_qs(project_id=project_id, group=group).filter(reserved__gte=cost).update(
            reserved=F("reserved") - cost
        )


def budget_spend_unreserved(*, project_id: int, cost: Decimal, group: str) -> None:
    """Spend `cost` that was not reserved (a late label), only if it fits; else 409."""
    updated = Project.objects.filter(
        pk=project_id, budget__gte=F("spent") + F("reserved") + cost
    ).update(spent=F("spent") + cost)
    if updated != 1:
        raise Conflict("The budget is exhausted: this label would exceed it.", code="budget")
    if group:
        groups = _group_qs(project_id=project_id, group=group)
        if groups.exists():
            fits = groups.filter(budget__gte=F("spent") + F("reserved") + cost).update(
                spent=F("spent") + cost
            )
            if fits != 1:
                raise Conflict(
                    f"The budget of group {group!r} is exhausted: this label would exceed it.",
                    code="budget",
                )


def budget_set(*, project: Project, budget: Decimal) -> Project:
    """Change the project budget.

    Raising it takes effect at once. Lowering it below `spent` is refused; lowering it below
    `spent + reserved` drops queued, unleased items (the last-ranked first) until the
    reservations fit again. Holds the project row lock for the whole change.
    """
    if budget < 0:
        raise ValidationFailed("The budget cannot be negative.", field="budget")
    with transaction.atomic():
        locked = Project.objects.select_for_update().get(pk=project.pk)
        if budget < locked.spent:
            raise ValidationFailed(
                f"The budget cannot be lower than what is already spent ({locked.spent}).",
                field="budget",
            )
        if locked.spent + locked.reserved > budget:
            _drop_queued(ledger=locked, target=budget)
            locked.refresh_from_db()
        if locked.spent + locked.reserved > budget:
            raise Conflict(
                "The budget cannot be lowered that far now: items reserved under it are being "
                "labeled. Try again once they are done.",
                field="budget",
            )
        Project.objects.filter(pk=locked.pk).update(budget=budget)
        locked.refresh_from_db()
        if BudgetGroup.objects.filter(project=locked, share__isnull=False).exists():
            # Shares follow the budget: recompute them through the one validating path.
            budget_groups_set(
                project=locked,
                groups=[
                    {"name": g.name, "share": g.share}
                    if g.share is not None
                    else {"name": g.name, "budget": g.budget}
                    for g in BudgetGroup.objects.filter(project=locked)
                ],
            )
    return locked


def _drop_queued(
    *, ledger: Project | BudgetGroup, target: Decimal, group: str | None = None
) -> None:
    """Unqueue free items (of `group`, if given), last in queue order first, until the
    ledger's (a Project's or a BudgetGroup's) spent + reserved <= target."""
    excess = ledger.spent + ledger.reserved - target
    free = Item.objects.select_for_update(skip_locked=True).filter(status=Item.Status.QUEUED)
    if group is None:
        free = free.filter(project=ledger)
    else:
        free = free.filter(project_id=ledger.project_id, group=group)
    free = free.exclude(lease_expires_at__gt=timezone.now()).order_by(
        "-queued_round", "-queue_rank"
    )
    for item in free.iterator(chunk_size=200):
        if excess <= 0:
            break
        item_unqueue(item=item)
        excess -= item.cost


def item_unqueue(*, item: Item) -> None:
    """Put a queued item (row locked by the caller) back in the pool and free its cost;
    a lease on it (expired, or the caller would not unqueue it) is closed as expired."""
    Assignment.objects.filter(item_id=item.pk, status=Assignment.Status.ACTIVE).update(
        status=Assignment.Status.EXPIRED
    )
    Item.objects.filter(pk=item.pk, status=Item.Status.QUEUED).update(
        status=Item.Status.UNLABELED,
        queued_round=None,
        queue_rank=None,
        score=None,
        acquisition="",
        queued_at=None,
        leased_to=None,
        lease_expires_at=None,
    )
    budget_release(project_id=item.project_id, cost=item.cost, group=item.group)


def _group_budget(*, project_budget: Decimal, share: Decimal | None, budget: Decimal | None):
    if share is not None:
        return (project_budget * share).quantize(Decimal("0.01"))
    return budget


def budget_groups_set(*, project: Project, groups: list[dict]) -> list[BudgetGroup]:
    """Replace the project's group allocations with `groups`.

    Each entry: `name` and either `share` (a fraction of the project budget, 0..1) or an
    absolute `budget`. The allocations together may not exceed the project budget; a group
    cannot get less than it has spent (its queued items that no longer fit are unqueued),
    and a group that has spent or reserved anything cannot be removed. Holds the project
    row lock.
    """
    names = [g["name"] for g in groups]
    if len(set(names)) != len(names):
        raise ValidationFailed("Group names must be distinct.", field="groups")
    with transaction.atomic():
        locked = Project.objects.select_for_update().get(pk=project.pk)
        existing = {
            g.name: g for g in BudgetGroup.objects.select_for_update().filter(project=locked)
        }
        wanted = {}
        for entry in groups:
            share, budget = entry.get("share"), entry.get("budget")
            if (share is None) == (budget is None):
                raise ValidationFailed(
                    f"Group {entry['name']!r}: give either a share or a budget.", field="groups"
                )
            wanted[entry["name"]] = (
                share,
                _group_budget(project_budget=locked.budget, share=share, budget=budget),
            )
        total = sum((b for _, b in wanted.values()), Decimal(0))
        if total > locked.budget:
            raise ValidationFailed(
                f"The groups' allocations ({total}) exceed the project budget ({locked.budget}).",
                field="groups",
            )
        for name, group in existing.items():
            if name not in wanted:
                if group.spent or group.reserved:
                    raise ValidationFailed(
                        f"Group {name!r} has spent or reserved budget and cannot be removed.",
                        field="groups",
                    )
                group.delete()
        result = []
        for name, (share, budget) in wanted.items():
            group = existing.get(name) or BudgetGroup(project=locked, name=name, budget=budget)
            if group.pk and budget < group.spent:
                raise ValidationFailed(
                    f"Group {name!r} has spent {group.spent}: its budget cannot be lower.",
                    field="groups",
                )
            if group.pk and budget < group.spent + group.reserved:
                _drop_queued_in_group(group=group, target=budget)
                group.refresh_from_db()
            group.share, group.budget = share, budget
            group.save()
            result.append(group)
    return result


def _drop_queued_in_group(*, group: BudgetGroup, target: Decimal) -> None:
    _drop_queued(ledger=group, target=target, group=group.name)
    group.refresh_from_db()
    if group.spent + group.reserved > target:
        raise Conflict(
            f"Group {group.name!r} cannot be lowered that far now: its reserved items are "
            "being labeled. Try again once they are done.",
            field="groups",
        )
