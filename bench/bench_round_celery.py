"""A full acquisition round through the production path: PostgreSQL, Redis, Celery workers.

bench/bench_round.py times the sampler alone on a memmap; this times the same round the way
production runs it. Its own PostgreSQL database (annotation_bench_round: dropped, created
and migrated by each run) holds one project of kind "features": --n items (1,000,000) whose
`vector` column holds --dim (256) float32 features as items_featurize stores them (the
bytes of a float32 array), drawn from --classes (10) seeded Gaussian clusters (class =
cluster, as in bench_round.py), loaded with COPY. The `features` column (the JSON a client
imported) is left empty: rounds never read it, and 256 numbers as JSON per item would make
the table three times larger. --labels (5,000) of them are labeled as annotation_submit
leaves them (item labeled, an Annotation of the item's cost, its Assignment submitted, the
cost in `spent`); the budget leaves room for exactly one batch of --batch (100) more.

For each strategy (margin, the default, and vote_entropy) and each worker count (1, 2), a
real `celery -A config worker --concurrency W` (prefork, as bin/run starts it) on Redis db
13 waits, warmed up, while the bench calls round_maybe_start as a label or an import
would: round_run_task trains the ensemble and sends one round_score_shard_task per
ANNOTATION_SHARD_SIZE items in a Celery group, the last shard sends round_reduce_task,
which queues the batch. Between runs the queue is emptied and the rounds deleted, so every
run is round 1 from the same state (same seed: 1 and 2 workers must pick the same items).

Phases, on one clock: start = the round_maybe_start call (it sends round_run_task on
commit); train = from then until the shard rows exist (polled every 20 ms: the task's trip
through Redis, reading the labels, training, the shard bounds); score = until the last
shard's done_at; reduce + queue = until the round's finished_at. Peak RSS is VmHWM from /proc of
the worker's main process and each pool process, read before the worker stops, and of the
PostgreSQL backends serving the bench database (polled every 0.2 s while they live); the
CPU time each used during the round comes from /proc too. The 1 -> 2 worker speed-up is
printed next to this machine's own ceiling, measured before each strategy and at the end:
how much more a one-thread PyTorch loop gets done in 2 processes at once than in 1 (2.0 on
two free cores; on this VM it swung between 1.0 and 2.0 from one minute to the next).
The rounds' checks (the batch queued once, within the budget, the same picks with 1 and 2
workers) fail the run; the 60 s and 3 GB goals are reported.

    python -m bench.bench_round_celery [--n 1000000] [--dim 256] [--labels 5000]
        [--workers 1,2] [--strategies margin,vote_entropy] [--reuse]
"""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import numpy as np

from bench.common import children, cpu_ticks, fresh_database, purge_broker

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = os.environ.get(
    "BENCH_ROUND_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/annotation_bench_round"
)
BENCH_BROKER = os.environ.get("BENCH_ROUND_BROKER_URL", "redis://127.0.0.1:6379/13")
ENV = {
    "DJANGO_SETTINGS_MODULE": "config.settings",
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": "bench-only-secret-key-not-for-production-0123456789abcdef",
    "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
    "DJANGO_LOG_LEVEL": "WARNING",
    "DATABASE_URL": BENCH_DB,
    "CELERY_BROKER_URL": BENCH_BROKER,
}
os.environ.update(ENV)  # before Django is imported: this process builds the data and triggers

PROJECT_NAME = "bench round"
GOAL_SECONDS = 60.0
GOAL_RSS_MB = 3 * 1024.0
BLOCK = 50_000  # rows generated and copied at a time
TASK_LINE = re.compile(r"Task annotation\.tasks\.(\w+)\[[^\]]+\] succeeded in ([0-9.]+)s")


# --- the database and the data --------------------------------------------------------------


def db_name() -> str:
    import dj_database_url

    return dj_database_url.parse(BENCH_DB)["NAME"]


def existing_project(args) -> int | None:
    """--reuse: the project a previous run built with the same sizes, if any."""
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections
    from django.db.utils import DatabaseError

    from annotation.models import Project

    try:
        call_command("migrate", verbosity=0)  # the models may have moved on since
        project = Project.objects.filter(name=PROJECT_NAME).first()
    except DatabaseError:
        project = None
    if (
        project is None
        or project.items.count() != args.n
        or project.spent != args.labels
        or len(project.labels) != args.classes
        or project.batch_size != args.batch
    ):
        connections.close_all()  # fresh_database drops it next
        return None
    return project.pk


