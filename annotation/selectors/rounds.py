"""Reads of rounds: the list with each round's audit estimate (Project.audit_share)."""

import math

from django.db import connection

from annotation.models import AUDIT, Item, Project, Round

_AUDIT_SQL = """
SELECT item.queued_round, count(*),
    count(*) FILTER (WHERE item.prediction -> 'labels' -> 0 ->> 0 = annotation.label)
FROM annotation_item AS item
JOIN annotation_annotation AS annotation ON annotation.item_id = item.id
WHERE item.project_id = %s AND item.acquisition = %s AND item.status = %s
    AND item.prediction IS NOT NULL
GROUP BY item.queued_round
"""


def wilson_interval(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion correct / n (n > 0)."""
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def round_audits(*, project: Project) -> dict[int, tuple[int, int]]:
    """Round number -> (audit items labeled, how many of them the round's model got right).

    The audit items of round r were drawn uniformly from the pool the round's model was
    trained beside and labeled after it: its accuracy on them is an unbiased estimate of
    its accuracy on the pool."""
    with connection.cursor() as cursor:
        cursor.execute(_AUDIT_SQL, [project.pk, AUDIT, Item.Status.LABELED])
        return {r: (n, correct) for r, n, correct in cursor.fetchall()}


def round_list(*, project: Project) -> list[Round]:
    """The project's rounds in order, each with `audit_labeled`, `audit_accuracy`,
    `audit_low` and `audit_high` (None until an audit item of the round is labeled)."""
    audits = round_audits(project=project)
    rounds = list(Round.objects.filter(project=project).defer("model").order_by("number"))
    for rnd in rounds:
        n, correct = audits.get(rnd.number, (0, 0))
        rnd.audit_labeled = n
        rnd.audit_accuracy = rnd.audit_low = rnd.audit_high = None
        if n:
            rnd.audit_accuracy = correct / n
            rnd.audit_low, rnd.audit_high = wilson_interval(correct, n)
    return rounds


def round_latest_model(*, project: Project) -> tuple[int, bytes] | None:
    """(round number, the ensemble's file) of the project's latest round that trained one
    (sampler.ensemble.MLPEnsemble.to_bytes: a torch.save file), or None."""
    row = (
        Round.objects.filter(project=project, model__isnull=False)
        .order_by("-number")
        .values_list("number", "model")
        .first()
    )
    return None if row is None else (row[0], bytes(row[1]))


def project_featurizer_name(project: Project) -> str:
    """What turned the project's items into the model's inputs: the text featurizer's name
    ("minilm", "hashed"), "image" (16x16 grey pixels) or "features" (as given)."""
    if project.kind == Project.Kind.TEXT:
        return project.text_featurizer
    return project.kind or ""
