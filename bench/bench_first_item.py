"""Time to first item: from an import of 10,000 texts to the first item an annotator gets.

The production path: a featurize worker and a rounds worker (`celery -A config worker -Q`,
one process each, as bin/run starts them) on Redis db 11 and the bench's own PostgreSQL
database (annotation_bench_first: dropped, created and migrated by each run). The texts are
the first 10,000 of docs/data's text sets. This process imports them through the import
service (which enqueues featurizing after its commit), then asks for an item every 50 ms
(annotation.services.labeling.item_next_for, what `POST next` runs) until it gets one.

Each featurizer (minilm, hashed) runs twice: with the first rows featurized in a task of
their own (ANNOTATION_FEATURIZE_FIRST_BATCH, the default 100) and, as the baseline, with
that turned off (0: the first round waits for a whole featurizing slice, up to 120 s).
Goal (issue 11): the first item within 3 s of the import.

    python -m bench.bench_first_item [--n 10000] [--featurizers minilm,hashed]
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from bench.common import children, cpu_ticks, fresh_database, purge_broker

ROOT = Path(__file__).resolve().parents[1]
BENCH_DB = os.environ.get(
    "BENCH_FIRST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/annotation_bench_first"
)
BENCH_BROKER = os.environ.get("BENCH_FIRST_BROKER_URL", "redis://127.0.0.1:6379/11")
QUEUE = f"bench-first-{os.getpid()}"
ENV = {
    "DJANGO_SETTINGS_MODULE": "config.settings",
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": "bench-only-secret-key-not-for-production-0123456789abcdef",
    "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
    "DJANGO_LOG_LEVEL": "WARNING",
    "DATABASE_URL": BENCH_DB,
    "CELERY_BROKER_URL": BENCH_BROKER,
    "CELERY_TASK_DEFAULT_QUEUE": QUEUE,
    "ANNOTATION_FEATURIZE_QUEUE": f"{QUEUE}-featurize",
}
os.environ.update(ENV)  # before Django is imported

GOAL_SECONDS = 3.0
TEXT_SETS = ("stackoverflow20", "movie_sentiment", "banking77", "clinc150", "hwu64")
TIMEOUT_SECONDS = 300.0


def texts(n: int) -> list[str]:
    out: list[str] = []
    for name in TEXT_SETS:
        with open(ROOT / "docs" / "data" / f"{name}.jsonl", encoding="utf-8") as f:
            out += [json.loads(line)["text"] for line in f]
        if len(out) >= n:
            break
    if len(out) < n:
        raise SystemExit(f"docs/data holds {len(out)} texts, fewer than --n {n}")
    return out[:n]


def start_worker(queue: str, first_batch: int, log_path: Path, warm: bool) -> subprocess.Popen:
    log = open(log_path, "w")  # noqa: SIM115 (closed with the process)
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queue]
        + ["--concurrency=1", "--loglevel=INFO", "--without-mingle", "--without-gossip"]
        + ["-n", f"{queue}-{uuid.uuid4().hex[:6]}@%h"],
        cwd=ROOT,
        env={
            **os.environ,
            "ANNOTATION_FEATURIZE_FIRST_BATCH": str(first_batch),
            "ANNOTATION_WARM_FEATURIZERS": "1" if warm else "0",  # as bin/run starts them
        },
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    proc.log = log  # type: ignore[attr-defined]
    return proc


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    proc.log.close()  # type: ignore[attr-defined]


def wait_ready(names: list[str], workers: list[subprocess.Popen], timeout: float = 180.0):
    """Every worker answers a ping, and its pool process has done its warm-up
    (config/celery.py) and used no CPU for a second."""
    from config.celery import app

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        replies = app.control.ping(timeout=1.0)
        answered = {key for reply in replies for key in reply}
        if all(any(key.startswith(name) for key in answered) for name in names):
            pools = [p for proc in workers for p in children(proc.pid)]
            before = [cpu_ticks(p) for p in pools]
            time.sleep(1.0)
            if len(pools) == len(workers) and before == [cpu_ticks(p) for p in pools]:
                return
    raise RuntimeError(f"workers {names} were not ready within {timeout} s")


def one_run(featurizer: str, first_batch: int, rows: list[str]) -> dict:
    from django.contrib.auth import get_user_model

    from annotation.models import Membership, Project
    from annotation.services.imports import items_import
    from annotation.services.labeling import item_next_for

    user, _ = get_user_model().objects.get_or_create(username="bench-annotator")
    project = Project.objects.create(
        name=f"first item {featurizer} {first_batch}",
        labels=["a", "b", "c"],
        budget=500,
        batch_size=20,
        text_featurizer=featurizer,
        audit_share=0,
    )
    Membership.objects.create(project=project, user=user, role=Membership.Role.ANNOTATOR)
    started = time.monotonic()
    items_import(project=project, rows=[{"text": t} for t in rows])
    imported = time.monotonic()
    state = ""
    while time.monotonic() - started < TIMEOUT_SECONDS:
        item, state = item_next_for(project=project, user=user)
        if item is not None:
            break
        time.sleep(0.05)
    else:
        raise RuntimeError(f"no item within {TIMEOUT_SECONDS} s (last state {state!r})")
    first = time.monotonic()
    return {
        "featurizer": featurizer,
        "first_batch": first_batch,
        "import_s": round(imported - started, 2),
        "first_item_s": round(first - started, 2),
    }


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--featurizers", default="minilm,hashed")
    args = parser.parse_args(argv)

    fresh_database(BENCH_DB)
    rows = texts(args.n)
    results = []
    log_dir = ROOT / "var"
    log_dir.mkdir(exist_ok=True)
    for featurizer in args.featurizers.split(","):
        for first_batch in (100, 0):  # the default, then the baseline
            purge_broker(BENCH_BROKER)
            workers = [
                start_worker(
                    q,
                    first_batch,
                    log_dir / f"bench-first-{featurizer}-{first_batch}-{i}.log",
                    i == 1,
                )
                for i, q in enumerate((QUEUE, f"{QUEUE}-featurize"))
            ]
            try:
                wait_ready([QUEUE, f"{QUEUE}-featurize"], workers)
                result = one_run(featurizer, first_batch, rows)
            finally:
                for proc in workers:
                    stop(proc)
            results.append(result)
            print(
                f"{featurizer:>7}  first batch {first_batch:>4}:"
                f"  import {result['import_s']:6.2f} s"
                f"   first item {result['first_item_s']:6.2f} s after the import began,"
                f" {result['first_item_s'] - result['import_s']:6.2f} s after it was stored",
                flush=True,
            )
    purge_broker(BENCH_BROKER)
    for featurizer in args.featurizers.split(","):
        new, base = [r for r in results if r["featurizer"] == featurizer]
        verdict = "met" if new["first_item_s"] <= GOAL_SECONDS else "NOT met"
        print(
            f"{featurizer}: first item {new['first_item_s']:.2f} s vs {base['first_item_s']:.2f} s"
            f" featurizing everything first ({base['first_item_s'] / new['first_item_s']:.1f}x);"
            f" goal {GOAL_SECONDS:.0f} s {verdict}"
        )
    (log_dir / "bench_first_item.json").write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