def build_project(args) -> int:
    """The project, its pool (COPY, binary) and its labels; returns the project id.

    Labeled rows look as annotation_submit leaves them: status labeled, no lease, an
    Annotation with the item's cost, the Assignment submitted, the cost in `spent`. Then
    VACUUM ANALYZE, as autovacuum would soon after an import of this size.
    """
    from decimal import Decimal

    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.utils import timezone
    from psycopg.types.json import Jsonb

    from annotation.models import Membership, Project

    rng = np.random.default_rng(0)
    centers = rng.normal(size=(args.classes, args.dim)).astype(np.float32) * 0.35
    truth = rng.integers(0, args.classes, size=args.n)
    labeled = np.zeros(args.n, dtype=bool)
    labeled[rng.choice(args.n, args.labels, replace=False)] = True
    names = [f"class {c}" for c in range(args.classes)]
    project = Project.objects.create(
        name=PROJECT_NAME,
        labels=names,
        kind="features",
        budget=Decimal(args.labels + args.batch),
        spent=Decimal(args.labels),
        batch_size=args.batch,
    )
    user = get_user_model().objects.create(username="bench-annotator")
    Membership.objects.create(project=project, user=user)
    now = timezone.now()
    columns = (
        'project_id, external_id, text, image, meta, cost, "group", status, acquisition, '
        "vector, created_at"
    )
    types = ["int8", "varchar", "text", "text", "jsonb", "numeric", "varchar", "varchar"]
    types += ["varchar", "bytea", "timestamptz"]
    one = Decimal(1)
    with connection.cursor() as cursor:
        sql = f"COPY annotation_item ({columns}) FROM STDIN (FORMAT BINARY)"
        with cursor.copy(sql) as copy:
            copy.set_types(types)
            for start in range(0, args.n, BLOCK):
                stop = min(args.n, start + BLOCK)
                noise = rng.standard_normal((stop - start, args.dim), dtype=np.float32)
                X = centers[truth[start:stop]] + noise
                for i in range(start, stop):
                    status = "labeled" if labeled[i] else "unlabeled"
                    meta = Jsonb({"cluster": int(truth[i])})
                    vector = X[i - start].tobytes()
                    copy.write_row(
                        (project.pk, f"x{i}", "", "", meta, one, "", status, "", vector, now)
                    )
        cursor.execute(
            "SELECT id, external_id FROM annotation_item WHERE project_id = %s "
            "AND status = 'labeled' ORDER BY id",
            [project.pk],
        )
        rows = [(item_id, int(external[1:])) for item_id, external in cursor.fetchall()]
        with cursor.copy(
            "COPY annotation_annotation (item_id, annotator_id, label, cost, created_at, "
            "updated_at) FROM STDIN"
        ) as copy:
            for item_id, i in rows:
                copy.write_row((item_id, user.pk, names[truth[i]], one, now, now))
        with cursor.copy(
            "COPY annotation_assignment (item_id, user_id, status, created_at, expires_at) "
            "FROM STDIN"
        ) as copy:
            for item_id, _ in rows:
                copy.write_row((item_id, user.pk, "submitted", now, now + timedelta(minutes=10)))
        for table in ("annotation_item", "annotation_annotation", "annotation_assignment"):
            cursor.execute(f"VACUUM ANALYZE {table}")
    return project.pk


def reset(project_id: int) -> None:
    """Back to the state before any round: nothing queued, nothing reserved, no rounds."""
    from django.db import transaction

    from annotation.models import Item, Project, Round

    with transaction.atomic():
        Project.objects.select_for_update().get(pk=project_id)
        Item.objects.filter(project_id=project_id, status=Item.Status.QUEUED).update(
            status=Item.Status.UNLABELED,
            queued_round=None,
            queue_rank=None,
            score=None,
            acquisition="",
            queued_at=None,
        )
        Round.objects.filter(project_id=project_id).delete()
        Project.objects.filter(pk=project_id).update(reserved=0, round=0)


def set_strategy(project_id: int, strategy: str) -> None:
    from annotation.models import Project

    Project.objects.filter(pk=project_id).update(acquisition=strategy)


# --- the worker and its memory ------------------------------------------------------------


