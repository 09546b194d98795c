"""Import: parse an upload as a stream, validate it row by row, store it all or nothing.

Every bad value is a RowError naming the row and the field (a 400), never a 500: JSON
nested too deep, integers too long for Python's int parser, numbers outside float32 (the
featurizer's type), costs outside the ledger's columns.

**Locks**: an import holds a transaction-scoped advisory lock for its project (imports
of one project run one at a time) and never locks the project row: labels, hand-outs and
rounds go on while a large file is stored. (Django's foreign keys are DEFERRABLE
INITIALLY DEFERRED, so their checks lock the project row FOR KEY SHARE only at commit.)
The project's `kind` is set by one UPDATE at the very end.

**Speed**: a row is validated into a plain ValidRow (no model instance) and written at
once to a PostgreSQL COPY (one per BULK_BATCH rows, under a savepoint, inside the same
transaction): the database stores rows while the next ones are read and checked, and no
batch of rows is held in memory.
"""

import codecs
import csv
import io
import json
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from itertools import islice
from typing import BinaryIO

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from psycopg.errors import UniqueViolation

from annotation.errors import ValidationFailed
from annotation.models import CostRule, Item, Project
from annotation.services import webhooks
from annotation.services.items import items_featurize_enqueue

ITEM_FIELDS = ("text", "image", "features", "external_id", "cost", "group", "meta")
CONTENT_FIELDS = ("text", "image", "features")
MAX_TEXT_CHARS = 100_000
MAX_IMAGE_CHARS = 10 * 1024 * 1024
MAX_FEATURES = 4096
MAX_META_DEPTH = 32
MAX_COST = Decimal("1000000")
FLOAT32_MAX = float(np.finfo(np.float32).max)
BULK_BATCH = 5000
# A CSV cell holds at most an image data URI (the csv module's default limit, 128 KiB,
# refused every image over ~100 KB).
CSV_FIELD_LIMIT = MAX_IMAGE_CHARS + 1024
_IMPORT_LOCK = 0x1A7E  # advisory lock namespace: (this, project id)


class RowError(ValidationFailed):
    """A bad import row: the message names the row (1-based) and the field."""

    def __init__(self, row: int, field: str | None, message: str):
        where = f"row {row}" + (f", field '{field}'" if field else "")
        super().__init__(f"{where}: {message}", field=field)
        self.row = row

    def as_dict(self) -> dict:
        return {**super().as_dict(), "row": self.row}


MAX_JSON_DEPTH = 256  # far below the interpreter's stack: json never recurses that deep
_JSON_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')
_JSON_TOKENS_BYTES = re.compile(_JSON_TOKENS.pattern.encode())


