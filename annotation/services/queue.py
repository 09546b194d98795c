"""The life of an item: every status change and its budget effect, and nowhere else.

    unlabeled --items_queue--> queued (cost reserved) --item_lease--> leased (queued, with
    leased_to) --annotation_submit--> labeled (reserved cost spent)

and back: item_release (leased -> queued, free; the page was closed), item_skip (leased ->
queued for the others, or skipped after ANNOTATION_SKIP_LIMIT skips: reservation
released), item_leases_expire and item_unqueue (queued -> unlabeled: reservation
released), items_skipped_return (skipped -> unlabeled), relabel (labeled -> labeled, no
cost), late labels (an expired or released lease's owner labels after all: the cost is
spent anew).

Budget ledgers: `spent + reserved <= budget` for the project and for each budget group,
held by CHECK constraints; every change here is a conditional UPDATE, so the database
refuses whatever would overspend.

**Lock order**: item rows, then budget group rows, then the project row. Every function
here takes them in that order; where it would wait for an item row while holding a group
or the project (lowering a budget unqueues items), it takes the items with SKIP LOCKED. So
no two of these transactions can wait for each other in a circle.

The hot paths, a hand-out and a label, are one SQL statement each (data-modifying CTEs):
one round trip, and the project row is locked for that statement only. Status values in
SQL come from the model enums, as parameters.
"""

import json
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Min, Q
from django.utils import timezone

from annotation.errors import Conflict, NotFound, ValidationFailed
from annotation.models import Annotation, Assignment, BudgetGroup, Item, Membership, Project
from annotation.services import webhooks

STATUS = {
    "unlabeled": Item.Status.UNLABELED.value,
    "queued": Item.Status.QUEUED.value,
    "labeled": Item.Status.LABELED.value,
    "active": Assignment.Status.ACTIVE.value,
    "submitted": Assignment.Status.SUBMITTED.value,
    "skipped": Assignment.Status.SKIPPED.value,
}


class NextState:
    OK = "ok"
    WAITING = "waiting"
    BUDGET_EXHAUSTED = "budget_exhausted"
    POOL_EXHAUSTED = "pool_exhausted"
    QUOTA_REACHED = "quota_reached"
    PAUSED = "paused"


# --- ledgers (callers hold the item rows; these take group, then project) -----------------


def _ledger_update(project_id: int, group: str, *, condition: Q, **changes) -> bool:
    """Apply `changes` (F expressions) to the item's group ledger (if it has one with its
    own allocation) and then the project ledger, each only where `condition` holds for it.
    Returns False if the condition fails for either: the caller raises, and its
    transaction rolls back whatever was changed."""
    if group:
        groups = BudgetGroup.objects.filter(project_id=project_id, name=group)
        if groups.exists() and groups.filter(condition).update(**changes) != 1:
            return False
    return Project.objects.filter(Q(pk=project_id) & condition).update(**changes) == 1


def _release(project_id: int, cost: Decimal, group: str) -> None:
    """Give back a reservation (the caller holds the item row and its queued status)."""
    if group:
        BudgetGroup.objects.filter(project_id=project_id, name=group, reserved__gte=cost).update(
            reserved=F("reserved") - cost
        )
    Project.objects.filter(pk=project_id, reserved__gte=cost).update(reserved=F("reserved") - cost)


# --- queue -------------------------------------------------------------------------------

# A round's pick: (item id, score or None, strategy, prediction or None).
Pick = tuple[int, float | None, str, dict | None]

_QUEUE_SQL = """
UPDATE annotation_item AS item
SET status = %(queued)s, queued_round = %(round)s, queue_rank = pick.rank - 1,
    score = pick.score, acquisition = pick.strategy, queued_at = %(now)s,
    prediction = CASE WHEN pick.prediction IS NULL THEN item.prediction
        ELSE coalesce(item.prediction, '{}'::jsonb) || pick.prediction::jsonb END
FROM unnest(%(ids)s::bigint[], %(scores)s::float8[], %(strategies)s::varchar[],
            %(predictions)s::text[])
    WITH ORDINALITY AS pick(id, score, strategy, prediction, rank)
WHERE item.id = pick.id
"""


