"""Formats other tools speak: Label Studio JSON task exports in and out.

A Label Studio task is `{"id", "data": {"text"|"image"|"features": ..., "external_id"?},
"annotations": [{"result": [{"type": "choices", "value": {"choices": [NAME]}}], ...}],
"predictions": [{"result": [...], "score": p, "model_version": ...}], "meta": {...}}`.

Import (`labelstudio_import`): each task becomes an item (its `meta` kept verbatim, its
`external_id` the data's `external_id` or else the task `id`), its latest non-cancelled
annotation becomes the item's label (history brought over: it spends none of the budget,
cost 0, annotator the importing user), and its `predictions` are kept verbatim in the
item's `prediction` (`{"labels": [[name, p]], "labelstudio": [...]}`), so a re-export gives
them back. Export (`labelstudio_tasks`): the export records of labeled items as tasks.
"""

from collections.abc import Iterable, Iterator
from decimal import Decimal
from itertools import chain

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from annotation.errors import ValidationFailed
from annotation.models import Annotation, Item, Project
from annotation.services.imports import CONTENT_FIELDS, RowError, items_import

DATA_FIELDS = (*CONTENT_FIELDS, "external_id")
TASK_FIELDS = (
    "id",
    "data",
    "annotations",
    "predictions",
    "meta",
    # written by Label Studio's exports, ignored here
    "created_at",
    "updated_at",
    "inner_id",
    "total_annotations",
    "cancelled_annotations",
    "total_predictions",
    "comment_count",
    "unresolved_comment_count",
    "last_comment_updated_at",
    "project",
    "updated_by",
    "file_upload",
    "comment_authors",
    "annotators",
    "drafts",
    "is_labeled",
    "overlap",
)


def labelstudio_split(rows: Iterable) -> tuple[list | None, Iterator]:
    """Look at the first of the parsed upload rows (a stream): Label Studio tasks (an
    object with a `data` object) come back as the whole list, to labelstudio_import, and
    (None, the rows as they were) otherwise."""
    it = iter(rows)
    first = next(it, None)
    if first is None:
        return None, iter(())
    rest = chain([first], it)
    if isinstance(first, dict) and isinstance(first.get("data"), dict):
        return list(rest), iter(())
    return None, rest


def is_labelstudio(rows) -> bool:
    """Whether parsed upload rows are Label Studio tasks (objects with a `data` object)."""
    return (
        isinstance(rows, list)
        and bool(rows)
        and all(isinstance(row, dict) and isinstance(row.get("data"), dict) for row in rows)
    )


def _choice(number: int, result: list, where: str) -> str | None:
    """The first `choices` value of a Label Studio result list, or None if it has none."""
    if not isinstance(result, list):
        raise RowError(number, where, "'result' must be a list")
    for region in result:
        if isinstance(region, dict) and region.get("type", "choices") == "choices":
            choices = (region.get("value") or {}).get("choices")
            if isinstance(choices, list) and choices and isinstance(choices[0], str):
                return choices[0]
    return None


def labelstudio_task_to_row(number: int, task: dict, labels: list[str]) -> tuple[dict, str | None]:
    """One task -> (an item row for items_import, its label or None). Raises RowError
    naming the task (1-based) and the field."""
    unknown = [key for key in task if key not in TASK_FIELDS]
    if unknown:
        raise RowError(number, unknown[0], "unknown Label Studio task field")
    data = task["data"]
    unknown = [key for key in data if key not in DATA_FIELDS]
    if unknown:
        raise RowError(
            number, f"data.{unknown[0]}", f"unknown data field; allowed: {', '.join(DATA_FIELDS)}"
        )
    row = {key: data[key] for key in CONTENT_FIELDS if key in data}
    external_id = data.get("external_id", task.get("id"))
    if external_id is None:
        raise RowError(number, "id", "a task needs an 'id' or a 'data.external_id'")
    row["external_id"] = external_id
    if "meta" in task:
        row["meta"] = task["meta"]
    label = None
    annotations = task.get("annotations") or []
    if not isinstance(annotations, list):
        raise RowError(number, "annotations", "must be a list")
    for annotation in annotations:
        if not isinstance(annotation, dict):
            raise RowError(number, "annotations", "must hold objects")
        if annotation.get("was_cancelled"):
            continue
        choice = _choice(number, annotation.get("result", []), "annotations")
        if choice is not None:
            label = choice  # the latest annotation wins
    if label is not None and label not in labels:
        raise RowError(number, "annotations", f"label {label!r} is not one of {labels}")
    predictions = task.get("predictions") or []
    if not isinstance(predictions, list) or not all(isinstance(p, dict) for p in predictions):
        raise RowError(number, "predictions", "must be a list of objects")
    row["_predictions"] = predictions
    return row, label