def status_mb(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM of a process in MB ({} once it is gone)."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    out[line[:5]] = int(line.split()[1]) / 1024
    except OSError:
        return {}
    return out


def postgres_backends(database: str) -> list[int]:
    """PostgreSQL backends connected to `database` (their title names it)."""
    marker = f" {database} ".encode()
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                title = f.read()
        except OSError:
            continue
        if title.startswith(b"postgres: ") and marker in title:
            pids.append(int(entry))
    return pids


class ProcessWatch(threading.Thread):
    """Polls the worker's processes and the PostgreSQL backends serving the bench database
    every 0.2 s: the peak RSS (VmHWM) of each, and the CPU time each used since the watch
    started (all of it for a process that appeared later)."""

    def __init__(self, worker_pid: int, database: str):
        super().__init__(daemon=True)
        self.worker_pid, self.database = worker_pid, database
        self.stop = threading.Event()
        self.peak: dict[tuple[str, int], float] = {}
        self.ticks: dict[tuple[str, int], list[int]] = {}  # [at the start, latest]
        self.sample(baseline=True)

    def sample(self, baseline: bool = False) -> None:
        pool = children(self.worker_pid)
        pids = [("worker main", self.worker_pid)] + [("pool process", p) for p in pool]
        pids += [("postgres backend", p) for p in postgres_backends(self.database)]
        for kind, pid in pids:
            hwm, ticks = status_mb(pid).get("VmHWM"), cpu_ticks(pid)
            if hwm is None or ticks < 0:
                continue
            self.peak[kind, pid] = max(self.peak.get((kind, pid), 0.0), hwm)
            self.ticks.setdefault((kind, pid), [ticks if baseline else 0, ticks])[1] = ticks

    def run(self):
        while not self.stop.is_set():
            self.sample()
            time.sleep(0.2)

    def finish(self) -> tuple[dict[tuple[str, int], float], dict[str, float]]:
        """(peak RSS MB per (kind, pid), CPU seconds per kind)."""
        self.stop.set()
        self.join(timeout=5)
        self.sample()  # the last word, while the worker still runs
        cpu: dict[str, float] = {}
        hz = os.sysconf("SC_CLK_TCK")
        for (kind, _), (first, last) in self.ticks.items():
            cpu[kind] = cpu.get(kind, 0.0) + (last - first) / hz
        return self.peak, cpu


def warm(pid: int, quiet: float = 1.0) -> bool:
    """Whether a pool process has loaded PyTorch and used no CPU for `quiet` seconds."""
    try:
        with open(f"/proc/{pid}/maps") as f:
            if "libtorch_cpu" not in f.read():
                return False
    except OSError:
        return False
    before = cpu_ticks(pid)
    time.sleep(quiet)
    return before == cpu_ticks(pid) >= 0


def other_workers() -> list[str]:
    """Workers answering on the bench broker: any would take this bench's tasks."""
    from config.celery import app

    return sorted(name for reply in app.control.ping(timeout=1.0) for name in reply)


def start_worker(concurrency: int, log_path: Path) -> subprocess.Popen:
    """`celery -A config worker --concurrency N`, ready (every pool process warmed up).

    Refuses to start beside another worker on the bench broker (a leftover would score
    shards too and skew every figure); stops its worker if it cannot bring it up.
    """
    from config.celery import app

    others = other_workers()
    if others:
        raise RuntimeError(f"other workers answer on {BENCH_BROKER}: {others}; stop them first")
    name = f"bench-round-{os.getpid()}-{concurrency}@%h"
    log = open(log_path, "w")  # noqa: SIM115 (closed with the process)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            f"--concurrency={concurrency}",
            "--loglevel=INFO",
            "--without-mingle",
            "--without-gossip",
            "-n",
            name,
        ],
        cwd=ROOT,
        env={**os.environ, **ENV},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    proc.log = log  # type: ignore[attr-defined]
    try:
        deadline = time.monotonic() + 120
        short = name.split("@")[0] + "@"
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"the worker exited with {proc.returncode}; see {log_path}")
            try:
                replies = app.control.ping(timeout=1.0)
            except Exception as exc:  # Redis restarted under us (kombu raises several kinds)
                raise BrokerLost(f"Redis went away while the worker started: {exc}") from exc
            # Ready: it answers, and each pool process has warmed PyTorch up
            # (config/celery.py) and gone idle; the main process answers pings before that.
            if any(short in key for reply in replies for key in reply):
                pool = children(proc.pid)
                if len(pool) >= concurrency and all(warm(pid) for pid in pool):
                    return proc
        raise RuntimeError("the worker did not answer within 120 s")
    except BaseException:
        stop_worker(proc)
        raise