def items_queue(*, project_id: int, round_number: int, picks: list[Pick]) -> tuple[int, Decimal]:
    """Queue the picked items, best first, and reserve their cost; returns (items queued,
    cost reserved). `picks`: (item id, score or None, strategy that picked it ("audit" for
    the uniform audit slice), the model's prediction {"labels": [[name, p], ...]} or None).
    A prediction replaces the item's "labels" and keeps its other keys (an imported Label
    Studio prediction); None keeps what the item has.

    Items are taken with SKIP LOCKED (one being labeled late right now is left out), then
    the group rows, then the project row: the budget check under those locks is the
    authoritative one. An item that no longer fits, or is no longer unlabeled, is left
    out; the others keep their order."""
    if not picks:
        return 0, Decimal(0)
    with transaction.atomic():
        items = (
            Item.objects.select_for_update(skip_locked=True)
            .only("id", "status", "cost", "group")
            .filter(project_id=project_id, status=Item.Status.UNLABELED)
            .in_bulk([pick[0] for pick in picks])
        )
        groups = {
            g.name: g
            for g in BudgetGroup.objects.select_for_update()
            .filter(project_id=project_id)
            .order_by("id")
        }
        project = Project.objects.select_for_update().get(pk=project_id)
        group_left = {name: g.remaining for name, g in groups.items()}
        left = project.remaining
        chosen: list[Pick] = []
        total = Decimal(0)
        group_totals: dict[str, Decimal] = {}
        for pick in picks:
            item = items.get(pick[0])
            if item is None:
                continue
            if item.cost > left or (item.group in groups and item.cost > group_left[item.group]):
                continue
            left -= item.cost
            total += item.cost
            if item.group in groups:
                group_left[item.group] -= item.cost
                group_totals[item.group] = group_totals.get(item.group, Decimal(0)) + item.cost
            chosen.append(pick)
        if not chosen:
            return 0, Decimal(0)
        with connection.cursor() as cursor:
            cursor.execute(
                _QUEUE_SQL,
                {
                    **STATUS,
                    "round": round_number,
                    "now": timezone.now(),
                    "ids": [c[0] for c in chosen],
                    "scores": [c[1] for c in chosen],
                    "strategies": [c[2] for c in chosen],
                    "predictions": [None if c[3] is None else json.dumps(c[3]) for c in chosen],
                },
            )
        for name, amount in group_totals.items():
            BudgetGroup.objects.filter(pk=groups[name].pk).update(reserved=F("reserved") + amount)
        Project.objects.filter(pk=project_id).update(reserved=F("reserved") + total)
    return len(chosen), total


def item_unqueue(*, item: Item) -> None:
    """Put a queued item (row locked by the caller) back in the pool and free its cost;
    a lease on it (expired, or the caller would not unqueue it) is closed as expired."""
    Assignment.objects.filter(item_id=item.pk, status=Assignment.Status.ACTIVE).update(
        status=Assignment.Status.EXPIRED
    )
    updated = Item.objects.filter(pk=item.pk, status=Item.Status.QUEUED).update(
        status=Item.Status.UNLABELED,
        queued_round=None,
        queue_rank=None,
        score=None,
        acquisition="",
        queued_at=None,
        leased_to=None,
        lease_expires_at=None,
    )
    if updated:
        _release(item.project_id, item.cost, item.group)


