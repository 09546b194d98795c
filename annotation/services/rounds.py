"""Acquisition rounds: the only place that turns rows into arrays for `sampler` and back.

A round is: cold start (diverse picks) while there are too few labels, otherwise train an
ensemble on the labeled rows, score the unlabeled pool in shards (one Celery task each),
merge the shards' best candidates, select a batch within the remaining budget and queue it,
reserving its cost. All state lives in the database (Round, RoundShard), so every step is
idempotent: a task that runs twice, or after its worker died, finds the work done or redoes
the same work.

`sampler` (PyTorch) is imported inside the functions that need it, so the web process,
which only starts rounds, never loads PyTorch.
"""

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import numpy as np
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from annotation.errors import Conflict
from annotation.models import AUDIT, BudgetGroup, Item, Project, Round, RoundShard
from annotation.services import dispatch, webhooks
from annotation.services.items import items_featurize_resend_if_stale
from annotation.services.queue import item_affordable_exists, items_queue

logger = logging.getLogger(__name__)

AUTO = "auto"  # the acquisition that picks a strategy per round (sampler.strategy)
AUTO_MIN_AUDIT = 2  # labeled audit items before a round's reward counts
DIVERSITY_POOL = 5  # candidates kept per shard, in batches: the reduce step picks among them
COLD_START_CANDIDATES = 20_000


def cold_start_threshold(project: Project) -> int:
    """Labels needed before an ensemble is trained: two per class, at least one batch."""
    return max(2 * len(project.labels), project.batch_size)


def _pool(project_id: int):
    """Items a round may pick: unlabeled, featurized."""
    return Item.objects.filter(
        project_id=project_id, status=Item.Status.UNLABELED, vector__isnull=False
    )


def _free_queue_at_least(project: Project, n: int) -> bool:
    free = Item.objects.filter(project=project, status=Item.Status.QUEUED, leased_to__isnull=True)
    return free.values("id")[:n].count() >= n


def _round_running(project_id: int) -> bool:
    """A round is running and alive (its heartbeat is fresh)."""
    alive = timezone.now() - timedelta(seconds=settings.ANNOTATION_ROUND_STALE_SECONDS)
    return Round.objects.filter(
        project_id=project_id, status=Round.Status.RUNNING, heartbeat_at__gt=alive
    ).exists()


def round_maybe_start(*, project_id: int) -> Round | None:
    """Start a round if the free queue is under the low-water mark and none is running;
    never on a paused project (Project.paused: the one place rounds start by themselves,
    after hand-outs, skips and featurizing).

    Cheap when nothing is to be done (a bounded COUNT, then a look for a live round). The
    checks that read the pool (is there anything affordable to pick?) run before the
    project row lock, which every label takes, so labels never wait for a pool scan; the
    lock is held only to replace a stale round and create the new one, so two callers
    cannot both start a round (the partial unique constraint on Round backs this up). The
    round task is enqueued after the commit.
    """
    project = Project.objects.get(pk=project_id)
    if project.paused:
        return None
    if _free_queue_at_least(project, project.low_water):
        return None
    items_featurize_resend_if_stale(project_id=project_id)
    if _round_running(project_id):
        return None
    if not _worth_a_round(project):
        return None
    return _round_create(project_id, manual=False)


def round_start_now(*, project: Project) -> Round:
    """A manager starts a round now, however long the queue (and on a paused project too:
    its queue is ready when it resumes). 409 naming why when none can start: a round is
    running, no budget is left, or no featurized unlabeled item fits the budget."""
    items_featurize_resend_if_stale(project_id=project.pk)
    running = Round.objects.filter(project=project, status=Round.Status.RUNNING).first()
    if running is not None and _round_running(project.pk):
        raise Conflict(
            f"Round {running.number} is running: the next one can start when it is done.",
            code="round_running",
        )
    project.refresh_from_db(fields=["budget", "spent", "reserved"])
    if project.remaining <= 0:
        raise Conflict("No budget is left to queue items: raise the budget.", code="budget")
    if not _pool(project.pk).exists():
        raise Conflict(
            "No unlabeled item is featurized yet: import items, or wait for featurizing.",
            code="empty_pool",
        )
    if not item_affordable_exists(project=project, items=_pool(project.pk)):
        raise Conflict("No unlabeled item fits the remaining budget.", code="budget")
    rnd = _round_create(project.pk, manual=True)
    if rnd is None:
        raise Conflict("A round has just started: see the rounds below.", code="round_running")
    return rnd


