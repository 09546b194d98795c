"""Budget configuration: the project budget and the group allocations.

What spends and reserves budget is an item's life, in annotation.services.queue (with the
lock order: items, then groups, then the project). Here: raising and lowering budgets,
which lock the group rows, then the project row, and unqueue what no longer fits through
queue.items_unqueue_to_fit (items taken with SKIP LOCKED, as that order demands).
"""

from decimal import Decimal

from django.db import transaction

from annotation.errors import Conflict, ValidationFailed
from annotation.models import BudgetGroup, Project
from annotation.services.queue import items_unqueue_to_fit


def budget_set(*, project: Project, budget: Decimal) -> Project:
    """Change the project budget.

    Raising it takes effect at once. Lowering it below `spent` is refused; lowering it below
    `spent + reserved` drops queued, unleased items (the last-ranked first) until the
    reservations fit again. Holds the project row lock for the whole change.
    """
    if budget < 0:
        raise ValidationFailed("The budget cannot be negative.", field="budget")
    with transaction.atomic():
        list(BudgetGroup.objects.select_for_update().filter(project=project).order_by("id"))
        locked = Project.objects.select_for_update().get(pk=project.pk)
        if budget < locked.spent:
            raise ValidationFailed(
                f"The budget cannot be lower than what is already spent ({locked.spent}).",
                field="budget",
            )
        if locked.spent + locked.reserved > budget:
            items_unqueue_to_fit(ledger=locked, target=budget)
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
        existing = {
            g.name: g
            for g in BudgetGroup.objects.select_for_update().filter(project=project).order_by("id")
        }
        locked = Project.objects.select_for_update().get(pk=project.pk)
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
    items_unqueue_to_fit(ledger=group, target=target, group=group.name)
    group.refresh_from_db()
    if group.spent + group.reserved > target:
        raise Conflict(
            f"Group {group.name!r} cannot be lowered that far now: its reserved items are "
            "being labeled. Try again once they are done.",
            field="groups",
        )