def json_too_deep(text: str | bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether lists and objects in the JSON `text` nest deeper than `limit`, found without
    parsing (so no RecursionError, which also leaves CPython's parser in a bad state). Text
    with at most `limit` brackets is answered by counting alone."""
    opening = ("[", "{") if isinstance(text, str) else (b"[", b"{")
    if text.count(opening[0]) + text.count(opening[1]) <= limit:
        return False
    tokens = _JSON_TOKENS if isinstance(text, str) else _JSON_TOKENS_BYTES
    depth = 0
    for match in tokens.finditer(text):
        token = match.group()
        if token in ("[", "{", b"[", b"{"):
            depth += 1
            if depth > limit:
                return True
        elif len(token) == 1:  # a closing bracket (strings are at least two characters)
            depth -= 1
    return False


def json_loads(text: str | bytes):
    """json.loads whose every failure is a ValueError: bad syntax, integers of more
    digits than Python parses (4,300), nesting deeper than MAX_JSON_DEPTH."""
    if json_too_deep(text):
        raise ValueError("it is nested too deeply")
    return json.loads(text)


# --- parsing uploads ---------------------------------------------------------------------


def parse_upload(
    *, name: str, content_type: str, file: BinaryIO | None = None, data: bytes | None = None
) -> Iterator:
    """Rows of an uploaded JSONL, JSON or CSV file (the format from the name), read as a
    stream from `file` (or from `data`). Rows are yielded as they are read: a bad row
    raises when the consumer reaches it."""
    if file is None:
        file = io.BytesIO(data or b"")
    lowered = (name or "").lower()
    if lowered.endswith(".csv") or "csv" in (content_type or ""):
        return _parse_csv(_text(file))
    if lowered.endswith(".json"):
        return iter(_parse_json(file))
    if lowered.endswith((".jsonl", ".ndjson")) or not lowered:
        return _parse_jsonl(_text(file))
    raise ValidationFailed(
        "Unknown file type: name the file *.jsonl, *.json or *.csv.", field="file"
    )


def _text(file: BinaryIO) -> Iterator[str]:
    """The file's lines, decoded as UTF-8 (a BOM dropped) as they are read."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    pending = ""
    try:
        while chunk := file.read(64 * 1024):
            pending += decoder.decode(chunk)
            lines = pending.splitlines(keepends=True)
            pending = lines.pop() if lines and not lines[-1].endswith(("\n", "\r")) else ""
            yield from lines
        pending += decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raise ValidationFailed(f"The file is not UTF-8 text ({exc.reason}).", field="file") from exc
    if pending:
        yield pending


def _parse_json(file: BinaryIO) -> list:
    try:
        rows = json_loads(file.read().decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise ValidationFailed(f"The file is not UTF-8 text ({exc.reason}).", field="file") from exc
    except ValueError as exc:
        raise ValidationFailed(f"The file is not valid JSON: {exc}", field="file") from exc
    if not isinstance(rows, list):
        raise ValidationFailed("A JSON file must hold a list of items.", field="file")
    return rows


def _parse_jsonl(lines: Iterable[str]) -> Iterator:
    row = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        row += 1
        try:
            yield json_loads(line)
        except ValueError as exc:
            raise RowError(row, None, f"line {number} is not valid JSON: {exc}") from exc


def _parse_csv(lines: Iterable[str]) -> Iterator[dict]:
    if csv.field_size_limit() < CSV_FIELD_LIMIT:
        csv.field_size_limit(CSV_FIELD_LIMIT)
    reader = csv.DictReader(lines)
    try:
        fieldnames = reader.fieldnames
    except csv.Error as exc:
        raise ValidationFailed(f"The CSV header cannot be read: {exc}", field="file") from exc
    if not fieldnames:
        raise ValidationFailed("The CSV file has no header row.", field="file")
    unknown = [f for f in fieldnames if f not in ITEM_FIELDS]
    if unknown:
        raise ValidationFailed(
            f"Unknown CSV column {unknown[0]!r}; allowed: {', '.join(ITEM_FIELDS)}.", field="file"
        )
    number = 0
    while True:
        try:
            raw = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise RowError(number + 1, None, f"cannot be read as CSV: {exc}") from exc
        number += 1
        if None in raw:
            raise RowError(number, None, "has more cells than the header has columns")
        row: dict = {}
        for key, value in raw.items():
            if value is None or value == "":
                continue
            if key in ("features", "meta"):
                try:
                    value = json_loads(value)
                except ValueError as exc:
                    raise RowError(number, key, f"is not valid JSON: {exc}") from exc
            row[key] = value
        yield row


# --- validation --------------------------------------------------------------------------


def _row_cost(number: int, value) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise RowError(number, "cost", "must be a positive number")
    if isinstance(value, str) and len(value) > 40:
        raise RowError(number, "cost", f"must be at most {MAX_COST}")
    try:
        cost = Decimal(value) if isinstance(value, int) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError) as exc:
        raise RowError(number, "cost", "must be a positive number") from exc
    if not cost.is_finite() or cost <= 0:
        raise RowError(number, "cost", "must be a positive number")
    if cost > MAX_COST:
        raise RowError(number, "cost", f"must be at most {MAX_COST}")
    cost = cost.quantize(Decimal("0.01"))
    if cost <= 0:
        raise RowError(number, "cost", "must be at least 0.01")
    return cost


def _depth(value) -> int:
    """How deeply lists and objects nest in `value` (iteratively: no recursion limit)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            node = node.values()
        elif not isinstance(node, list):
            continue
        deepest = max(deepest, depth)
        if depth > MAX_META_DEPTH:
            break
        stack.extend((child, depth + 1) for child in node)
    return deepest


def _features(number: int, value) -> list[float]:
    if not isinstance(value, list) or not value:
        raise RowError(number, "features", "must be a non-empty list of numbers")
    if len(value) > MAX_FEATURES:
        raise RowError(number, "features", f"has more than {MAX_FEATURES} numbers")
    numbers = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise RowError(number, "features", "must hold numbers only")
        try:
            v = float(v)
        except OverflowError:  # an integer of hundreds of digits
            v = math.inf
        if not math.isfinite(v) or abs(v) > FLOAT32_MAX:
            raise RowError(
                number, "features", f"must hold finite numbers within float32 (±{FLOAT32_MAX:.4g})"
            )
        numbers.append(v)
    return numbers


@dataclass(slots=True)
class ValidRow:
    """A validated row: the columns it sets, and what the import needs to know of it."""

    kind: str
    dim: int | None
    text: str = ""
    image: str = ""
    features: list[float] | None = None
    external_id: str | None = None
    cost: Decimal | None = None  # None: not given, the project's cost rule decides
    group: str = ""
    meta: str = "{}"  # as JSON text
    pixels: int = 0


# A NUL as json.dumps writes it (an escaped backslash before "u0000" is not one).
_JSON_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


def _no_nul(number: int, field: str, value: str) -> str:
    """PostgreSQL text cannot hold NUL (U+0000)."""
    if "\x00" in value:
        raise RowError(number, field, "must not contain the NUL character (U+0000)")
    return value


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
    valid = ValidRow(kind=row_kind, dim=dim)
    value = row[row_kind]
    if row_kind == "text":
        if not isinstance(value, str):
            raise RowError(number, "text", "must be a string")
        if len(value) > MAX_TEXT_CHARS:
            raise RowError(number, "text", f"is longer than {MAX_TEXT_CHARS} characters")
        valid.text = _no_nul(number, "text", value)
    elif row_kind == "image":
        from sampler.features import decode_image

        if not isinstance(value, str) or len(value) > MAX_IMAGE_CHARS:
            raise RowError(number, "image", "must be a data URI of at most 10 MB")
        try:
            image = decode_image(value)
        except ValueError as exc:
            raise RowError(number, "image", f"is not a usable image: {exc}") from exc
        valid.image = _no_nul(number, "image", value)
        valid.pixels = image.width * image.height
    else:
        features = _features(number, value)
        if dim is not None and len(features) != dim:
            raise RowError(
                number, "features", f"has {len(features)} numbers; the project uses {dim}"
            )
        valid.dim = len(features)
        valid.features = features
    external_id = row.get("external_id")
    if external_id is not None:
        if isinstance(external_id, bool) or not isinstance(external_id, (str, int)):
            raise RowError(number, "external_id", "must be a string or an integer")
        if isinstance(external_id, int) and not -(10**255) < external_id < 10**255:
            raise RowError(number, "external_id", "must be 1 to 255 characters")
        external_id = str(external_id)
        if not external_id or len(external_id) > 255:
            raise RowError(number, "external_id", "must be 1 to 255 characters")
        valid.external_id = _no_nul(number, "external_id", external_id)
    if "cost" in row:
        valid.cost = _row_cost(number, row["cost"])
    group = row.get("group", "")
    if not isinstance(group, str) or len(group) > 100:
        raise RowError(number, "group", "must be a string of at most 100 characters")
    valid.group = _no_nul(number, "group", group)
    if "meta" in row:
        meta = row["meta"]
        if not isinstance(meta, dict):
            raise RowError(number, "meta", "must be an object")
        if _depth(meta) > MAX_META_DEPTH:
            raise RowError(number, "meta", f"nests deeper than {MAX_META_DEPTH} levels")
        valid.meta = json.dumps(meta)
        if "\\u0000" in valid.meta and _JSON_NUL.search(valid.meta):  # jsonb refuses it
            raise RowError(number, "meta", "must not contain the NUL character (U+0000)")
    return valid


def item_cost_by_rule(
    *, project: Project, text: str = "", image: str = "", pixels: int = 0
) -> Decimal:
    """The cost of an item (of this `text` or `image`) that gives none, by the project's
    cost rule (may exceed MAX_COST: the caller checks)."""
    rule = project.cost_rule
    if rule == CostRule.GIVEN:
        return Decimal(1)
    if rule == CostRule.FLAT:
        return project.cost_value
    if rule == CostRule.TEXT_LENGTH and text:
        amount = project.cost_value * Decimal(len(text)) / Decimal(1000)
    elif rule == CostRule.IMAGE_SIZE and image:
        amount = project.cost_value * Decimal(pixels) / Decimal(1_000_000)
    else:
        return project.cost_value
    return max(project.cost_floor, amount.quantize(Decimal("0.01")))


def _project_dim(project: Project) -> int | None:
    if project.kind != Project.Kind.FEATURES:
        return None
    first = project.items.exclude(features=None).values_list("features", flat=True).first()
    return len(first) if first else None


# --- import ------------------------------------------------------------------------------


def items_import(*, project: Project, rows: Iterable) -> int:
    """Validate and store `rows` (any iterable: a parsed upload is consumed as a stream),
    in batches of BULK_BATCH inside one transaction: all of them, or none.

    Raises RowError naming the first bad row and field. Holds the project's import
    advisory lock, never its row lock (see the module docstring). Featurization is
    enqueued after the commit.
    """
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_IMPORT_LOCK, project.pk])
        current = Project.objects.only("kind").get(pk=project.pk)
        checker = _RowChecker(project, kind=current.kind or None, dim=_project_dim(current))
        numbered = enumerate(rows, start=1)
        count = 0
        while stored := _store(project.pk, checker, islice(numbered, BULK_BATCH)):
            count += stored
        if not count:
            raise ValidationFailed("No items to import.", field="items")
        if not current.kind:
            Project.objects.filter(pk=project.pk, kind="").update(kind=checker.kind)
            project.kind = checker.kind
        transaction.on_commit(lambda: items_featurize_enqueue(project.pk))
        webhooks.event_emit(
            project_id=project.pk, event=webhooks.IMPORT_FINISHED, payload={"created": count}
        )
    return count


class _RowChecker:
    """The checks of one import: each row on its own (_validate_row), external ids
    repeated within the import, the row limit, the cost rule. Follows the import's kind
    and feature dimension (set by its first row in an empty project)."""

    def __init__(self, project: Project, *, kind: str | None, dim: int | None):
        self.project, self.kind, self.dim = project, kind, dim
        self.limit = settings.ANNOTATION_MAX_IMPORT_ROWS
        self.seen: dict[str, int] = {}  # external id -> its row

    def check(self, number: int, row) -> ValidRow:
        if number > self.limit:
            raise ValidationFailed(f"At most {self.limit} items per import.", field="items")
        valid = _validate_row(number, row, self.kind, self.dim)
        self.kind, self.dim = valid.kind, valid.dim
        external_id = valid.external_id
        if external_id is not None:
            if external_id in self.seen:
                raise RowError(
                    number, "external_id", f"{external_id!r} repeats row {self.seen[external_id]}"
                )
            self.seen[external_id] = number
        if valid.cost is None:
            valid.cost = item_cost_by_rule(
                project=self.project, text=valid.text, image=valid.image, pixels=valid.pixels
            )
            if valid.cost > MAX_COST:
                raise RowError(
                    number,
                    "cost",
                    f"the cost rule gives {valid.cost}, above the most an item may cost "
                    f"({MAX_COST}): lower the project's cost_value",
                )
        return valid


_ITEM_TABLE = Item._meta.db_table
_COPY_COLUMNS = (
    "project_id",
    "external_id",
    "text",
    "image",
    "features",
    "meta",
    "cost",
    "group",
    "status",
    "acquisition",
    "skip_count",
    "featurize_error",
    "created_at",
)
_COPY_SQL = "COPY {} ({}) FROM STDIN".format(
    _ITEM_TABLE, ", ".join(f'"{column}"' for column in _COPY_COLUMNS)
)
_CLASH_SQL = (
    f"SELECT external_id FROM {_ITEM_TABLE} WHERE project_id = %s AND external_id = ANY(%s)"
)


def _store(project_id: int, checker: _RowChecker, rows: Iterable[tuple[int, object]]) -> int:
    """Check and insert one batch of numbered rows by one COPY (under a savepoint), each
    row written as soon as it is checked: PostgreSQL stores the batch while the rest is
    read. Returns how many rows were stored (0: no rows left).

    An external id already in the project (the table's unique constraint fails the COPY)
    is reported as the earliest row of the batch that holds one. The columns Django would
    fill with a field default are given: the table has no database defaults."""
    now = timezone.now()
    unlabeled = Item.Status.UNLABELED.value
    ids: list[str] = []
    count = 0
    try:
        with (
            transaction.atomic(),
            connection.cursor() as cursor,
            cursor.copy(_COPY_SQL) as copy,
        ):
            for number, row in rows:
                valid = checker.check(number, row)
                if valid.external_id is not None:
                    ids.append(valid.external_id)
                copy.write_row(
                    (
                        project_id,
                        valid.external_id,
                        valid.text,
                        valid.image,
                        None if valid.features is None else json.dumps(valid.features),
                        valid.meta,
                        valid.cost,
                        valid.group,
                        unlabeled,
                        "",
                        0,
                        "",
                        now,
                    )
                )
                count += 1
    except UniqueViolation:
        with connection.cursor() as cursor:
            cursor.execute(_CLASH_SQL, [project_id, ids])
            clashes = [external_id for (external_id,) in cursor.fetchall()]
        if not clashes:
            raise
        clash = min(clashes, key=checker.seen.__getitem__)
        raise RowError(
            checker.seen[clash], "external_id", f"{clash!r} is already in the project"
        ) from None
    return count