def items_unqueue_to_fit(
    *, ledger: Project | BudgetGroup, target: Decimal, group: str | None = None
) -> None:
    """Unqueue free items (of `group`, if given), last in queue order first, until the
    ledger's (a Project's or a BudgetGroup's) spent + reserved <= target.

    The caller holds the group and project rows (lowering a budget): the items are taken
    with SKIP LOCKED, as the lock order demands; one being labeled is left alone."""
    excess = ledger.spent + ledger.reserved - target
    free = Item.objects.select_for_update(skip_locked=True).filter(status=Item.Status.QUEUED)
    if group is None:
        free = free.filter(project=ledger)
    else:
        free = free.filter(project_id=ledger.project_id, group=group)
    free = free.exclude(lease_expires_at__gt=timezone.now()).order_by(
        "-queued_round", "-queue_rank"
    )
    for item in free.only("id", "project_id", "cost", "group").iterator(chunk_size=200):
        if excess <= 0:
            break
        item_unqueue(item=item)
        excess -= item.cost


# --- hand-out ----------------------------------------------------------------------------


def annotator_quota_reached(*, project: Project, user) -> bool:
    """Whether the user has given all the labels their membership quota allows."""
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


def _held_item(project: Project, user, exclude: tuple[int, ...] = ()) -> Item | None:
    return (
        Item.objects.defer("vector")
        .filter(
            project=project,
            status=Item.Status.QUEUED,
            leased_to=user,
            lease_expires_at__gt=timezone.now(),
        )
        .exclude(pk__in=exclude)
        .order_by("queued_round", "queue_rank", "id")
        .first()
    )


# The item fields an annotator is shown (see item_public), read by the one-statement lease.
_LEASE_COLUMNS = (
    "id",
    "external_id",
    "text",
    "image",
    "features",
    "meta",
    "cost",
    "group",
    "prediction",
    "queued_round",
    "acquisition",
    "score",
)

# Held item (a reload, a retry, a second tab) or the first free queued item the user has
# not skipped, taken with SKIP LOCKED; its lease and assignment; the free-queue size (up
# to the low-water mark) and the oldest lease, all in one statement.
_LEASE_SQL = """
WITH held AS (
    SELECT id, lease_expires_at FROM annotation_item
    WHERE project_id = %(project)s AND status = %(queued)s AND leased_to_id = %(user)s
      AND lease_expires_at > %(now)s AND NOT (id = ANY(%(exclude)s))
    ORDER BY queued_round, queue_rank, id
    LIMIT 1
), pick AS (
    SELECT id FROM annotation_item AS candidate
    WHERE project_id = %(project)s AND status = %(queued)s AND leased_to_id IS NULL
      AND NOT EXISTS (SELECT 1 FROM held)
      AND NOT EXISTS (
          SELECT 1 FROM annotation_assignment AS skip
          WHERE skip.item_id = candidate.id AND skip.user_id = %(user)s
            AND skip.status = %(skipped)s)
    ORDER BY queued_round, queue_rank, id
    LIMIT 1
    FOR UPDATE SKIP LOCKED
), leased AS (
    UPDATE annotation_item AS item SET leased_to_id = %(user)s, lease_expires_at = %(expires)s
    FROM pick WHERE item.id = pick.id
    RETURNING item.id
), assigned AS (
    INSERT INTO annotation_assignment (item_id, user_id, status, created_at, expires_at)
    SELECT id, %(user)s, %(active)s, %(now)s, %(expires)s FROM leased
), chosen AS (
    SELECT id, lease_expires_at, 0 AS new FROM held
    UNION ALL
    SELECT id, %(expires)s, 1 FROM leased
)
SELECT {columns}, chosen.lease_expires_at,
    (SELECT count(*) FROM (
        SELECT 1 FROM annotation_item
        WHERE project_id = %(project)s AND status = %(queued)s AND leased_to_id IS NULL
        LIMIT %(low_water)s + 1
    ) AS free_rows) - coalesce(chosen.new, 0) AS free,
    (SELECT min(lease_expires_at) FROM annotation_item
     WHERE project_id = %(project)s AND status = %(queued)s AND leased_to_id IS NOT NULL
    ) AS oldest_lease
FROM (SELECT 1) AS one
LEFT JOIN chosen ON TRUE
LEFT JOIN annotation_item AS item ON item.id = chosen.id
""".format(columns=", ".join(f'item."{c}"' for c in _LEASE_COLUMNS))


