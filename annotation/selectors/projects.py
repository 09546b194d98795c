"""Reads for pages and the API: who may see which project, with its counts."""

from django.db.models import Count, Q, QuerySet

from annotation.models import Annotation, Item, Membership, Project


def project_list_for(*, user) -> QuerySet[Project]:
    """Projects `user` may see (superusers: all; staff only their own: `is_staff` is for
    the admin site), with item and labeled counts in one query."""
    projects = Project.objects.all()
    if not user.is_superuser:
        projects = projects.filter(memberships__user=user)
    return projects.annotate(
        item_count=Count("items", distinct=True),
        labeled_count=Count("items", filter=Q(items__status=Item.Status.LABELED), distinct=True),
    ).order_by("id")


def project_role_for(*, project: Project, user) -> str | None:
    """'manager' (superusers count as managers), 'annotator', or None for outsiders."""
    if user.is_superuser:
        return Membership.Role.MANAGER
    return (
        Membership.objects.filter(project=project, user=user).values_list("role", flat=True).first()
    )


_MEMBER_SQL = """
SELECT project.*, membership.role AS member_role,
    membership.quota_total AS member_quota_total, membership.quota_daily AS member_quota_daily,
    EXISTS (
        SELECT 1 FROM annotation_webhook AS hook
        WHERE hook.project_id = project.id AND hook.active
            AND hook.events @> '["labels.created"]'::jsonb
    ) AS has_label_hooks
FROM annotation_project AS project
LEFT JOIN annotation_membership AS membership
    ON membership.project_id = project.id AND membership.user_id = %s
WHERE project.id = %s
"""


def project_for_member(*, pk: int, user) -> Project | None:
    """The project with the caller's membership in one query, or None if there is no such
    project. Sets `role` (as project_role_for), `member_quota_total` /
    `member_quota_daily` (None when not a member or no quota) and `has_label_hooks`
    (an active webhook wants labels.created: a label need not look for one otherwise)."""
    if not 0 < pk < 2**63:  # beyond any bigint id (the ORM answers such lookups empty too)
        return None
    project = next(iter(Project.objects.raw(_MEMBER_SQL, [user.pk, pk])), None)
    if project is not None:
        project.role = Membership.Role.MANAGER if user.is_superuser else project.member_role
    return project


def project_can_create(*, user) -> bool:
    """Whether `user` may create projects (the API's rule: staff or the add permission)."""
    return user.is_staff or user.has_perm("annotation.add_project")


def project_spend_over_time(*, project: Project, points: int = 200) -> list[tuple[float, float]]:
    """Budget spent over time: (minutes since the first label, cumulative cost), at most
    `points` points (evenly thinned, the last one kept)."""
    rows = list(
        Annotation.objects.filter(item__project=project)
        .order_by("created_at")
        .values_list("created_at", "cost")
    )
    if not rows:
        return []
    start, total, series = rows[0][0], 0.0, []
    for created_at, cost in rows:
        total += float(cost)
        series.append(((created_at - start).total_seconds() / 60, total))
    step = max(1, len(series) // points)
    thinned = series[::step]
    if thinned[-1] != series[-1]:
        thinned.append(series[-1])
    return [(0.0, 0.0), *thinned] if thinned[0][1] > 0 else thinned


def project_label_keys(*, project: Project) -> list[tuple[str, str]]:
    """(label, key) for every label in order, as the labeling page binds them: the
    project's `keymap` first; the others keep their default key (1-9 then 0, by position)
    unless the map uses it ("" then: the button only)."""
    custom = project.keymap or {}
    taken = {key.lower() for key in custom.values()}
    keys = []
    for i, label in enumerate(project.labels):
        default = str(i + 1) if i < 9 else "0" if i == 9 else ""
        keys.append((label, custom.get(label) or (default if default not in taken else "")))
    return keys
