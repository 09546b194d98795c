"""Items: import (atomic, validated row by row), featurization, hand-out (`next`) and skip."""

import csv
import io
import json
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation

import numpy as np
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Min, Q
from django.utils import timezone

from annotation.errors import Conflict, NotFound, ValidationFailed
from annotation.models import Assignment, BudgetGroup, CostRule, Item, Membership, Project
from annotation.services.budgets import budget_release
from annotation.services.sql import one_statement_sql

ITEM_FIELDS = ("text", "image", "features", "external_id", "cost", "group", "meta")
CONTENT_FIELDS = ("text", "image", "features")
MAX_TEXT_CHARS = 100_000
MAX_IMAGE_CHARS = 10 * 1024 * 1024
MAX_FEATURES = 4096
MAX_COST = Decimal("1000000")
BULK_BATCH = 1000


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
    return len(items)


def _enqueue_featurize(project_id: int) -> None:
    # If the broker is down the items stay unfeaturized; round_maybe_start sends the task
    # again once the heartbeat set here is stale (items_featurize_resend_if_stale).
    from annotation.services.rounds import _enqueue

    Project.objects.filter(pk=project_id).update(featurize_heartbeat_at=timezone.now())
    _enqueue("items_featurize_task", project_id)


def items_featurize_resend_if_stale(*, project_id: int) -> bool:
    """Send the featurize task again if items have no vector and no featurize task has
    been sent or made progress for ANNOTATION_FEATURIZE_STALE_SECONDS (its message was lost,
    or the broker was down at import). A conditional UPDATE claims the resend, so
    concurrent callers send it once. Returns whether it was sent."""
    from annotation.services.rounds import _enqueue

    if not Item.objects.filter(project_id=project_id, vector__isnull=True).exists():
        return False
    stale = timezone.now() - timedelta(seconds=settings.ANNOTATION_FEATURIZE_STALE_SECONDS)
    claimed = (
        Project.objects.filter(pk=project_id)
        .filter(Q(featurize_heartbeat_at__isnull=True) | Q(featurize_heartbeat_at__lt=stale))
        .update(featurize_heartbeat_at=timezone.now())
    )
    return bool(claimed) and _enqueue("items_featurize_task", project_id)


def items_featurize(
    *, project_id: int, batch_size: int | None = None, seconds: float | None = None
) -> tuple[int, bool]:
    """Compute the feature vector of every item that has none, in batches, for at most
    `seconds` (ANNOTATION_FEATURIZE_SECONDS) of featurizing.

    Each batch is its own transaction, so a killed worker loses at most one batch and a
    rerun continues where it stopped (idempotent). Texts go through the project's
    `text_featurizer`. Returns (rows featurized, whether rows are left: the caller sends
    the task again, so one task never runs into the worker's time limit).
    """
    from sampler.features import FEATURIZERS, TEXT_FEATURIZERS

    batch_size = batch_size or settings.ANNOTATION_FEATURIZE_BATCH
    seconds = settings.ANNOTATION_FEATURIZE_SECONDS if seconds is None else seconds
    deadline = time.monotonic() + seconds
    project = Project.objects.get(pk=project_id)
    if project.kind == Project.Kind.TEXT:
        featurize = TEXT_FEATURIZERS[project.text_featurizer]
    else:
        featurize = FEATURIZERS[project.kind] if project.kind else None
    done = 0
    last_id = 0
    while featurize is not None:
        if done and time.monotonic() > deadline:
            return done, True
        batch = list(
            Item.objects.filter(project_id=project_id, vector__isnull=True, id__gt=last_id)
            .order_by("id")
            .values_list("id", project.kind)[:batch_size]
        )
        if not batch:
            break
        ids = [row[0] for row in batch]
        matrix = np.ascontiguousarray(featurize([row[1] for row in batch]), dtype=np.float32)
        with transaction.atomic():
            for item_id, vector in zip(ids, matrix, strict=True):
                Item.objects.filter(pk=item_id, vector__isnull=True).update(vector=vector.tobytes())
            Project.objects.filter(pk=project_id).update(featurize_heartbeat_at=timezone.now())
        done += len(ids)
        last_id = ids[-1]
    return done, False