def stop_worker(proc: subprocess.Popen) -> None:
    """Warm shutdown of the worker's whole session (its own process group); whatever of
    it is left after 30 s, or after its main process exited, is killed."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        except ProcessLookupError:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # pool processes that outlived the main one
    except ProcessLookupError:
        pass
    proc.log.close()  # type: ignore[attr-defined]


def task_seconds(log_path: Path) -> dict[str, list[float]]:
    """Each task's run time as the worker logged it ('succeeded in Xs')."""
    out: dict[str, list[float]] = {}
    for match in TASK_LINE.finditer(log_path.read_text(errors="replace")):
        out.setdefault(match[1], []).append(float(match[2]))
    return out


# --- one round ------------------------------------------------------------------------------


SPIN = """
import time, torch
torch.set_num_threads(1)
x, w = torch.randn(50000, 256), torch.randn(256, 64)
start = time.perf_counter()
for _ in range(60):
    torch.relu(x @ w)
print(time.perf_counter() - start)
"""


def machine_parallelism() -> float:
    """How much more work 2 processes get done than 1 on this machine, from a fixed
    one-thread PyTorch loop (a shard's kind of work) run alone and then twice at once:
    the ceiling of the 1 -> 2 worker speed-up. 2.0 on two free cores."""

    def spin(n: int) -> list[float]:
        procs = [
            subprocess.Popen([sys.executable, "-c", SPIN], stdout=subprocess.PIPE, text=True)
            for _ in range(n)
        ]
        return [float(p.communicate(timeout=300)[0]) for p in procs]

    alone = min(spin(1)[0], spin(1)[0])
    together = max(spin(2))
    return 2 * alone / together


class BrokerLost(RuntimeError):
    """Redis restarted under the round (the fault tests restart it): its messages are gone."""


def run_round(project_id: int, strategy: str, workers: int, timeout: float) -> dict:
    from django.db import connections

    from annotation.models import Round, RoundShard
    from annotation.services.rounds import round_maybe_start

    reset(project_id)
    set_strategy(project_id, strategy)
    purge_broker(BENCH_BROKER)
    connections.close_all()
    log_path = ROOT / "var" / f"bench-round-celery-worker-{strategy}-{workers}.log"
    log_path.parent.mkdir(exist_ok=True)
    proc = start_worker(workers, log_path)
    idle = {pid: status_mb(pid).get("VmHWM", 0.0) for pid in [proc.pid, *children(proc.pid)]}
    watch = None
    try:
        watch = ProcessWatch(proc.pid, db_name())
        watch.start()
        # One clock for the bench's observations and the database's timestamps (set by
        # timezone.now() in the worker processes on this same machine): time.time().
        started = time.time()
        rnd = round_maybe_start(project_id=project_id)
        if rnd is None:
            raise RuntimeError("round_maybe_start started no round")
        enqueued = time.time()  # round_run_task is sent on commit, before the return
        dispatched = None
        polls = 0
        while time.time() - started < timeout:
            row = Round.objects.values("status", "shard_count").get(pk=rnd.pk)
            if dispatched is None and row["shard_count"]:
                dispatched = time.time()
            if row["status"] != Round.Status.RUNNING:
                break
            polls += 1
            if polls % 50 == 0 and "Connection to broker lost" in log_path.read_text():
                raise BrokerLost(f"Redis went away during the round; see {log_path}")
            time.sleep(0.02)
        wall = time.time() - started
        peak, cpu = watch.finish()
    finally:
        if watch is not None:
            watch.stop.set()
        stop_worker(proc)
    rnd = Round.objects.get(pk=rnd.pk)
    if rnd.status != Round.Status.DONE:
        raise RuntimeError(f"round {rnd.status} after {wall:.0f} s: {rnd.error or 'timed out'}")
    shards = list(RoundShard.objects.filter(round=rnd).values_list("done_at", "scored"))
    if not shards or dispatched is None:
        raise RuntimeError(f"round {rnd.pk} finished without scoring shards (a cold start?)")
    scored = max(done for done, _ in shards).timestamp()
    tasks = task_seconds(log_path)
    return {
        "strategy": strategy,
        "workers": workers,
        "wall": wall,
        "start": enqueued - started,
        "train": dispatched - enqueued,
        "score": scored - dispatched,
        "reduce": rnd.finished_at.timestamp() - scored,
        "round": rnd,
        "shards": len(shards),
        "scored": sum(n for _, n in shards),
        "tasks": tasks,
        "peak": peak,
        "cpu": cpu,
        "idle": idle,
        "worker_pid": proc.pid,
        "checks": check(project_id, rnd),
    }