def _round_create(project_id: int, *, manual: bool) -> Round | None:
    """Under the project row lock: replace a stale running round, then create the next
    round and send it after the commit. None if a live round is running, no budget is
    left, the project is paused (automatic rounds) or the last round failed moments ago
    (automatic rounds back off; a manager's start does not)."""
    replaced = False
    with transaction.atomic():
        project = Project.objects.select_for_update().get(pk=project_id)
        if project.paused and not manual:
            return None
        if Round.objects.filter(project=project, status=Round.Status.RUNNING).exists():
            # A round step that holds its row (queueing its batch) is alive: SKIP LOCKED
            # leaves it be, and never waits for it while holding the project row.
            running = (
                Round.objects.select_for_update(skip_locked=True)
                .filter(project=project, status=Round.Status.RUNNING)
                .first()
            )
            if running is None:
                return None
            quiet = timezone.now() - running.heartbeat_at
            if quiet.total_seconds() < settings.ANNOTATION_ROUND_STALE_SECONDS:
                return None
            running.status = Round.Status.FAILED
            running.error = "No progress within ANNOTATION_ROUND_STALE_SECONDS: replaced."
            running.finished_at = timezone.now()
            running.save(update_fields=["status", "error", "finished_at"])
            replaced = True  # its successor starts now: no back-off after a dead round
        if project.remaining <= 0:
            return None
        last = Round.objects.filter(project=project).order_by("-number").first()
        if (
            not replaced
            and not manual
            and last is not None
            and last.status == Round.Status.FAILED
            and last.finished_at is not None
            and (timezone.now() - last.finished_at).total_seconds()
            < settings.ANNOTATION_ROUND_RETRY_SECONDS
        ):
            return None  # the last one just failed (say, the broker is down): back off
        number = project.round + 1
        try:
            with transaction.atomic():
                rnd = Round.objects.create(
                    project=project, number=number, strategy=project.acquisition
                )
        except IntegrityError:
            return None
        Project.objects.filter(pk=project_id).update(round=number)
        transaction.on_commit(lambda: _send_or_fail(dispatch.send_round_run, rnd.pk))
    return rnd


def _worth_a_round(project: Project) -> bool:
    """Whether a round could queue something: budget left, a featurized item that fits it,
    and something changed since the last round found nothing to queue. Reads the pool
    without locks; the round re-checks everything when it queues."""
    if project.remaining <= 0 or not _pool(project.pk).exists():
        return False
    last = Round.objects.filter(project=project).order_by("-number").first()
    if (
        last is not None
        and last.status == Round.Status.DONE
        and last.queued_count == 0
        and last.budget_spent == project.spent
        and last.pool_size == _pool(project.pk).count()
    ):
        return False  # nothing changed since a round found nothing to queue
    return item_affordable_exists(project=project, items=_pool(project.pk))


def _send_or_fail(send, round_id: int, *args) -> None:
    """Send a round's next task (annotation.services.dispatch); if the broker is down,
    fail the round at once, so the next caller starts a fresh one instead of waiting for
    it to go stale."""
    if not send(round_id, *args):
        round_fail(round_id=round_id, error="The broker was unavailable.")


def _heartbeat(round_id: int) -> None:
    Round.objects.filter(pk=round_id, status=Round.Status.RUNNING).update(
        heartbeat_at=timezone.now()
    )


