from django.db.models import QuerySet

from annotation.models import Project, Round


def round_list(*, project: Project) -> QuerySet[Round]:
    return Round.objects.filter(project=project).defer("model").order_by("number")