def check(project_id: int, rnd) -> dict:
    """The round's result as the database has it."""
    from django.db.models import Sum

    from annotation.models import Annotation, Item, Project

    project = Project.objects.get(pk=project_id)
    queued = list(
        Item.objects.filter(project_id=project_id, status=Item.Status.QUEUED)
        .order_by("queue_rank")
        .values_list("id", "queued_round", "cost")
    )
    ids = [q[0] for q in queued]
    queued_cost = sum((q[2] for q in queued), start=0)
    labeled_cost = Annotation.objects.filter(item__project_id=project_id).aggregate(s=Sum("cost"))[
        "s"
    ]
    expected = min(project.batch_size, int(project.budget - project.spent))
    return {
        "queued": len(ids),
        "expected": expected,
        "distinct": len(set(ids)),
        "all_this_round": all(q[1] == rnd.number for q in queued),
        "reserved_matches": project.reserved == queued_cost == rnd.queued_cost,
        "spent_matches": project.spent == labeled_cost,
        "within_budget": project.spent + project.reserved <= project.budget,
        "budget": (project.budget, project.spent, project.reserved),
        "ids": ids,
    }


# --- the report ---------------------------------------------------------------------------


def checks_ok(c: dict) -> bool:
    return (
        c["queued"] == c["expected"] == c["distinct"]
        and c["all_this_round"]
        and c["reserved_matches"]
        and c["spent_matches"]
        and c["within_budget"]
    )


def peaks(result: dict) -> tuple[float, list[float], float]:
    """(worker main, [pool processes], highest PostgreSQL backend) peak RSS in MB."""
    by_kind: dict[str, list[float]] = {}
    for (kind, _), mb in sorted(result["peak"].items()):
        by_kind.setdefault(kind, []).append(mb)
    return (
        max(by_kind.get("worker main", [0.0])),
        by_kind.get("pool process", []),
        max(by_kind.get("postgres backend", [0.0])),
    )