# --- hand-out -----------------------------------------------------------------------------


class NextState:
    OK = "ok"
    WAITING = "waiting"
    BUDGET_EXHAUSTED = "budget_exhausted"
    POOL_EXHAUSTED = "pool_exhausted"
    QUOTA_REACHED = "quota_reached"


def annotator_quota_reached(*, project: Project, user) -> bool:
    """Whether the user has given all the labels their membership quota allows."""
    from annotation.models import Annotation

    quota = (
        Membership.objects.filter(project=project, user=user)
        .values("quota_total", "quota_daily")
        .first()
    )
    if not quota or (quota["quota_total"] is None and quota["quota_daily"] is None):
        return False
    mine = Annotation.objects.filter(item__project=project, annotator=user)
    if quota["quota_total"] is not None and mine.count() >= quota["quota_total"]:
        return True
    if quota["quota_daily"] is not None:
        today = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
        if mine.filter(created_at__gte=today).count() >= quota["quota_daily"]:
            return True
    return False


def item_next_for(*, project: Project, user) -> tuple[Item | None, str]:
    """Lease the best free queued item to `user`.

    An item the user already holds (a reload, a retry) is handed back first. Otherwise the
    first free queued item is taken with SELECT ... FOR UPDATE SKIP LOCKED, so concurrent
    callers never wait on each other and never get the same item; the Assignment
    constraint backs this up in the database. On PostgreSQL all of it (held item, pick,
    lease, assignment, free-queue size, oldest lease) is one statement.

    Expired leases found on the way are released (`item_leases_expire`), and a round is
    started when the free queue falls under the low-water mark.
    """
    if _has_quota(project, user) and annotator_quota_reached(project=project, user=user):
        held = _held_item(project, user)
        return (held, NextState.OK) if held is not None else (None, NextState.QUOTA_REACHED)
    now = timezone.now()
    expires = now + timedelta(seconds=project.lease_seconds)
    lease = _lease_sql if one_statement_sql() else _lease_orm
    item, free, oldest_lease = lease(project, user, now, expires)
    if oldest_lease is not None and oldest_lease <= now:
        item_leases_expire(project_id=project.pk)
    if item is None:
        return None, _empty_state(project)
    if free < project.low_water:
        from annotation.services.rounds import round_maybe_start

        round_maybe_start(project_id=project.pk)
    return item, NextState.OK


def _has_quota(project: Project, user) -> bool:
    """Whether the user's membership sets a quota. `project_for_member` has read the
    membership already; otherwise one query."""
    if hasattr(project, "member_quota_total"):
        return project.member_quota_total is not None or project.member_quota_daily is not None
    return (
        Membership.objects.filter(project=project, user=user)
        .filter(Q(quota_total__isnull=False) | Q(quota_daily__isnull=False))
        .exists()
    )


def _held_item(project: Project, user) -> Item | None:
    return (
        Item.objects.defer("vector")
        .filter(
            project=project,
            status=Item.Status.QUEUED,
            leased_to=user,
            lease_expires_at__gt=timezone.now(),
        )
        .order_by("queued_round", "queue_rank", "id")
        .first()
    )


# The item fields an annotator is shown (see item_public), read by the one-statement lease.
_LEASE_COLUMNS = ("id", "external_id", "text", "image", "features", "meta", "cost", "group")