@contextmanager
def round_beating(round_id: int) -> Iterator[None]:
    """Move the round's heartbeat on every ANNOTATION_ROUND_HEARTBEAT_SECONDS while a step
    of it works (training, scoring a shard, reducing), from a thread of the worker process.

    So a round whose heartbeat is older than ANNOTATION_ROUND_STALE_SECONDS (30 s) has no
    live step: its worker died (SIGKILL, a lost machine) or its task message was lost, and
    round_maybe_start replaces it within seconds, not when the broker's visibility timeout
    hands the message out again (10 minutes on Redis)."""
    stop = threading.Event()

    def beat() -> None:
        try:
            while not stop.wait(settings.ANNOTATION_ROUND_HEARTBEAT_SECONDS):
                _heartbeat(round_id)
        finally:
            connection.close()  # the thread's own connection

    _heartbeat(round_id)
    thread = threading.Thread(target=beat, name=f"round-{round_id}-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


def _vectors(rows, dim: int | None = None) -> np.ndarray:
    """Stack float32 vectors stored as bytes into a writable (n, d) matrix.

    One join into a single buffer: 0.015 s for a 50,000-row shard of 256 floats, where an
    array per row and np.stack took 0.06 s (bench/bench_round_celery.py's data).
    """
    if not rows:
        return np.zeros((0, dim or 0), dtype=np.float32)
    width = len(rows[0])
    if any(len(v) != width for v in rows):
        raise ValueError("the vectors do not all have the same length")
    return np.frombuffer(bytearray().join(rows), dtype=np.float32).reshape(len(rows), width // 4)


def _labeled(project: Project) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Labeled rows: features (n, d), class indices (n,) and each row's group."""
    rows = list(
        Item.objects.filter(project=project, status=Item.Status.LABELED, vector__isnull=False)
        .order_by("id")
        .values_list("vector", "annotation__label", "group")
    )
    index = {name: i for i, name in enumerate(project.labels)}
    rows = [(v, index[label], g) for v, label, g in rows if label in index]
    X = _vectors([r[0] for r in rows])
    y = np.asarray([r[1] for r in rows], dtype=np.int64)
    return X, y, [r[2] for r in rows]


def _group_budgets(project: Project) -> tuple[dict[str, int], dict[int, float]]:
    """Group names -> codes, and the remaining budget of each group that has one."""
    groups = list(BudgetGroup.objects.filter(project=project))
    codes = {g.name: i for i, g in enumerate(groups)}
    return codes, {codes[g.name]: float(g.remaining) for g in groups}


def round_run(*, round_id: int) -> None:
    """Train (or cold-start) and dispatch the shard tasks. Safe to run twice."""
    from sampler.ensemble import MLPEnsemble
    from sampler.selection import cold_start

    rnd = Round.objects.select_related("project").get(pk=round_id)
    if rnd.status != Round.Status.RUNNING:
        return
    if rnd.shard_count:
        _dispatch_pending_shards(rnd)
        return
    project = rnd.project
    X, y, groups = _labeled(project)
    pool = _pool(project.pk)
    pool_size = pool.count()
    cold = len(y) < cold_start_threshold(project) or len(np.unique(y)) < 2
    reason = ""
    if cold and pool_size > 0:
        rnd.strategy = "cold_start"
    elif rnd.strategy == AUTO:
        rnd.strategy, reason = _auto_strategy(project, rnd)
    # What the round decided so far goes to its row now: round_queue writes only what it
    # decides itself.
    Round.objects.filter(pk=round_id, status=Round.Status.RUNNING).update(
        labeled_count=len(y),
        budget_spent=project.spent,
        pool_size=pool_size,
        cold_start=cold and pool_size > 0,
        strategy=rnd.strategy,
        strategy_reason=reason,
        heartbeat_at=timezone.now(),
    )
    if pool_size == 0:
        round_queue(round_id=round_id, picks=[])
        return
    if cold:
        ids = np.fromiter(pool.values_list("id", flat=True), dtype=np.int64)
        rng = np.random.default_rng(rnd.number)
        if len(ids) > COLD_START_CANDIDATES:
            ids = np.sort(rng.choice(ids, COLD_START_CANDIDATES, replace=False))
        rows = list(
            Item.objects.filter(pk__in=ids.tolist())
            .order_by("id")
            .values_list("id", "vector", "cost", "group")
        )
        codes, group_remaining = _group_budgets(project)
        picks = cold_start(
            _vectors([r[1] for r in rows]),
            np.asarray([float(r[2]) for r in rows]),
            remaining=float(project.remaining),
            batch_size=project.batch_size,
            random_state=rnd.number,
            groups=np.asarray([codes.get(r[3], -1) for r in rows], dtype=np.int64),
            group_remaining=group_remaining,
            labeled_features=X,
        )
        round_queue(round_id=round_id, picks=[(rows[i][0], None) for i in picks])
        return
    model = MLPEnsemble(n_members=project.ensemble_size, random_state=rnd.number).fit(
        X, y, len(project.labels)
    )
    rnd.model = model.to_bytes()
    rnd.accuracy = model.oob_accuracy_
    if project.group_mode == Project.GroupMode.ADAPTIVE:
        rnd.group_stats = _adaptive_allocation(project, rnd, model, y, groups)
    bounds = _shard_bounds(pool, settings.ANNOTATION_SHARD_SIZE)
    with transaction.atomic():
        locked = Round.objects.select_for_update().get(pk=round_id)
        if locked.status != Round.Status.RUNNING or locked.shard_count:
            return
        RoundShard.objects.bulk_create(
            [
                RoundShard(round=rnd, index=i, start_id=lo, stop_id=hi)
                for i, (lo, hi) in enumerate(bounds)
            ]
        )
        rnd.shard_count = len(bounds)
        rnd.save(update_fields=["model", "accuracy", "shard_count", "group_stats"])
        transaction.on_commit(lambda: _dispatch_pending_shards(rnd))


def _auto_strategy(project: Project, rnd: Round) -> tuple[str, str]:
    """Acquisition "auto" (sampler.strategy): credit every earlier round whose reward is
    known (the audit accuracy of the next round's model, trained after its picks were
    labeled), draw this round's strategy, and keep the bandit's state on the project.
    Only one round of a project runs at a time, so the state has one writer."""
    from annotation.selectors.rounds import round_audits
    from sampler.strategy import choose, credit, new_state

    state = project.strategy_state or new_state()
    audits = round_audits(project=project)
    for number, _, _ in list(state["pending"]):
        n, correct = audits.get(number + 1, (0, 0))
        if n >= AUTO_MIN_AUDIT:
            credit(state, round_number=number, reward=correct / n)
    strategy, reason = choose(state, round_number=rnd.number, seed=project.pk)
    Project.objects.filter(pk=project.pk).update(strategy_state=state)
    return strategy, reason


def _adaptive_allocation(project, rnd, model, y, groups) -> dict:
    """How many of this round's batch each group gets, and why (stored on the round).

    Each group's out-of-bag error now, with its history from earlier rounds, gives its
    power-law learning curve; sampler.allocation spends the batch where the predicted
    error reduction per unit of cost is largest, above the project's per-group floor.
    """
    from django.db.models import Avg, Count

    from sampler.allocation import GroupCurve, allocate_batch

    oob = getattr(model, "oob_proba_", None)
    names = np.asarray(groups, dtype=object)
    history: dict[str, list] = {}
    for earlier in Round.objects.filter(
        project=project, number__lt=rnd.number, group_stats__isnull=False
    ).values_list("group_stats", flat=True):
        for name, stats in earlier.items():
            if stats.get("error") is not None:
                history.setdefault(name, []).append((stats["labels"], stats["error"]))
    curves = []
    for row in _pool(project.pk).values("group").annotate(n=Count("id"), cost=Avg("cost")):
        name = row["group"]
        mine = names == name
        error = None
        if oob is not None and mine.any():
            seen = mine & ~np.isnan(oob).any(1)
            if seen.any():
                error = float((oob[seen].argmax(1) != y[seen]).mean())
        points = history.get(name, []) + ([(int(mine.sum()), error)] if error is not None else [])
        curves.append(GroupCurve(name, int(mine.sum()), points, float(row["cost"]), row["n"]))
    allocate_batch(curves, batch_size=project.batch_size, floor=project.group_floor)
    return {
        c.name: {
            "labels": c.labels,
            "error": c.history[-1][1] if c.history and c.history[-1][0] == c.labels else None,
            "fit_a": round(c.a, 6),
            "fit_b": round(c.b, 6),
            "gain_per_cost": c.gain_per_cost,
            "mean_cost": c.mean_cost,
            "slots": c.slots,
        }
        for c in curves
    }


def _shard_bounds(pool, shard_size: int) -> list[tuple[int, int]]:
    """Split the pool into id ranges of about `shard_size` items each.

    Reads every shard_size-th id with a window query instead of loading all ids.
    """
    ids = pool.order_by("id").values_list("id", flat=True)
    bounds = []
    start = ids.first()
    while start is not None:
        nxt = ids.filter(id__gte=start)[shard_size : shard_size + 1].first()
        stop = nxt if nxt is not None else pool.order_by("-id").values_list("id", flat=True)[0] + 1
        bounds.append((start, stop))
        start = nxt
    return bounds


def _dispatch_pending_shards(rnd: Round) -> None:
    pending = list(
        RoundShard.objects.filter(round=rnd, done_at__isnull=True).values_list("index", flat=True)
    )
    _send_or_fail(dispatch.send_round_shards, rnd.pk, pending)


def _shard_rows(project_id: int, start_id: int, stop_id: int) -> list[tuple]:
    """(id, vector, cost, group) of the pool's items with start_id <= id < stop_id, by id.

    On PostgreSQL the rows come through COPY in binary: a query's text results hex-encode
    the vectors (twice the bytes, encoded by the server and decoded here). For a 50,000-row
    shard of 256 floats that took 0.18 s of CPU here and 0.10 s in the server; the COPY
    takes 0.12 s and 0.05 s.
    """
    rows = (
        _pool(project_id)
        .filter(id__gte=start_id, id__lt=stop_id)
        .order_by("id")
        .values_list("id", "vector", "cost", "group")
    )
    sql = connection.ops.compose_sql(*rows.query.sql_with_params())
    with (
        connection.cursor() as cursor,
        cursor.copy(f"COPY ({sql}) TO STDOUT (FORMAT BINARY)") as copy,
    ):
        copy.set_types(["int8", "bytea", "numeric", "varchar"])
        return list(copy.rows())


def round_score_shard(*, round_id: int, index: int) -> None:
    """Score one shard of the pool and store its best candidates. Safe to run twice.

    Reads only the shard's rows. The last shard to finish enqueues the reduce step: the
    round row lock serializes the finishing shards so exactly one of them sees all done.
    """
    from sampler.acquisition import score_floor
    from sampler.ensemble import MLPEnsemble
    from sampler.pool import score_shard, shard_candidates

    shard = RoundShard.objects.select_related("round__project").get(round_id=round_id, index=index)
    rnd = shard.round
    if shard.done_at is not None or rnd.status != Round.Status.RUNNING:
        return
    project = rnd.project
    rows = _shard_rows(project.pk, shard.start_id, shard.stop_id)
    candidates: list = []
    if rows:
        ids = np.asarray([r[0] for r in rows], dtype=np.int64)
        X = _vectors([r[1] for r in rows])
        costs = np.asarray([float(r[2]) for r in rows])
        model = MLPEnsemble.from_bytes(bytes(rnd.model))
        extra = {}
        if rnd.strategy == "cal":
            extra["labeled_X"] = _labeled(project)[0]
        if project.out_of_scope_label in project.labels:
            extra["exclude_class"] = project.labels.index(project.out_of_scope_label)
            extra["exclude_above"] = project.out_of_scope_threshold
        if rnd.strategy == "lftl":
            previous = (
                Round.objects.filter(project=project, number__lt=rnd.number, model__isnull=False)
                .order_by("-number")
                .values_list("model", flat=True)
                .first()
            )
            if previous is not None:
                extra["previous_model"] = MLPEnsemble.from_bytes(bytes(previous))
        scores = score_shard(model, X, rnd.strategy, ids=ids, random_state=rnd.number, **extra)
        k = project.batch_size * DIVERSITY_POOL
        floor = score_floor(rnd.strategy)
        if rnd.group_stats:  # adaptive groups: keep each group's best, not only the overall
            names = np.asarray([r[3] for r in rows], dtype=object)
            for name in np.unique(names):
                mine = names == name
                candidates += shard_candidates(
                    ids[mine], scores[mine], costs[mine], k, score_floor=floor
                )
        else:
            candidates = shard_candidates(ids, scores, costs, k, score_floor=floor)
    with transaction.atomic():
        locked = Round.objects.select_for_update().get(pk=round_id)
        updated = RoundShard.objects.filter(pk=shard.pk, done_at__isnull=True).update(
            candidates=candidates, scored=len(rows), done_at=timezone.now()
        )
        _heartbeat(round_id)
        if updated and locked.status == Round.Status.RUNNING:
            if not RoundShard.objects.filter(round_id=round_id, done_at__isnull=True).exists():
                transaction.on_commit(lambda: _send_or_fail(dispatch.send_round_reduce, round_id))


def round_reduce(*, round_id: int) -> None:
    """Merge the shards' candidates, select a diverse batch within budget, queue it."""
    from sampler.acquisition import score_floor

    rnd = Round.objects.select_related("project").get(pk=round_id)
    if rnd.status != Round.Status.RUNNING:
        return
    project = rnd.project
    shards = list(RoundShard.objects.filter(round=rnd).values_list("candidates", "done_at"))
    if any(done is None for _, done in shards):
        return
    floor = score_floor(rnd.strategy)
    merged = [c for candidates, _ in shards for c in candidates or []]
    # (id, cost, group) of the candidates still unlabeled; _select reads the vectors of
    # its finalists only (batch_size x DIVERSITY_POOL), not of every shard's candidates.
    rows = {
        r[0]: r
        for r in Item.objects.filter(
            pk__in=[int(c[0]) for c in merged], status=Item.Status.UNLABELED
        ).values_list("id", "cost", "group")
    }
    merged = [c for c in merged if int(c[0]) in rows]
    codes, group_remaining = _group_budgets(project)
    remaining = float(project.remaining)
    n_audit = audit_size(project)
    if rnd.group_stats:
        picks = []
        for name, stats in sorted(rnd.group_stats.items(), key=lambda kv: -kv[1]["slots"]):
            mine = [c for c in merged if rows[int(c[0])][2] == name]
            chosen = _select(mine, rows, codes, group_remaining, remaining, stats["slots"], floor)
            picks += chosen
            remaining -= sum(float(rows[i][1]) for i, _ in chosen)
            if name in codes:
                group_remaining[codes[name]] -= sum(float(rows[i][1]) for i, _ in chosen)
    else:
        picks = _select(
            merged, rows, codes, group_remaining, remaining, project.batch_size - n_audit, floor
        )
    audit = _audit_ids(project, rnd, n_audit, exclude={i for i, _ in picks})
    predictions = _predictions(rnd, [i for i, _ in picks] + audit)
    round_queue(round_id=round_id, picks=picks, audit=audit, predictions=predictions)


def audit_size(project: Project) -> int:
    """Items of a trained round's batch picked uniformly at random (the audit slice):
    audit_share of the batch, at least 2 when the share is above 0, at most half of it."""
    from sampler.strategy import audit_size as size

    return size(project.audit_share, project.batch_size)


def _audit_ids(project: Project, rnd: Round, n: int, exclude: set[int]) -> list[int]:
    """`n` ids drawn uniformly from the unlabeled, featurized pool, leaving out `exclude`:
    the model's accuracy on them, once labeled, estimates its accuracy on the whole pool
    without the bias of actively chosen (hard) items. Seeded by the round."""
    if n <= 0:
        return []
    ids = np.fromiter(_pool(project.pk).values_list("id", flat=True), dtype=np.int64)
    if exclude:
        ids = ids[~np.isin(ids, np.fromiter(exclude, dtype=np.int64))]
    rng = np.random.default_rng([project.pk, rnd.number])
    return sorted(int(i) for i in rng.choice(ids, size=min(n, len(ids)), replace=False))


def _predictions(rnd: Round, ids: list[int]) -> dict[int, dict]:
    """The round's ensemble's top labels for the items it queues: {id: {"labels": [[name,
    probability], ...]}}, best first, at most 3. Shown as suggestions (show_predictions),
    and compared with the labels of the audit slice to estimate accuracy."""
    from sampler.ensemble import MLPEnsemble

    if not ids or not rnd.model:
        return {}
    labels = rnd.project.labels
    vectors = dict(Item.objects.filter(pk__in=ids).values_list("id", "vector"))
    known = [i for i in ids if vectors.get(i) is not None]
    if not known:
        return {}
    members = MLPEnsemble.from_bytes(bytes(rnd.model)).predict_proba(
        _vectors([vectors[i] for i in known])
    )
    proba = members.mean(axis=0)  # the ensemble's mean (N, C)
    out = {}
    for item_id, p in zip(known, proba, strict=True):
        top = np.argsort(-p)[:3]
        out[item_id] = {"labels": [[labels[c], round(float(p[c]), 4)] for c in top]}
    return out


def _select(candidates, rows, codes, group_remaining, remaining, batch_size, floor):
    """The best `batch_size` of `candidates` within the budgets, diverse, as (id, score).

    `rows` maps each candidate's id to its (id, cost, group) row.
    """
    from sampler.pool import merge_candidates
    from sampler.selection import select_under_budget

    best = merge_candidates([candidates], batch_size * DIVERSITY_POOL, score_floor=floor)
    if not best or batch_size <= 0:
        return []
    ids = [int(c[0]) for c in best]
    vectors = dict(Item.objects.filter(pk__in=ids).values_list("id", "vector"))
    order = select_under_budget(
        np.asarray([c[1] for c in best]),
        np.asarray([float(rows[i][1]) for i in ids]),
        remaining=remaining,
        batch_size=batch_size,
        features=_vectors([vectors[i] for i in ids]),
        groups=np.asarray([codes.get(rows[i][2], -1) for i in ids], dtype=np.int64),
        group_remaining=group_remaining,
        score_floor=floor,
    )
    return [(ids[j], float(best[j][1])) for j in order]


def round_queue(
    *,
    round_id: int,
    picks: list[tuple[int, float | None]],
    audit: list[int] = (),
    predictions: dict[int, dict] | None = None,
) -> None:
    """Queue the picked items in order through queue.items_queue (which reserves their
    cost under the item, group and project locks, leaving out what no longer fits), then
    close the round with what it queued.

    `audit` (the uniform audit slice) is spread evenly through the batch, with strategy
    AUDIT, so it is labeled at the pace of the rest. `predictions` ({item id: the round
    model's prediction}) is stored with each queued item.

    Holds the round's row lock throughout, so a round is closed once: a second run of the
    step (a redelivered task) finds it done and queues nothing."""
    with transaction.atomic():
        locked = Round.objects.select_for_update().get(pk=round_id)
        if locked.status != Round.Status.RUNNING:
            return
        predictions = predictions or {}
        batch = _spread(
            [(i, score, locked.strategy, predictions.get(i)) for i, score in picks],
            [(i, None, AUDIT, predictions.get(i)) for i in audit],
        )
        count, total = items_queue(
            project_id=locked.project_id, round_number=locked.number, picks=batch
        )
        audited = (
            Item.objects.filter(
                project_id=locked.project_id, queued_round=locked.number, acquisition=AUDIT
            ).count()
            if audit
            else 0
        )
        finished = timezone.now()
        Round.objects.filter(pk=round_id).update(
            status=Round.Status.DONE,
            queued_count=count,
            queued_cost=total,
            audit_count=audited,
            finished_at=finished,
            seconds=(finished - locked.started_at).total_seconds(),
        )
        webhooks.event_emit(
            project_id=locked.project_id,
            event=webhooks.ROUND_FINISHED,
            payload={"round": locked.number, "queued": count, "queued_cost": str(total)},
        )
    logger.info(
        "round %s of project %s queued %d items (cost %s)",
        locked.number,
        locked.project_id,
        count,
        total,
    )


def _spread(picks: list, extra: list) -> list:
    """`extra` spread evenly through `picks`: [p, p, e, p, p, e, ...]."""
    out = list(picks)
    for j, e in enumerate(extra):
        out.insert(min(len(out), (j + 1) * len(picks) // (len(extra) + 1) + j), e)
    return out


def round_fail(*, round_id: int, error: str) -> None:
    Round.objects.filter(pk=round_id, status=Round.Status.RUNNING).update(
        status=Round.Status.FAILED, error=error[:5000], finished_at=timezone.now()
    )
