"""A full acquisition round at scale, with the sampler's own building blocks.

Pool: --n items (default 1,000,000) of --dim features (256) on disk as a float32 memmap;
--labels labeled rows (5,000) of --classes classes (10). The round trains the ensemble,
scores the pool in shards with W worker processes (each opens the memmap and reads only its
shard's rows, like a Celery shard task reads only its rows from the database), merges the
shards' candidates and selects --select items (100) with batch diversity. Runs W=1 and W=2
and prints the wall time of each phase, the peak RSS of every process and the speed-up.
"""

import argparse
import os
import resource
import time
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from sampler.acquisition import SCORE_FLOOR
from sampler.ensemble import MLPEnsemble
from sampler.pool import merge_candidates, score_shard, shard_candidates, split_shards
from sampler.selection import select_under_budget

DIVERSITY_POOL = 5


def make_pool(path: Path, n: int, dim: int, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Clustered synthetic features (class = cluster), written once and reused."""
    labels_path = path.with_suffix(".labels.npy")
    if not path.exists() or not labels_path.exists():
        rng = np.random.default_rng(0)
        centers = rng.normal(size=(classes, dim)).astype(np.float32) * 0.5
        pool = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, dim))
        labels = rng.integers(0, classes, size=n)
        for start in range(0, n, 100_000):
            stop = min(n, start + 100_000)
            noise = rng.standard_normal((stop - start, dim), dtype=np.float32)
            pool[start:stop] = centers[labels[start:stop]] + noise
        pool.flush()
        np.save(labels_path, labels)
    return np.load(path, mmap_mode="r"), np.load(labels_path)


def _score(job) -> tuple[list, float]:
    path, model_bytes, strategy, start, stop, k = job
    import torch

    torch.set_num_threads(1)
    pool = np.load(path, mmap_mode="r")
    X = np.asarray(pool[start:stop])  # only this shard's rows are read
    model = MLPEnsemble.from_bytes(model_bytes)
    ids = np.arange(start, stop)
    scores = score_shard(model, X, strategy, ids=ids)
    candidates = shard_candidates(
        ids, scores, np.ones(len(ids)), k, score_floor=SCORE_FLOOR.get(strategy, 0.0)
    )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return candidates, peak_mb


def run_round(args, pool, labels, workers: int) -> dict:
    import torch

    torch.set_num_threads(1)
    rng = np.random.default_rng(1)
    labeled = rng.choice(len(pool), args.labels, replace=False)
    times = {}
    start = time.perf_counter()
    X_l = np.asarray(pool[np.sort(labeled)])
    y_l = labels[np.sort(labeled)]
    model = MLPEnsemble(n_members=args.members).fit(X_l, y_l, args.classes)
    times["train"] = time.perf_counter() - start
    start = time.perf_counter()
    k = args.select * DIVERSITY_POOL
    jobs = [
        (str(args.pool), model.to_bytes(), args.strategy, lo, hi, k)
        for lo, hi in split_shards(len(pool), args.shard)
    ]
    with get_context("spawn").Pool(workers) as processes:
        results = processes.map(_score, jobs, chunksize=1)
    times["score"] = time.perf_counter() - start
    start = time.perf_counter()
    merged = merge_candidates(
        (c for c, _ in results), k, score_floor=SCORE_FLOOR.get(args.strategy, 0.0)
    )
    ids = np.asarray([c[0] for c in merged])
    picks = select_under_budget(
        np.asarray([c[1] for c in merged]),
        np.ones(len(ids)),
        remaining=float(args.select),
        batch_size=args.select,
        features=np.asarray(pool[np.sort(ids)])[np.argsort(np.argsort(ids))],
    )
    times["select"] = time.perf_counter() - start
    times["total"] = sum(times.values())
    return {
        "times": times,
        "selected": len(picks),
        "shards": len(jobs),
        "worker_peak_mb": max(mb for _, mb in results),
        "main_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--labels", type=int, default=5000)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--select", type=int, default=100)
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--shard", type=int, default=50_000)
    parser.add_argument("--strategy", default="vote_entropy")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--pool", type=Path, default=None)
    args = parser.parse_args()
    args.pool = args.pool or Path(os.environ.get("TMPDIR", "/tmp")) / (
        f"annotation-bench-pool-{args.n}x{args.dim}.npy"
    )
    started = time.perf_counter()
    pool, labels = make_pool(args.pool, args.n, args.dim, args.classes)
    print(
        f"pool {args.n:,} x {args.dim} float32 ({pool.nbytes / 1e9:.2f} GB on disk, ready in "
        f"{time.perf_counter() - started:.1f} s); {args.labels:,} labels, {args.classes} "
        f"classes; {args.members} members; {args.strategy}; select {args.select}; "
        f"shards of {args.shard:,}"
    )
    results = {}
    for workers in [int(w) for w in args.workers.split(",")]:
        result = run_round(args, pool, labels, workers)
        results[workers] = result
        t = result["times"]
        verdict = "PASS" if t["total"] < 60 and result["worker_peak_mb"] < 3000 else "FAIL"
        print(
            f"W={workers}: train {t['train']:.1f} s, score {result['shards']} shards "
            f"{t['score']:.1f} s, merge+select {t['select']:.2f} s, total {t['total']:.1f} s; "
            f"selected {result['selected']}; peak RSS main {result['main_peak_mb']:.0f} MB, "
            f"worker {result['worker_peak_mb']:.0f} MB  (goal < 60 s, < 3 GB: {verdict})"
        )
    if 1 in results and 2 in results:
        one, two = results[1]["times"], results[2]["times"]
        print(
            f"speed-up 1 -> 2 workers: scoring {one['score'] / two['score']:.2f}x, "
            f"whole round {one['total'] / two['total']:.2f}x"
        )


if __name__ == "__main__":
    main()