_LEASE_SQL = """
WITH held AS (
    SELECT id, lease_expires_at FROM annotation_item
    WHERE project_id = %(project)s AND status = 'queued' AND leased_to_id = %(user)s
      AND lease_expires_at > %(now)s
    ORDER BY queued_round, queue_rank, id
    LIMIT 1
), pick AS (
    SELECT id FROM annotation_item
    WHERE project_id = %(project)s AND status = 'queued' AND leased_to_id IS NULL
      AND NOT EXISTS (SELECT 1 FROM held)
    ORDER BY queued_round, queue_rank, id
    LIMIT 1
    FOR UPDATE SKIP LOCKED
), leased AS (
    UPDATE annotation_item AS item SET leased_to_id = %(user)s, lease_expires_at = %(expires)s
    FROM pick WHERE item.id = pick.id
    RETURNING item.id
), assigned AS (
    INSERT INTO annotation_assignment (item_id, user_id, status, created_at, expires_at)
    SELECT id, %(user)s, 'active', %(now)s, %(expires)s FROM leased
), chosen AS (
    SELECT id, lease_expires_at, 0 AS new FROM held
    UNION ALL
    SELECT id, %(expires)s, 1 FROM leased
)
SELECT {columns}, chosen.lease_expires_at,
    (SELECT count(*) FROM (
        SELECT 1 FROM annotation_item
        WHERE project_id = %(project)s AND status = 'queued' AND leased_to_id IS NULL
        LIMIT %(low_water)s + 1
    ) AS free_rows) - coalesce(chosen.new, 0) AS free,
    (SELECT min(lease_expires_at) FROM annotation_item
     WHERE project_id = %(project)s AND status = 'queued' AND leased_to_id IS NOT NULL
    ) AS oldest_lease
FROM (SELECT 1) AS one
LEFT JOIN chosen ON TRUE
LEFT JOIN annotation_item AS item ON item.id = chosen.id
""".format(columns=", ".join(f'item."{c}"' for c in _LEASE_COLUMNS))


def _lease_sql(project: Project, user, now, expires) -> tuple[Item | None, int, object]:
    """PostgreSQL: held item or new lease, free-queue size and oldest lease, one statement.

    Returns (item or None, free queued items after this lease (counted up to the low-water
    mark), the earliest lease expiry in the project or None)."""
    params = {
        "project": project.pk,
        "user": user.pk,
        "now": now,
        "expires": expires,
        "low_water": project.low_water,
    }

    def run():
        with connection.cursor() as cursor:
            cursor.execute(_LEASE_SQL, params)
            return cursor.fetchone()

    try:
        if connection.in_atomic_block:
            with transaction.atomic():  # a savepoint, so a failure leaves the caller's intact
                row = run()
        else:
            row = run()  # autocommit: the statement is its own transaction, one round trip
    except IntegrityError:
        # An active assignment outlived its lease (written before expiry closed them):
        # close it and lease again.
        _expire_stale_assignments(project)
        row = run()
    *values, lease_expires_at, free, oldest_lease = row
    if values[0] is None:
        return None, free, oldest_lease
    fields = dict(zip(_LEASE_COLUMNS, values, strict=True))
    for key in ("features", "meta"):  # Django loads jsonb as text and decodes in the field
        if isinstance(fields[key], str):
            fields[key] = json.loads(fields[key])
    item = Item(project=project, status=Item.Status.QUEUED, **fields)
    item.leased_to_id, item.lease_expires_at = user.pk, lease_expires_at
    item._state.adding, item._state.db = False, "default"
    return item, free, oldest_lease


def _lease_orm(project: Project, user, now, expires) -> tuple[Item | None, int, object]:
    """The same as _lease_sql with the ORM, for databases without SKIP LOCKED (SQLite
    serializes writers, so the plain SELECT then UPDATE is safe there)."""
    item = _held_item(project, user)
    if item is None:
        with transaction.atomic():
            item = (
                Item.objects.select_for_update(skip_locked=True)
                .defer("vector")
                .filter(project=project, status=Item.Status.QUEUED, leased_to__isnull=True)
                .order_by("queued_round", "queue_rank", "id")
                .first()
            )
            if item is not None:
                Assignment.objects.create(item=item, user=user, expires_at=expires)
                Item.objects.filter(pk=item.pk).update(leased_to=user, lease_expires_at=expires)
                item.leased_to, item.lease_expires_at = user, expires
    queued = Item.objects.filter(project=project, status=Item.Status.QUEUED)
    free = queued.filter(leased_to__isnull=True).values("id")[: project.low_water].count()
    oldest = queued.filter(leased_to__isnull=False).aggregate(m=Min("lease_expires_at"))["m"]
    return item, free, oldest