def item_lease(
    *, project: Project, user, exclude: tuple[int, ...] = ()
) -> tuple[Item | None, str, bool]:
    """Lease the best free queued item to `user`: (item or None, NextState, whether the
    free queue is under the low-water mark, so a round should start).

    An item the user already holds (a reload, a retry, a second tab) is handed back
    first. Otherwise the first free queued item the user has not skipped is taken with
    SELECT ... FOR UPDATE SKIP LOCKED, so concurrent callers never wait on each other and
    never get the same item; the Assignment constraint backs this up in the database.
    `exclude`: items the caller already holds and shows (the labeling page's current and
    prefetched items): not handed back, so the caller may hold one more.
    Expired leases found on the way are released (item_leases_expire).

    A paused project (Project.paused, set by a manager) hands out nothing, not even an
    item the caller holds: (None, PAUSED). Labels for items already on screen are still
    accepted: annotation_submit does not look at `paused`."""
    if project.paused:
        return None, NextState.PAUSED, False
    if _has_quota(project, user) and annotator_quota_reached(project=project, user=user):
        held = _held_item(project, user, exclude)
        return (held, NextState.OK, False) if held else (None, NextState.QUOTA_REACHED, False)
    now = timezone.now()
    params = {
        **STATUS,
        "project": project.pk,
        "user": user.pk,
        "now": now,
        "expires": now + timedelta(seconds=project.lease_seconds),
        "low_water": project.low_water,
        "exclude": list(exclude),
    }
    item, free, oldest_lease = _lease_statement(project, user, params)
    if oldest_lease is not None and oldest_lease <= now:
        item_leases_expire(project_id=project.pk)
    if item is None:
        state = _empty_state(project)
        return None, state, state == NextState.WAITING
    return item, NextState.OK, free < project.low_water


def _lease_statement(project: Project, user, params: dict) -> tuple[Item | None, int, object]:
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
        Assignment.objects.filter(
            item__project=project, status=Assignment.Status.ACTIVE, item__leased_to__isnull=True
        ).update(status=Assignment.Status.EXPIRED)
        row = run()
    *values, lease_expires_at, free, oldest_lease = row
    if values[0] is None:
        return None, free, oldest_lease
    fields = dict(zip(_LEASE_COLUMNS, values, strict=True))
    for key in ("features", "meta", "prediction"):  # jsonb comes as text: the field decodes
        if isinstance(fields[key], str):
            fields[key] = json.loads(fields[key])
    item = Item(project=project, status=Item.Status.QUEUED, **fields)
    item.leased_to_id, item.lease_expires_at = user.pk, lease_expires_at
    item._state.adding, item._state.db = False, "default"
    return item, free, oldest_lease


def _empty_state(project: Project) -> str:
    """Why there is no item for the caller."""
    project.refresh_from_db(fields=["budget", "spent", "reserved"])
    if Item.objects.filter(project=project, status=Item.Status.QUEUED).exists():
        return NextState.WAITING  # held by others (or skipped by the caller)
    if project.spent >= project.budget:
        return NextState.BUDGET_EXHAUSTED
    unlabeled = Item.objects.filter(project=project, status=Item.Status.UNLABELED)
    if not unlabeled.exists():
        return NextState.POOL_EXHAUSTED
    if not item_affordable_exists(project=project, items=unlabeled):
        return NextState.BUDGET_EXHAUSTED
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


def item_leases_expire(*, project_id: int) -> int:
    """Release every expired lease of the project: the item goes back to the pool and its
    reserved cost is released (a round may queue it again); its assignment is closed as
    expired. Returns how many were released. Items being labeled right now (row locked)
    are skipped: the label decides them."""
    released = 0
    with transaction.atomic():
        expired = list(
            Item.objects.select_for_update(skip_locked=True)
            .only("id", "project_id", "cost", "group", "status")
            .filter(
                project_id=project_id,
                status=Item.Status.QUEUED,
                leased_to__isnull=False,
                lease_expires_at__lte=timezone.now(),
            )
            .order_by("id")
        )
        for item in expired:
            item_unqueue(item=item)
            released += 1
    return released


