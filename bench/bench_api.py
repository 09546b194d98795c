"""The labeling API under load, served the way production serves it.

gunicorn (gthread workers) runs config.wsgi with DJANGO_DEBUG=0 on 127.0.0.1:<free port>,
on its own PostgreSQL database (annotation_bench: dropped, created and migrated by each run)
and Redis db 14 as the broker (no worker runs; whatever the web app enqueues is purged at
the end). One project holds 100,000 items (COPY, no vectors); 12,000 of them, of cost 1 or
2, are queued in rounds of 1,000 through annotation.services.rounds.round_queue, with a
budget equal to the queued cost: every label spends a reservation.

50 annotators (threads, one keep-alive http.client connection each, their own user and
token) label through the API: POST next, then POST annotations. Two runs, each bounded in
time and per annotator in items:
  (a) a fast human: 1 s between receiving an item and labeling it;
  (b) no pause.
A separate thread reads the project row every 20 ms for `spent + reserved <= budget`.

Prints next/annotations latency percentiles, labels per second, duplicates (an item labeled
twice, or handed to two annotators: must be 0), overspend (must be 0), and the goals next to
Label Studio 1.23's reference figures (20 annotators, no pause: ~4 labels/s, next p95 ~10 s,
44-58 items labeled twice).

gunicorn runs 2 gthread workers x 4 threads by default: on this 2-core machine, which also
runs PostgreSQL and the annotators, 4 x 8, 4 x 2, 2 x 16 and 6 x 4 gave the same labels/s
(all CPU-bound, within noise) and worse `next` tails.

    python -m bench.bench_api [--annotators 50] [--workers 2] [--threads 4]
"""

import argparse
import http.client
import json
import os
import random
import shutil
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.common import free_port, fresh_database, purge_broker, start_gunicorn, stop_gunicorn

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/annotation_bench"
)
BENCH_BROKER = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/14")
ENV = {
    "DJANGO_SETTINGS_MODULE": "config.settings",
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": "bench-only-secret-key-not-for-production-0123456789abcdef",
    "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
    "DJANGO_LOG_LEVEL": "WARNING",
    "DATABASE_URL": BENCH_DB,
    "CELERY_BROKER_URL": BENCH_BROKER,
}
os.environ.update(ENV)  # before Django is imported: this process builds the data

POOL = 100_000
QUEUED = 12_000
ROUND_SIZE = 1_000
LABELS = ["positive", "negative", "neutral"]
GOAL_NEXT_P95_MS = 25.0
GOAL_LABELS_PER_S = 100.0
LABEL_STUDIO = {"annotators": 20, "labels_per_s": 4.0, "next_p95_ms": 10_000.0, "dupes": "44-58"}


# --- the database and the data --------------------------------------------------------------


def build_project(annotators: int) -> tuple[int, list[tuple[str, str]], dict[int, float]]:
    """The 100,000-item project, its annotators and their tokens; queue QUEUED items.

    The pool goes in with COPY (the ORM's bulk_create takes over a minute for 100,000 rows
    here). The rounds are queued through annotation.services.rounds.round_queue, the
    service a real round ends with. Then ANALYZE,
    as autovacuum would soon after an import: on a fresh table the planner has no
    statistics and `next` costs twice as much.

    Returns (project id, [(username, token)], {queued item id: cost}).
    """
    from decimal import Decimal

    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from django.db.models import F
    from django.utils import timezone
    from rest_framework.authtoken.models import Token

    from annotation.models import Item, Membership, Project, Round
    from annotation.services.rounds import round_queue

    rng = random.Random(0)
    project = Project.objects.create(
        name="bench", labels=LABELS, budget=Decimal(0), acquisition="random", kind="text"
    )
    words = ["good", "bad", "fine", "awful", "great", "meh", "service", "food", "price", "staff"]
    now = timezone.now()
    columns = (
        'project_id, external_id, text, image, meta, cost, "group", status, acquisition, '
        "skip_count, featurize_error"
    )
    with connection.cursor() as cursor:
        with cursor.copy(f"COPY annotation_item ({columns}, created_at) FROM STDIN") as copy:
            for i in range(POOL):
                text = " ".join(rng.choices(words, k=12))
                cost = 2 if i % 4 == 0 else 1
                meta = json.dumps({"n": i})
                copy.write_row(
                    (project.pk, f"r{i}", text, "", meta, cost, "", "unlabeled", "", 0, "", now)
                )
    ids = list(
        Item.objects.filter(project=project).order_by("id").values_list("id", "cost")[:QUEUED]
    )
    costs = {item_id: float(cost) for item_id, cost in ids}
    # The budget is exactly what gets queued: every label spends from a reservation.
    Project.objects.filter(pk=project.pk).update(budget=sum(c for _, c in ids))
    rounds = [ids[start : start + ROUND_SIZE] for start in range(0, len(ids), ROUND_SIZE)]
    for number, chunk in enumerate(rounds, start=1):
        rnd = Round.objects.create(project=project, number=number, strategy="random")
        Project.objects.filter(pk=project.pk).update(round=F("round") + 1)
        round_queue(
            round_id=rnd.pk,
            picks=[(item_id, 1.0 - k / 10_000) for k, (item_id, _) in enumerate(chunk)],
        )
    project.refresh_from_db()
    assert project.reserved == project.budget, (project.reserved, project.budget)
    User = get_user_model()
    users = User.objects.bulk_create(
        [User(username=f"annotator{n:02d}") for n in range(annotators)]
    )
    Membership.objects.bulk_create(Membership(project=project, user=user) for user in users)
    tokens = Token.objects.bulk_create(Token(user=user, key=Token.generate_key()) for user in users)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return project.pk, [(t.user.username, t.key) for t in tokens], costs


