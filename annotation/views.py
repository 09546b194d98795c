"""Browser pages: the project list, the dashboard and the labeling page."""

from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q
from django.http import Http404
from django.shortcuts import get_object_or_404, render

from annotation.charts import line_chart
from annotation.models import (
    ACQUISITION_CHOICES,
    DEFAULT_ACQUISITION,
    Annotation,
    Assignment,
    CostRule,
    Item,
    Membership,
    Project,
)
from annotation.selectors.projects import (
    project_can_create,
    project_label_keys,
    project_list_for,
    project_role_for,
    project_spend_over_time,
)
from annotation.selectors.rounds import round_list


def _project_for(request, pk: int) -> tuple[Project, str]:
    project = get_object_or_404(Project, pk=pk)
    role = project_role_for(project=project, user=request.user)
    if role is None:
        raise Http404("No such project.")
    return project, role


@login_required
def project_list(request):
    projects = list(project_list_for(user=request.user))
    for p in projects:
        budget = float(p.budget) or 1.0
        p.spent_pct = round(100 * float(p.spent) / budget, 1)
        p.reserved_pct = round(100 * float(p.reserved) / budget, 1)
    context = {"projects": projects, "can_create": project_can_create(user=request.user)}
    return render(request, "annotation/project_list.html", context)


@login_required
def project_new(request):
    """The new-project form; it posts to the API, which validates and answers errors."""
    if not project_can_create(user=request.user):
        raise Http404("No such page.")
    context = {"strategies": ACQUISITION_CHOICES, "default_strategy": DEFAULT_ACQUISITION}
    return render(request, "annotation/project_new.html", context)


@login_required
def project_settings(request, pk: int):
    """A project's settings, budget groups and members (managers only; everyone else gets
    404). A plain form page: its script sends the API's own calls and shows its errors."""
    project, role = _project_for(request, pk)
    if role != Membership.Role.MANAGER:
        raise Http404("No such page.")
    context = {
        "project": project,
        "strategies": ACQUISITION_CHOICES,
        "cost_rules": CostRule.choices,
        "group_modes": Project.GroupMode.choices,
        "roles": Membership.Role.choices,
        "groups": project.budget_groups.order_by("id"),
        "members": project.memberships.select_related("user").order_by("user__username"),
    }
    return render(request, "annotation/project_settings.html", context)


@login_required
def project_dashboard(request, pk: int):
    return render(request, "annotation/dashboard.html", _dashboard_context(request, pk))


@login_required
def project_dashboard_live(request, pk: int):
    """The dashboard's live part alone: the page polls it (no reload)."""
    return render(request, "annotation/_dashboard_live.html", _dashboard_context(request, pk))


def _dashboard_context(request, pk: int) -> dict:
    project, role = _project_for(request, pk)
    rounds = list(round_list(project=project))
    done = [r for r in rounds if r.status == "done"]
    status_counts = dict(
        Item.objects.filter(project=project)
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    annotators = list(
        Annotation.objects.filter(item__project=project)
        .values("annotator__username")
        .annotate(
            n=Count("id"),
            spent_by=Count("id", filter=Q(cost__gt=0)),
            agreed=Count("id", filter=Q(suggestion_agreed=True)),
            suggested=Count("id", filter=Q(suggestion_agreed__isnull=False)),
        )
        .order_by("-n")
    )
    skips = dict(
        Assignment.objects.filter(item__project=project, status=Assignment.Status.SKIPPED)
        .values_list("user__username")
        .annotate(n=Count("id"))
        .values_list("user__username", "n")
    )
    for row in annotators:
        row["skips"] = skips.pop(row["annotator__username"], 0)
    annotators += [{"annotator__username": u, "n": 0, "skips": n} for u, n in skips.items()]
    budget = float(project.budget) or 1.0
    context = {
        "project": project,
        "role": role,
        "is_manager": role == Membership.Role.MANAGER,
        "rounds": rounds,
        "status_counts": status_counts,
        "annotators": annotators,
        "spent_pct": round(100 * float(project.spent) / budget, 1),
        "reserved_pct": round(100 * float(project.reserved) / budget, 1),
        "burn_chart": line_chart(
            project_spend_over_time(project=project),
            x_label="minutes since the first label",
            y_label="budget spent",
            y_max=float(project.budget),
        ),
        "curve_chart": line_chart(
            [(r.labeled_count, r.accuracy) for r in done if r.accuracy is not None],
            x_label="labels",
            y_label="estimated accuracy (out-of-bag)",
            y_max=1.0,
        ),
        "audit_chart": line_chart(
            [(r.labeled_count, r.audit_accuracy) for r in rounds if r.audit_accuracy is not None],
            x_label="labels",
            y_label="accuracy on the random audit slice (unbiased)",
            y_max=1.0,
        ),
        "groups": project.budget_groups.all(),
        "running": next((r for r in rounds if r.status == "running"), None),
    }
    return context


@login_required
def label_page(request, pk: int):
    project, role = _project_for(request, pk)
    keys = project_label_keys(project=project)
    context = {
        "project": project,
        "role": role,
        "keys": keys,
        "key_labels": {key: label for label, key in keys if key},
    }
    return render(request, "annotation/label.html", context)