def _item_for_update(*, project: Project, item_id: int) -> Item:
    """The item, row locked, with the fields a label or a skip decides on; else 404."""
    try:
        return (
            Item.objects.select_for_update()
            .only("id", "project_id", "status", "leased_to_id", "cost", "group", "skip_count")
            .get(project=project, pk=item_id)
        )
    except Item.DoesNotExist as exc:
        raise NotFound(f"Item {item_id} is not in this project.", field="item") from exc


def _mine(item: Item, user) -> None:
    if item.status != Item.Status.QUEUED or item.leased_to_id != user.pk:
        raise Conflict("This item is not assigned to you.", field="item")


def item_lease_renew(*, project: Project, user, item_id: int) -> Item:
    """Extend the caller's lease on an item by the project's lease_seconds (the labeling
    page renews while it is open and visible). 409 if the item is not leased to them (a
    lease already released by expiry is gone: ask `next` again)."""
    with transaction.atomic():
        item = _item_for_update(project=project, item_id=item_id)
        _mine(item, user)
        expires = timezone.now() + timedelta(seconds=project.lease_seconds)
        Item.objects.filter(pk=item.pk).update(lease_expires_at=expires)
        Assignment.objects.filter(item_id=item.pk, status=Assignment.Status.ACTIVE).update(
            expires_at=expires
        )
        item.lease_expires_at = expires
    return item


def item_release(*, project: Project, user, item_id: int) -> Item:
    """Give back a leased item unlabeled (the page was closed): it stays queued, with its
    reservation, for the next caller, this user included."""
    with transaction.atomic():
        item = _item_for_update(project=project, item_id=item_id)
        _mine(item, user)
        Item.objects.filter(pk=item.pk).update(leased_to=None, lease_expires_at=None)
        Assignment.objects.filter(item_id=item.pk, status=Assignment.Status.ACTIVE).update(
            status=Assignment.Status.RELEASED
        )
        item.leased_to_id = item.lease_expires_at = None
    return item


def item_skip(*, project: Project, user, item_id: int) -> Item:
    """The caller passes on a leased item. It stays queued, with its reservation, for the
    others (never handed to this user again); after ANNOTATION_SKIP_LIMIT skips by
    different annotators it leaves the queue as `skipped` and its reservation is released
    (a manager can return it with items_skipped_return). So one annotator looping
    next -> skip sees each item once and drains nothing."""
    with transaction.atomic():
        item = _item_for_update(project=project, item_id=item_id)
        _mine(item, user)
        Assignment.objects.filter(item_id=item.pk, status=Assignment.Status.ACTIVE).update(
            status=Assignment.Status.SKIPPED
        )
        skips = item.skip_count + 1
        if skips >= settings.ANNOTATION_SKIP_LIMIT:
            Item.objects.filter(pk=item.pk).update(
                status=Item.Status.SKIPPED,
                skip_count=skips,
                leased_to=None,
                lease_expires_at=None,
            )
            _release(project.pk, item.cost, item.group)
            item.status = Item.Status.SKIPPED
        else:
            Item.objects.filter(pk=item.pk).update(
                skip_count=skips, leased_to=None, lease_expires_at=None
            )
        item.skip_count, item.leased_to_id = skips, None
    return item


def items_skipped_return(*, project: Project) -> int:
    """A manager returns every skipped item to the pool (a later round may queue it);
    returns how many. Their skip counts start again; who skipped which stays recorded."""
    return Item.objects.filter(project=project, status=Item.Status.SKIPPED).update(
        status=Item.Status.UNLABELED,
        skip_count=0,
        queued_round=None,
        queue_rank=None,
        score=None,
        acquisition="",
        queued_at=None,
    )


# --- labels ------------------------------------------------------------------------------