# --- the annotators ---------------------------------------------------------------------------


@dataclass
class Log:
    next_ms: list[float] = field(default_factory=list)
    label_ms: list[float] = field(default_factory=list)
    handouts: list[tuple[int, str]] = field(default_factory=list)  # (item, user)
    labeled: list[tuple[int, str]] = field(default_factory=list)  # 201s
    errors: list[str] = field(default_factory=list)
    states: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    reconnects: int = 0


class Client:
    """One keep-alive connection; reconnects once if the server closed it while idle."""

    def __init__(self, port: int, token: str, log: Log):
        self.port, self.log = port, log
        self.headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def post(self, path: str, body: dict | None = None) -> tuple[int, dict, float]:
        data = json.dumps(body) if body is not None else ""
        for attempt in (1, 2):
            start = time.perf_counter()
            try:
                self.conn.request("POST", path, body=data, headers=self.headers)
                response = self.conn.getresponse()
                raw = response.read()
            except (http.client.RemoteDisconnected, ConnectionError, http.client.BadStatusLine):
                self.conn.close()
                self.log.reconnects += 1
                if attempt == 2:
                    raise
                continue
            elapsed = (time.perf_counter() - start) * 1000
            return response.status, json.loads(raw) if raw else {}, elapsed
        raise AssertionError("unreachable")

    def close(self):
        self.conn.close()


def annotate(port, project_id, user, token, pause, deadline, max_items, log: Log, seed: int):
    rng = random.Random(seed)
    client = Client(port, token, log)
    base = f"/api/projects/{project_id}"
    done = 0
    # People do not all start in the same millisecond: spread the first request over one
    # pause, so the paused run measures a steady load rather than a synchronized burst.
    time.sleep(rng.uniform(0, pause))
    try:
        while done < max_items and time.monotonic() < deadline:
            status, body, ms = client.post(f"{base}/next/")
            log.next_ms.append(ms)
            if status != 200:
                log.errors.append(f"{user}: next -> {status} {body}")
                return
            log.states[body["state"]] += 1
            if body["state"] == "waiting":
                time.sleep(0.05)
                continue
            if body["state"] != "ok":
                return  # budget_exhausted (or pool_exhausted): this annotator is done
            item = body["item"]["id"]
            log.handouts.append((item, user))
            if pause:
                time.sleep(pause * rng.uniform(0.9, 1.1))  # reading and deciding
            status, body, ms = client.post(
                f"{base}/annotations/", {"item": item, "label": rng.choice(LABELS)}
            )
            log.label_ms.append(ms)
            if status != 201:
                log.errors.append(f"{user}: label {item} -> {status} {body}")
                return
            log.labeled.append((item, user))
            done += 1
    except Exception as exc:  # counted and printed, never hidden
        log.errors.append(f"{user}: {exc!r}")
    finally:
        client.close()


