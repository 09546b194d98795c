"""Reads of items: listing and the export stream."""

from collections.abc import Iterator

from django.db.models import F, QuerySet

from annotation.models import Item, Project

EXPORT_CHUNK = 2000


def item_list(*, project: Project, status: str | None = None) -> QuerySet[Item]:
    items = Item.objects.filter(project=project).defer("vector").order_by("id")
    if status:
        items = items.filter(status=status)
    return items


def labeled_records(*, project: Project) -> Iterator[dict]:
    """One dict per labeled item, in id order, read from the database in chunks."""
    content = project.kind or "text"
    rows = (
        Item.objects.filter(project=project, status=Item.Status.LABELED)
        .order_by("id")
        .values(
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
        yield {
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
