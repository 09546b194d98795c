"""Reads of items: listing and the export stream."""

from collections.abc import Iterator
from datetime import datetime

from django.db.models import F, Q, QuerySet

from annotation.models import Item, Project

EXPORT_CHUNK = 2000


def item_list(*, project: Project, status: str | None = None) -> QuerySet[Item]:
    items = Item.objects.filter(project=project).defer("vector").order_by("id")
    if status:
        items = items.filter(status=status)
    return items


def labeled_records(
    *,
    project: Project,
    since: datetime | None = None,
    until: datetime | None = None,
    with_prediction: bool = False,
) -> Iterator[dict]:
    """One dict per labeled item, in id order, read from the database in chunks.

    `since` / `until`: only labels given or changed after `since` and at or before `until`
    (incremental exports). `with_prediction`: add the item's `prediction`."""
    content = project.kind or "text"
    extra = ("prediction",) if with_prediction else ()
    window = Q()
    if since is not None:
        window &= Q(annotation__updated_at__gt=since)
    if until is not None:
        window &= Q(annotation__updated_at__lte=until)
    rows = (
        Item.objects.filter(window, project=project, status=Item.Status.LABELED)
        .order_by("id")
        .values(
            *extra,
            "id",
            "external_id",
            content,
            "meta",
            "cost",
            "group",
            "queued_round",
            "acquisition",
            "score",
            label=F("annotation__label"),
            annotator=F("annotation__annotator__username"),
            labeled_at=F("annotation__created_at"),
        )
    )
    for row in rows.iterator(chunk_size=EXPORT_CHUNK):
        record = {
            "id": row["id"],
            "external_id": row["external_id"],
            content: row[content],
            "meta": row["meta"],
            "label": row["label"],
            "out_of_scope": bool(project.out_of_scope_label)
            and row["label"] == project.out_of_scope_label,
            "annotator": row["annotator"],
            "labeled_at": row["labeled_at"].isoformat() if row["labeled_at"] else None,
            "round": row["queued_round"],
            "acquisition": row["acquisition"],
            "score": row["score"],
            "cost": float(row["cost"]),
            "group": row["group"],
        }
        if with_prediction:
            record["prediction"] = row["prediction"]
        yield record


def item_predictions(*, project: Project, everything: bool = False) -> Iterator[dict]:
    """The latest prediction of each unlabeled item (`everything`: of every item), in id
    order, read in chunks: `{"id", "external_id", "status", "label", "probabilities"}`
    with `label` the model's top label and `probabilities` `{name: p}` (best first; the
    labels the round stored), both null for an item no round has scored."""
    items = Item.objects.filter(project=project).order_by("id")
    if not everything:
        items = items.exclude(status=Item.Status.LABELED)
    rows = items.values_list("id", "external_id", "status", "prediction")
    for item_id, external_id, status, prediction in rows.iterator(chunk_size=EXPORT_CHUNK):
        labels = [pair for pair in (prediction or {}).get("labels") or [] if pair[0]]
        yield {
            "id": item_id,
            "external_id": external_id,
            "status": status,
            "label": labels[0][0] if labels else None,
            "probabilities": {name: p for name, p in labels} if labels else None,
        }