class BudgetSampler(threading.Thread):
    """Reads the project's budget row every 20 ms; records any instant it breaks the rule."""

    def __init__(self, project_id: int):
        super().__init__(daemon=True)
        self.project_id, self.stop, self.samples, self.violations = (
            project_id,
            threading.Event(),
            0,
            0,
        )

    def run(self):
        import psycopg

        with psycopg.connect(BENCH_DB, autocommit=True) as conn:
            while not self.stop.is_set():
                budget, spent, reserved = conn.execute(
                    "SELECT budget, spent, reserved FROM annotation_project WHERE id = %s",
                    (self.project_id,),
                ).fetchone()
                self.samples += 1
                if spent > budget or spent + reserved > budget:
                    self.violations += 1
                time.sleep(0.02)


def run_mode(port, project_id, accounts, *, pause: float, seconds: float, max_items: int) -> dict:
    log = Log()
    sampler = BudgetSampler(project_id)
    sampler.start()
    deadline = time.monotonic() + seconds
    threads = [
        threading.Thread(
            target=annotate,
            args=(port, project_id, user, token, pause, deadline, max_items, log, n),
            daemon=True,
        )
        for n, (user, token) in enumerate(accounts)
    ]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 60)
    wall = time.monotonic() - start
    sampler.stop.set()
    sampler.join(timeout=5)
    holders = defaultdict(set)
    for item, user in log.handouts:
        holders[item].add(user)
    labeled_per_item = defaultdict(int)
    for item, _ in log.labeled:
        labeled_per_item[item] += 1
    return {
        "log": log,
        "wall": wall,
        "handed_twice": sum(1 for users in holders.values() if len(users) > 1),
        "labeled_twice": sum(1 for n in labeled_per_item.values() if n > 1),
        "sampler": sampler,
        "hung": sum(thread.is_alive() for thread in threads),
    }


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def database_check(project_id: int, costs: dict[int, float]) -> dict:
    """The ledger as the database has it, after the runs."""
    from django.db.models import Count

    from annotation.models import Annotation, Assignment, Project

    project = Project.objects.get(pk=project_id)
    labeled = list(
        Annotation.objects.filter(item__project_id=project_id).values_list("item_id", "cost")
    )
    return {
        "budget": float(project.budget),
        "spent": float(project.spent),
        "reserved": float(project.reserved),
        "labeled": len(labeled),
        "labeled_cost": sum(float(c) for _, c in labeled),
        "queued_cost_of_labeled": sum(costs.get(item, float("nan")) for item, _ in labeled),
        "items_with_two_assignments": Assignment.objects.filter(item__project_id=project_id)
        .values("item")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .count(),
    }


