"""Projects: creation, configuration and membership."""

from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import transaction

from annotation.errors import ValidationFailed
from annotation.models import Annotation, Membership, Project
from annotation.services.budgets import budget_set

CONFIG_FIELDS = (
    "name",
    "labels",
    "acquisition",
    "batch_size",
    "ensemble_size",
    "queue_low_water",
    "lease_seconds",
    "cost_rule",
    "cost_value",
    "cost_floor",
    "out_of_scope_label",
    "out_of_scope_threshold",
    "text_featurizer",
    "show_predictions",
    "audit_share",
    "group_mode",
    "group_floor",
    "paused",
    "keymap",
)


def project_create(*, creator, budget: Decimal, **fields) -> Project:
    """Create a project; its creator becomes a manager of it."""
    with transaction.atomic():
        project = Project.objects.create(budget=budget, **fields)
        Membership.objects.create(project=project, user=creator, role=Membership.Role.MANAGER)
    return project


def project_update(*, project: Project, **changes) -> Project:
    """Change configuration. Labels in use cannot be removed; the budget goes through
    budget_set (refused below spent; lowering it unqueues what no longer fits)."""
    if "labels" in changes:
        used = set(
            Annotation.objects.filter(item__project=project)
            .values_list("label", flat=True)
            .distinct()
        )
        missing = sorted(used - set(changes["labels"]))
        if missing:
            raise ValidationFailed(
                f"Labels already used cannot be removed: {', '.join(missing)}.", field="labels"
            )
    if changes.get("text_featurizer", project.text_featurizer) != project.text_featurizer:
        if project.items.filter(vector__isnull=False).exists():
            raise ValidationFailed(
                "The text featurizer cannot change once items are featurized: their vectors "
                "would not be comparable. Create a new project instead.",
                field="text_featurizer",
            )
    budget = changes.pop("budget", None)
    with transaction.atomic():
        if budget is not None:
            project = budget_set(project=project, budget=budget)
        unknown = set(changes) - set(CONFIG_FIELDS)
        if unknown:
            raise ValidationFailed(f"Cannot change {sorted(unknown)[0]}.", field=sorted(unknown)[0])
        if changes:
            Project.objects.filter(pk=project.pk).update(**changes)
        project.refresh_from_db()
    return project


def membership_set(
    *,
    project: Project,
    username: str,
    role: str,
    quota_total: int | None = None,
    quota_daily: int | None = None,
) -> Membership:
    """Add a user to the project with `role` and optional label quotas, or change them."""
    User = get_user_model()
    try:
        user = User.objects.get(username=username)
    except User.DoesNotExist as exc:
        raise ValidationFailed(f"No user named {username!r}.", field="username") from exc
    membership, _ = Membership.objects.update_or_create(
        project=project,
        user=user,
        defaults={"role": role, "quota_total": quota_total, "quota_daily": quota_daily},
    )
    return membership