def _prediction(number: int, predictions: list[dict]) -> dict | None:
    if not predictions:
        return None
    latest = predictions[-1]
    choice = _choice(number, latest.get("result", []), "predictions")
    score = latest.get("score")
    probability = float(score) if isinstance(score, (int, float)) else 1.0
    return {
        "labels": [[choice, probability]] if choice is not None else [],
        "labelstudio": predictions,
    }


def labelstudio_import(*, project: Project, tasks: list, user) -> int:
    """Import Label Studio tasks as items, with their labels and predictions, all or none.

    Runs items_import (which validates the item fields) and then stores the labels and
    predictions in the same transaction; a bad task imports nothing."""
    if not is_labelstudio(tasks):
        raise ValidationFailed("Label Studio tasks need a 'data' object each.", field="file")
    rows, labels, predictions = [], {}, {}
    for number, task in enumerate(tasks, start=1):
        row, label = labelstudio_task_to_row(number, task, list(project.labels))
        prediction = _prediction(number, row.pop("_predictions"))
        key = str(row["external_id"])
        if label is not None:
            labels[key] = label
        if prediction is not None:
            predictions[key] = prediction
        rows.append(row)
    with transaction.atomic():
        created = items_import(project=project, rows=rows)
        if labels or predictions:
            _store_history(project, labels, predictions, user)
    return created


def _store_history(project: Project, labels: dict, predictions: dict, user) -> None:
    keys = list({*labels, *predictions})
    items = Item.objects.filter(project=project, external_id__in=keys).only("id", "external_id")
    now = timezone.now()
    annotations, labeled, predicted = [], [], []
    for item in items:
        if item.external_id in predictions:
            item.prediction = predictions[item.external_id]
            predicted.append(item)
        if item.external_id in labels:
            annotations.append(
                Annotation(
                    item=item,
                    annotator=user,
                    label=labels[item.external_id],
                    cost=Decimal(0),
                    created_at=now,
                    updated_at=now,
                )
            )
            labeled.append(item.id)
    Item.objects.bulk_update(predicted, ["prediction"], batch_size=1000)
    Annotation.objects.bulk_create(annotations, batch_size=1000)
    Item.objects.filter(Q(id__in=labeled)).update(status=Item.Status.LABELED)


def labelstudio_task(record: dict, *, content: str, prediction: dict | None = None) -> dict:
    """An export record (annotation.selectors.items.labeled_records) as a Label Studio
    task: `data` holds the content and the external id, the label is its one annotation
    (a `choices` result from `label` to `content`)."""
    data = {content: record[content]}
    if record.get("external_id") is not None:
        data["external_id"] = record["external_id"]

    def result(name: str) -> list[dict]:
        return [
            {
                "from_name": "label",
                "to_name": content,
                "type": "choices",
                "value": {"choices": [name]},
            }
        ]

    task = {
        "id": record["id"],
        "data": data,
        "meta": record.get("meta") or {},
        "annotations": [
            {
                "result": result(record["label"]),
                "completed_by": record.get("annotator"),
                "created_at": record.get("labeled_at"),
                "was_cancelled": False,
            }
        ],
        "predictions": [],
    }
    if prediction:
        if prediction.get("labelstudio"):
            task["predictions"] = prediction["labelstudio"]
        elif prediction.get("labels"):
            name, probability = prediction["labels"][0]
            task["predictions"] = [{"result": result(name), "score": probability}]
    return task


def labelstudio_tasks(records: Iterable[dict], *, content: str) -> Iterator[dict]:
    """Label Studio tasks for export records that carry their item's `prediction`."""
    for record in records:
        yield labelstudio_task(record, content=content, prediction=record.get("prediction"))