# Label a queued item whose cost is reserved, in one statement: lock the item (queued and
# leased to the user; or free, when `free_ok`: a late label on an item queued again), then
# its group row, then move the cost from reserved to spent in the project ledger (the one
# contended row lock, held only for this statement; taken last, when the join above has
# produced its row) and the group's, mark the item labeled, close the assignment, insert
# the annotation. Everything hangs off the project update: if the item is not in that
# state or the reservation is missing, nothing is written and no row comes back.
_LABEL_SQL = """
WITH target AS (
    SELECT id, cost, "group", prediction -> 'labels' -> 0 AS top FROM annotation_item
    WHERE id = %(item)s AND project_id = %(project)s AND status = %(queued)s
      AND (leased_to_id = %(user)s OR (%(free_ok)s AND leased_to_id IS NULL))
    FOR UPDATE
), grp AS (
    SELECT budget_group.id FROM annotation_budgetgroup AS budget_group, target
    WHERE budget_group.project_id = %(project)s AND target."group" <> ''
      AND budget_group.name = target."group"
    FOR UPDATE OF budget_group
), ledger AS (
    UPDATE annotation_project AS project
    SET reserved = project.reserved - target.cost, spent = project.spent + target.cost
    FROM target LEFT JOIN grp ON TRUE
    WHERE project.id = %(project)s AND project.reserved >= target.cost
    RETURNING project.spent, project.budget, target.id, target.cost, target."group",
        grp.id AS group_id, target.top
), group_ledger AS (
    UPDATE annotation_budgetgroup AS budget_group
    SET reserved = budget_group.reserved - ledger.cost, spent = budget_group.spent + ledger.cost
    FROM ledger
    WHERE budget_group.id = ledger.group_id AND budget_group.reserved >= ledger.cost
), labeled AS (
    UPDATE annotation_item AS item
    SET status = %(labeled)s, leased_to_id = NULL, lease_expires_at = NULL
    FROM ledger WHERE item.id = ledger.id
), submitted AS (
    UPDATE annotation_assignment AS assignment SET status = %(submitted)s
    FROM ledger WHERE assignment.item_id = ledger.id AND assignment.status = %(active)s
), annotation AS (
    INSERT INTO annotation_annotation (item_id, annotator_id, label, cost, created_at,
        updated_at, suggestion_probability, suggestion_agreed)
    SELECT ledger.id, %(user)s, %(label)s, ledger.cost, %(now)s, %(now)s,
        CASE WHEN %(suggested)s THEN (ledger.top ->> 1)::float8 END,
        CASE WHEN %(suggested)s AND ledger.top IS NOT NULL THEN ledger.top ->> 0 = %(label)s END
    FROM ledger
    RETURNING id
)
SELECT annotation.id, ledger.spent, ledger.budget, ledger.cost, ledger."group"
FROM ledger, annotation
"""


def annotation_submit(
    *, project: Project, user, item_id: int, label: str
) -> tuple[Annotation, bool]:
    """Record `user`'s label for an item; returns (annotation, created), and leaves the
    project's `spent` and `budget` as they are after the label.

    - the item is queued and leased to the user (even if the lease has run out but was not
      released yet): the label is stored, the reserved cost is spent (one statement);
    - the user's lease expired and was released, or their page released it (a reload's
      release beacon may arrive after the new page got the item back and showed it): the
      late label is accepted while nobody else holds or labeled the item and the budget
      allows it, else 409. If a round
      queued the item again (free), its new reservation is spent; if it is back in the
      pool, its cost is spent anew where it fits;
    - the user already labeled it: same label -> nothing changes (idempotent), another
      label -> the label is changed at no new cost;
    - anything else (someone else holds or labeled it, it was never handed to the user,
      the user skipped it) -> 409.
    """
    if label not in project.labels:
        raise ValidationFailed(
            f"{label!r} is not one of this project's labels: {', '.join(project.labels)}.",
            field="label",
        )
    annotation = _label_reserved(project, user, item_id, label, free_ok=False)
    if annotation is not None:
        return annotation, True
    with transaction.atomic():
        item = _item_for_update(project=project, item_id=item_id)
        if item.status == Item.Status.LABELED:
            return _relabel(project, user, item, label), False
        if item.leased_to_id is None and _lease_lost_by(item, user):
            if item.status == Item.Status.QUEUED:  # queued again by a round, and free
                annotation = _label_reserved(project, user, item_id, label, free_ok=True)
                if annotation is None:
                    raise Conflict("The item's cost is not reserved in the budget.", code="budget")
                return annotation, True
            if item.status == Item.Status.UNLABELED:
                return _label_unreserved(project, user, item, label), True
        raise Conflict("This item is not assigned to you.", field="item")


