"""Browser pages: the project list, the dashboard and the labeling page."""

from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q
from django.http import Http404
from django.shortcuts import get_object_or_404, render

from annotation.charts import line_chart
from annotation.models import Annotation, Item, Membership, Project
from annotation.selectors.projects import project_list_for, project_role_for
from annotation.selectors.rounds import round_list


def _project_for(request, pk: int) -> tuple[Project, str]:
    project = get_object_or_404(Project, pk=pk)
    role = project_role_for(project=project, user=request.user)
    if role is None:
        raise Http404("No such project.")
    return project, role


@login_required
def project_list(request):
    return render(
        request, "annotation/project_list.html", {"projects": project_list_for(user=request.user)}
    )


@login_required
def project_dashboard(request, pk: int):
    project, role = _project_for(request, pk)
    rounds = list(round_list(project=project))
    done = [r for r in rounds if r.status == "done"]
    status_counts = dict(
        Item.objects.filter(project=project)
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    annotators = (
        Annotation.objects.filter(item__project=project)
        .values("annotator__username")
        .annotate(n=Count("id"), spent_by=Count("id", filter=Q(cost__gt=0)))
        .order_by("-n")
    )
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
            [(r.number, float(r.budget_spent)) for r in done],
            x_label="round",
            y_label="budget spent",
            y_max=float(project.budget),
        ),
        "curve_chart": line_chart(
            [(r.labeled_count, r.accuracy) for r in done if r.accuracy is not None],
            x_label="labels",
            y_label="estimated accuracy (out-of-bag)",
            y_max=1.0,
        ),
        "groups": project.budget_groups.all(),
    }
    return render(request, "annotation/dashboard.html", context)


@login_required
def label_page(request, pk: int):
    project, role = _project_for(request, pk)
    return render(request, "annotation/label.html", {"project": project, "role": role})
