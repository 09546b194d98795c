"""Reads of items: listing and the export stream."""

import json
from collections.abc import Iterator
from datetime import datetime

from django.db.models import F, Func, Q, QuerySet, TextField
from django.db.models.functions import Cast

from annotation.models import Item, Project

EXPORT_CHUNK = 5000


def item_list(*, project: Project, status: str | None = None) -> QuerySet[Item]:
    items = Item.objects.filter(project=project).defer("vector").order_by("id")
    if status:
        items = items.filter(status=status)
    return items


# An instant as datetime.isoformat() writes it in UTC (the connection's zone), made by
# PostgreSQL: parsing timestamps in Python and formatting them back took a third of an
# export's time. The six-digit fraction is dropped when it is zero, as isoformat does.
_ISO_UTC = "to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')"


def _iso(text: str | None) -> str | None:
    if text is None or text[-13:-6] != ".000000":
        return text
    return text[:-13] + "+00:00"


class RawJSON(str):
    """JSON text that json.dumps(json.loads(text), ensure_ascii=False) gives back
    unchanged: an export writes it as it is instead of parsing and encoding it again."""


def _meta(text: str, raw: bool):
    """An item's meta read as jsonb text: RawJSON when `raw` and the text holds no '.'.
    PostgreSQL writes jsonb as json.dumps does (", " and ": ", the same escapes, keys in
    the stored order) and numbers without exponents: only a number with a fraction may
    come out of Python otherwise (0.00001 is 1e-05 there), and every such number has a
    '.'."""
    return RawJSON(text) if raw and "." not in text else json.loads(text)


def labeled_records(
    *,
    project: Project,
    since: datetime | None = None,
    until: datetime | None = None,
    with_prediction: bool = False,
    raw_meta: bool = False,
) -> Iterator[dict]:
    """One dict per labeled item, in id order, read from the database in chunks (a
    server-side cursor, rows as tuples).

    `since` / `until`: only labels given or changed after `since` and at or before `until`
    (incremental exports). `suggestion_agreed` / `suggestion_probability`: whether the
    label was the model's top suggestion and that suggestion's probability, when one was
    shown (null otherwise). `with_prediction`: add the item's `prediction`. `raw_meta`:
    `meta` may be a RawJSON text (see _meta) rather than a dict."""
    content = project.kind or "text"
    window = Q()
    if since is not None:
        window &= Q(annotation__updated_at__gt=since)
    if until is not None:
        window &= Q(annotation__updated_at__lte=until)
    rows = (
        Item.objects.filter(window, project=project, status=Item.Status.LABELED)
        .order_by("id")
        .annotate(
            labeled_iso=Func(
                F("annotation__created_at"), template=_ISO_UTC, output_field=TextField()
            ),
            meta_text=Cast("meta", TextField()),
        )
        .values_list(
            "id",
            "external_id",
            content,
            "meta_text",
            "annotation__label",
            "annotation__annotator__username",
            "labeled_iso",
            "queued_round",
            "acquisition",
            "score",
            "cost",
            "group",
            "annotation__suggestion_agreed",
            "annotation__suggestion_probability",
            *(("prediction",) if with_prediction else ()),
        )
    )
    out_of_scope = project.out_of_scope_label or None
    for row in rows.iterator(chunk_size=EXPORT_CHUNK):
        record = {
            "id": row[0],
            "external_id": row[1],
            content: row[2],
            "meta": _meta(row[3], raw_meta),
            "label": row[4],
            "out_of_scope": out_of_scope is not None and row[4] == out_of_scope,
            "annotator": row[5],
            "labeled_at": _iso(row[6]),
            "round": row[7],
            "acquisition": row[8],
            "score": row[9],
            "cost": float(row[10]),
            "group": row[11],
            "suggestion_agreed": row[12],
            "suggestion_probability": row[13],
        }
        if with_prediction:
            record["prediction"] = row[14]
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