def _lease_lost_by(item: Item, user) -> bool:
    """Whether the user's latest lease of the item ended with neither their label nor
    their skip: it expired, or it was released."""
    last = (
        Assignment.objects.filter(item_id=item.pk, user=user)
        .order_by("-id")
        .values_list("status", flat=True)
        .first()
    )
    return last in (Assignment.Status.EXPIRED, Assignment.Status.RELEASED)


def _label_reserved(
    project: Project, user, item_id: int, label: str, *, free_ok: bool
) -> Annotation | None:
    """The one-statement label (see _LABEL_SQL); None if the item is not in that state."""
    now = timezone.now()
    params = {
        **STATUS,
        "project": project.pk,
        "item": item_id,
        "user": user.pk,
        "label": label,
        "now": now,
        "free_ok": free_ok,
        "suggested": project.show_predictions,
    }
    with connection.cursor() as cursor:
        cursor.execute(_LABEL_SQL, params)
        row = cursor.fetchone()
    if row is None:
        return None
    annotation_id, project.spent, project.budget, cost, group = row
    item = Item(id=item_id, project=project, status=Item.Status.LABELED, cost=cost, group=group)
    annotation = Annotation(id=annotation_id, item=item, annotator=user, label=label, cost=cost)
    annotation.created_at = annotation.updated_at = now
    for instance in (item, annotation):
        instance._state.adding, instance._state.db = False, "default"
    webhooks.label_events(project=project)
    return annotation


def _suggested(project: Project, item_id: int) -> tuple[float | None, str | None]:
    """The top suggestion shown for the item (probability, label), or (None, None)."""
    if not project.show_predictions:
        return None, None
    prediction = Item.objects.filter(pk=item_id).values_list("prediction", flat=True).first()
    if not prediction or not prediction.get("labels"):
        return None, None
    name, probability = prediction["labels"][0]
    return float(probability), name


def _relabel(project: Project, user, item: Item, label: str) -> Annotation:
    annotation = Annotation.objects.select_for_update().get(item=item)
    if annotation.annotator_id != user.pk:
        raise Conflict("This item was labeled by someone else.", field="item")
    if annotation.label != label:
        annotation.label = label
        fields = ["label", "updated_at"]
        if annotation.suggestion_probability is not None:
            annotation.suggestion_agreed = _suggested(project, item.pk)[1] == label
            fields.append("suggestion_agreed")
        annotation.save(update_fields=fields)
    project.refresh_from_db(fields=["spent", "budget"])
    return annotation


def _label_unreserved(project: Project, user, item: Item, label: str) -> Annotation:
    """A late label on an item back in the pool (row locked by the caller): spend its
    cost where it still fits the group and project budgets, else 409."""
    cost = item.cost
    fits = _ledger_update(
        project.pk,
        item.group,
        condition=Q(budget__gte=F("spent") + F("reserved") + cost),
        spent=F("spent") + cost,
    )
    if not fits:
        raise Conflict("The budget is exhausted: this label would exceed it.", code="budget")
    Item.objects.filter(pk=item.pk).update(status=Item.Status.LABELED)
    probability, top = _suggested(project, item.pk)
    annotation = Annotation.objects.create(
        item=item,
        annotator=user,
        label=label,
        cost=cost,
        suggestion_probability=probability,
        suggestion_agreed=None if top is None else top == label,
    )
    project.refresh_from_db(fields=["spent", "budget"])
    webhooks.label_events(project=project)
    return annotation