def report(results: list[dict], ceiling: list[float]) -> bool:
    print(
        f"{'strategy':13}{'W':>2}{'total':>8}{'start':>7}{'train':>7}{'score':>7}"
        f"{'reduce+q':>9}  {'peak RSS MB: worker main / pool processes / postgres':<52}"
        f"{'queued':>7}  checks"
    )
    for r in results:
        main, pool, pg = peaks(r)
        c = r["checks"]
        pool_mb = " ".join(f"{mb:.0f}" for mb in pool)
        print(
            f"{r['strategy']:13}{r['workers']:>2}{r['wall']:>7.1f}s{r['start']:>6.1f}s"
            f"{r['train']:>6.1f}s{r['score']:>6.1f}s{r['reduce']:>8.1f}s  "
            f"{f'{main:.0f} / {pool_mb} / {pg:.0f}':<52}"
            f"{c['queued']:>7}  {'ok' if checks_ok(c) else 'FAILED'}"
        )
    print()
    for r in results:
        t = r["tasks"]
        shard = t.get("round_score_shard_task", [])
        rnd = r["round"]
        print(
            f"{r['strategy']} W={r['workers']}: {r['shards']} shards, {r['scored']:,} items "
            f"scored (pool {rnd.pool_size:,}), accuracy (OOB) {rnd.accuracy:.3f}; task run "
            f"times: round_run {sum(t.get('round_run_task', [0])):.1f} s, shards "
            f"{sum(shard):.1f} s in all (max {max(shard, default=0):.2f} s), reduce "
            f"{sum(t.get('round_reduce_task', [0])):.1f} s; pool processes idle/warm RSS "
            f"{' '.join(f'{mb:.0f}' for pid, mb in r['idle'].items() if pid != r['worker_pid'])}"
            f" MB"
        )
        cpu = r["cpu"]
        busy = sum(cpu.values())
        print(
            f"    CPU time during the round: pool processes {cpu.get('pool process', 0):.1f} s, "
            f"worker main {cpu.get('worker main', 0):.1f} s, PostgreSQL backends "
            f"{cpu.get('postgres backend', 0):.1f} s; {busy:.1f} s in {r['wall']:.1f} s of wall "
            f"= {busy / r['wall']:.2f} cores busy"
        )
        c = r["checks"]
        budget, spent, reserved = c["budget"]
        if not checks_ok(c):
            print(f"    FAILED checks: { ({k: v for k, v in c.items() if k != 'ids'}) }")
        else:
            print(
                f"    {c['queued']} queued (expected {c['expected']}), all distinct, all of "
                f"this round; spent {spent} + reserved {reserved} <= budget {budget}"
            )
    ok = all(checks_ok(r["checks"]) for r in results)
    by = {(r["strategy"], r["workers"]): r for r in results}
    print()
    for strategy in dict.fromkeys(r["strategy"] for r in results):
        one, two = by.get((strategy, 1)), by.get((strategy, 2))
        if one and two:
            same = one["checks"]["ids"] == two["checks"]["ids"]
            ok = ok and same
            print(
                f"{strategy}: speed-up 1 -> 2 workers: round {one['wall'] / two['wall']:.2f}x, "
                f"scoring {one['score'] / two['score']:.2f}x (this machine's ceiling "
                f"{min(ceiling):.2f}-{max(ceiling):.2f}x); same {len(two['checks']['ids'])} "
                f"items in the same order: {same}"
            )
    for r in results:
        if r["workers"] != 2:
            continue
        main, pool, pg = peaks(r)
        highest = max([main, *pool, pg])
        print(
            f"goal {r['strategy']}, 2 workers: round {r['wall']:.1f} s < {GOAL_SECONDS:.0f} s "
            f"{'ok' if r['wall'] < GOAL_SECONDS else 'MISSED'}; peak RSS of any process "
            f"{highest:.0f} MB < {GOAL_RSS_MB:.0f} MB "
            f"{'ok' if highest < GOAL_RSS_MB else 'MISSED'}"
        )
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--labels", type=int, default=5000)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--batch", type=int, default=100, help="items a round selects")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--strategies", default="margin,vote_entropy")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per round")
    parser.add_argument(
        "--reuse", action="store_true", help="keep the database of a previous run of these sizes"
    )
    args = parser.parse_args()
    if not shutil.which("createdb"):
        print("bench_round_celery: PostgreSQL client tools (createdb) are needed", file=sys.stderr)
        return 2

    t0 = time.monotonic()
    project_id = existing_project(args) if args.reuse else None
    if project_id is None:
        fresh_database(BENCH_DB)
        project_id = build_project(args)
    from django.conf import settings
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_total_relation_size('annotation_item')")
        table_bytes = cursor.fetchone()[0]
    print(
        f"setup: {args.n:,} items x {args.dim} float32 features ({args.classes} clusters), "
        f"{args.labels:,} labeled, budget for {args.batch} more, in "
        f"{time.monotonic() - t0:.0f} s; annotation_item {table_bytes / 1e9:.2f} GB; "
        f"ANNOTATION_SHARD_SIZE {settings.ANNOTATION_SHARD_SIZE:,}; PostgreSQL, Redis broker, "
        f"celery prefork; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}"
    )
    ceiling: list[float] = []
    results = []
    try:
        for strategy in args.strategies.split(","):
            ceiling.append(machine_parallelism())
            print(
                f"  machine: 2 processes do {ceiling[-1]:.2f}x the work of 1 (a one-thread "
                f"PyTorch loop alone, then twice at once): the 1 -> 2 worker ceiling",
                flush=True,
            )
            for workers in [int(w) for w in args.workers.split(",")]:
                for attempt in range(1, 4):
                    try:
                        results.append(run_round(project_id, strategy, workers, args.timeout))
                        break
                    except BrokerLost as exc:
                        print(f"  {strategy} W={workers}: {exc}; run again ({attempt}/3)")
                else:
                    raise RuntimeError("Redis kept going away: no result")
                r = results[-1]
                print(
                    f"  {strategy} W={workers}: {r['wall']:.1f} s "
                    f"(load average {os.getloadavg()[0]:.2f})",
                    flush=True,
                )
    finally:
        purge_broker(BENCH_BROKER)
    ceiling.append(machine_parallelism())
    print(f"  machine, after the rounds: 2 processes do {ceiling[-1]:.2f}x the work of 1")
    print()
    ok = report(results, ceiling)
    print(f"total bench time {time.monotonic() - t0:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
