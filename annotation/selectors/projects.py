"""Reads for pages and the API: who may see which project, with its counts."""

from django.db.models import Count, Q, QuerySet

from annotation.models import Item, Membership, Project


def project_list_for(*, user) -> QuerySet[Project]:
    """Projects `user` may see (staff: all), with item and labeled counts in one query."""
    projects = Project.objects.all()
    if not user.is_staff:
        projects = projects.filter(memberships__user=user)
    return projects.annotate(
        item_count=Count("items", distinct=True),
        labeled_count=Count("items", filter=Q(items__status=Item.Status.LABELED), distinct=True),
    ).order_by("id")


def project_role_for(*, project: Project, user) -> str | None:
    """'manager' (staff count as managers), 'annotator', or None for outsiders."""
    if user.is_staff:
        return Membership.Role.MANAGER
    return (
        Membership.objects.filter(project=project, user=user).values_list("role", flat=True).first()
    )