def report(name: str, result: dict, annotators: int) -> dict:
    log: Log = result["log"]
    rate = len(log.labeled) / result["wall"] if result["wall"] else 0.0
    print(
        f"{name}: {annotators} annotators, {len(log.labeled)} labels in {result['wall']:.1f} s "
        f"= {rate:.1f} labels/s"
    )
    print(
        f"  next        p50 {pct(log.next_ms, 50):7.1f} ms  p95 {pct(log.next_ms, 95):7.1f} ms  "
        f"p99 {pct(log.next_ms, 99):7.1f} ms  (n={len(log.next_ms)})"
    )
    print(
        f"  annotations p50 {pct(log.label_ms, 50):7.1f} ms  p95 {pct(log.label_ms, 95):7.1f} ms  "
        f"p99 {pct(log.label_ms, 99):7.1f} ms  (n={len(log.label_ms)})"
    )
    sampler = result["sampler"]
    print(
        f"  duplicates: {result['labeled_twice']} labeled twice, {result['handed_twice']} handed "
        f"to two annotators; overspend instants: {sampler.violations} of {sampler.samples} "
        f"samples; next states {dict(log.states)}; errors {len(log.errors)}, "
        f"reconnects {log.reconnects}, hung {result['hung']}"
    )
    for error in log.errors[:5]:
        print(f"    error: {error}")
    return {"rate": rate, "next_p95": pct(log.next_ms, 95)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--annotators", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--paused-seconds", type=float, default=20.0)
    parser.add_argument("--fast-seconds", type=float, default=30.0)
    parser.add_argument("--max-items", type=int, default=400, help="per annotator and run")
    args = parser.parse_args()
    if not shutil.which("createdb"):
        print("bench_api: PostgreSQL client tools (createdb) are needed", file=sys.stderr)
        return 2

    t0 = time.monotonic()
    fresh_database(BENCH_DB)
    project_id, accounts, costs = build_project(args.annotators)
    from django.db import connections

    connections.close_all()
    print(
        f"setup: {POOL:,} items, {QUEUED:,} queued (budget {sum(costs.values()):,.0f}), "
        f"{args.annotators} annotators in {time.monotonic() - t0:.1f} s; gunicorn gthread "
        f"{args.workers} workers x {args.threads} threads, DEBUG=0, PostgreSQL, Redis broker"
    )
    port = free_port()
    log_path = ROOT / "var" / "bench-api-gunicorn.log"
    log_path.parent.mkdir(exist_ok=True)
    server = start_gunicorn(port, args.workers, args.threads, log_path, env=ENV)
    try:
        # Warm-up: every worker imports and connects before anything is timed.
        warm = Log()
        clients = [Client(port, token, warm) for _, token in accounts[: args.workers * 4]]
        for client in clients:
            client.conn.request("GET", f"/api/projects/{project_id}/", headers=client.headers)
            client.conn.getresponse().read()
            client.close()
        paused = run_mode(
            port,
            project_id,
            accounts,
            pause=1.0,
            seconds=args.paused_seconds,
            max_items=args.max_items,
        )
        fast = run_mode(
            port,
            project_id,
            accounts,
            pause=0.0,
            seconds=args.fast_seconds,
            max_items=args.max_items,
        )
    finally:
        stop_gunicorn(server)
        purge_broker(BENCH_BROKER)
    a = report("(a) 1 s pause", paused, args.annotators)
    b = report("(b) no pause ", fast, args.annotators)
    db = database_check(project_id, costs)
    overspend = max(0.0, db["spent"] - db["budget"]) + max(
        0.0, db["spent"] + db["reserved"] - db["budget"]
    )
    # Any instant the sampler saw spent + reserved > budget counts as overspend too.
    overspend += paused["sampler"].violations + fast["sampler"].violations
    ledger_ok = (
        abs(db["spent"] - db["labeled_cost"]) < 1e-6
        and abs(db["labeled_cost"] - db["queued_cost_of_labeled"]) < 1e-6
    )
    print(
        f"ledger: budget {db['budget']:.0f}, spent {db['spent']:.0f}, reserved "
        f"{db['reserved']:.0f}; {db['labeled']} labels costing {db['labeled_cost']:.0f} "
        f"({'=' if ledger_ok else '!='} spent); overspend {overspend:.0f}; items with two "
        f"assignments {db['items_with_two_assignments']}"
    )
    dupes = (
        paused["labeled_twice"]
        + paused["handed_twice"]
        + fast["labeled_twice"]
        + fast["handed_twice"]
        + db["items_with_two_assignments"]
    )
    ls = LABEL_STUDIO
    # (name, ours, goal, Label Studio, verdict): None where there is no goal to meet.
    rows = [
        (
            "next p95, 1 s pause",
            f"{a['next_p95']:.1f} ms",
            f"< {GOAL_NEXT_P95_MS:.0f} ms",
            "-",
            a["next_p95"] < GOAL_NEXT_P95_MS,
        ),
        (
            "labels/s, no pause",
            f"{b['rate']:.1f}",
            f"> {GOAL_LABELS_PER_S:.0f}",
            f"{ls['labels_per_s']:.0f} (ours x{b['rate'] / ls['labels_per_s']:.0f})",
            b["rate"] > GOAL_LABELS_PER_S,
        ),
        (
            "next p95, no pause",
            f"{b['next_p95']:.1f} ms",
            "-",
            f"~{ls['next_p95_ms'] / 1000:.0f} s (ours /{ls['next_p95_ms'] / b['next_p95']:.0f})",
            None,
        ),
        ("duplicates", str(dupes), "0", ls["dupes"], dupes == 0),
        ("overspend", f"{overspend:.0f}", "0", "-", overspend == 0 and ledger_ok),
    ]
    print(f"{'':22}{'ours':>12}{'goal':>10}  Label Studio 1.23 ({ls['annotators']} annotators)")
    for name, ours, goal, baseline, ok in rows:
        verdict = "" if ok is None else "ok" if ok else "MISSED"
        print(f"{name:22}{ours:>12}{goal:>10}  {baseline:<28}{verdict}")
    print(f"total bench time {time.monotonic() - t0:.0f} s")
    # Speed goals are reported; a broken rule (duplicates, overspend, errors) fails the run.
    errors = len(paused["log"].errors) + len(fast["log"].errors) + paused["hung"] + fast["hung"]
    return 0 if dupes == 0 and overspend == 0 and ledger_ok and errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