def _expire_stale_assignments(project: Project) -> None:
    Assignment.objects.filter(
        item__project=project, status=Assignment.Status.ACTIVE, item__leased_to__isnull=True
    ).update(status=Assignment.Status.EXPIRED)


def item_leases_expire(*, project_id: int) -> int:
    """Release every expired lease of the project: the item goes back to the pool and its
    reserved cost is released (a round may queue it again); its assignment is closed as
    expired. Returns how many were released. Items being labeled right now (row locked)
    are skipped: the label decides them."""
    from annotation.services.budgets import item_unqueue

    released = 0
    with transaction.atomic():
        expired = (
            Item.objects.select_for_update(skip_locked=True)
            .only("id", "project_id", "cost", "group", "status")
            .filter(
                project_id=project_id,
                status=Item.Status.QUEUED,
                leased_to__isnull=False,
                lease_expires_at__lte=timezone.now(),
            )
        )
        for item in expired:
            item_unqueue(item=item)
            released += 1
    return released


def _empty_state(project: Project) -> str:
    """Why there is no item for the caller, and start a round if that is what is missing."""
    from annotation.services.rounds import round_maybe_start

    project.refresh_from_db()
    if Item.objects.filter(project=project, status=Item.Status.QUEUED).exists():
        return NextState.WAITING  # held by others: they come back if skipped or expired
    if project.spent >= project.budget:
        return NextState.BUDGET_EXHAUSTED
    unlabeled = Item.objects.filter(project=project, status=Item.Status.UNLABELED)
    if not unlabeled.exists():
        return NextState.POOL_EXHAUSTED
    if not item_affordable_exists(project=project, items=unlabeled):
        return NextState.BUDGET_EXHAUSTED
    round_maybe_start(project_id=project.pk)
    return NextState.WAITING


def item_affordable_exists(*, project: Project, items) -> bool:
    """Whether some item of `items` fits the remaining project (and group) budget."""
    remaining = project.remaining
    groups = {g.name: g.remaining for g in BudgetGroup.objects.filter(project=project)}
    for row in items.values("group").annotate(cheapest=Min("cost")):
        limit = min(remaining, groups.get(row["group"], remaining))
        if row["cheapest"] <= limit:
            return True
    return False


def item_get_for_update(*, project: Project, item_id: int) -> Item:
    """The item, row locked, with the fields a label or a skip decides on; else 404."""
    try:
        return (
            Item.objects.select_for_update()
            .only("id", "project_id", "status", "leased_to_id", "cost", "group")
            .get(project=project, pk=item_id)
        )
    except Item.DoesNotExist as exc:
        raise NotFound(f"Item {item_id} is not in this project.", field="item") from exc


def item_skip(*, project: Project, user, item_id: int) -> Item:
    """Give back a leased item: it leaves the queue and its reserved cost is released."""
    with transaction.atomic():
        item = item_get_for_update(project=project, item_id=item_id)
        if item.status != Item.Status.QUEUED or item.leased_to_id != user.pk:
            raise Conflict("This item is not assigned to you.", field="item")
        Item.objects.filter(pk=item.pk).update(
            status=Item.Status.SKIPPED, leased_to=None, lease_expires_at=None
        )
        Assignment.objects.filter(item=item, status=Assignment.Status.ACTIVE).update(
            status=Assignment.Status.SKIPPED
        )
        budget_release(project_id=project.pk, cost=item.cost, group=item.group)
    from annotation.services.rounds import round_maybe_start

    round_maybe_start(project_id=project.pk)
    item.refresh_from_db()
    return item
