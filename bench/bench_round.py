"""A full acquisition round at scale, with the sampler's own building blocks.

Pool: --n items (default 1,000,000) of --dim features (256), a float32 .npy file in /tmp
(written once, reused; class = cluster, so there is something to learn); --labels labeled
rows (5,000) of --classes classes (10). A round: train the MLPEnsemble on the labeled rows
(main process, one thread); score the pool in shards in a multiprocessing Pool (spawn) of W
workers, one torch thread each, where each worker opens the file as a memmap and reads only
its shard's rows, as a Celery shard task reads only its rows from the database; merge the
shards' candidates; select --select items with batch diversity. Runs each W of --workers
(1 and 2) and prints the wall time per phase, the peak RSS of every process
(resource.getrusage) and the 1 -> 2 worker speed-up.

    python -m bench.bench_round [--n 1000000] [--dim 256] [--labels 5000] [--workers 1,2]
"""

import argparse
import os
import resource
import time
from multiprocessing import get_context
from pathlib import Path

import numpy as np

DIVERSITY_POOL = 5  # candidates kept per shard, in batches, as annotation.services.rounds

_worker: dict = {}  # per worker process: the model, loaded once by the initializer


def peak_rss_mb() -> tuple[float, float]:
    """(VmHWM, ru_maxrss) in MB. VmHWM is the peak resident set of this process's own
    memory since it started. getrusage's ru_maxrss is the same for the main process, but a
    spawned worker's starts at its parent's peak: Linux carries the pre-exec memory's
    high-water mark over an exec, and spawn forks (a copy of the parent) then execs."""
    hwm = 0.0
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) / 1024
    return hwm, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KB


def read_rows(path: Path, rows: np.ndarray) -> np.ndarray:
    """Rows (sorted indices) of the .npy pool, read with pread: touching scattered rows
    through a memmap would map the kernel's readahead around each one as well."""
    header = np.load(path, mmap_mode="r")
    dim, offset = header.shape[1], header.offset
    row_bytes = dim * 4
    out = np.empty((len(rows), dim), dtype=np.float32)
    fd = os.open(path, os.O_RDONLY)
    try:
        for i, row in enumerate(rows):
            out[i] = np.frombuffer(
                os.pread(fd, row_bytes, offset + int(row) * row_bytes), np.float32
            )
    finally:
        os.close(fd)
    return out


def make_pool(path: Path, n: int, dim: int, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """The pool as a read-only memmap (N, dim) float32 and its true labels (N,), written
    in blocks of 100,000 rows (bounded memory) the first time. main() writes it in a child
    process: written pages of a memmap count in the writer's resident set."""
    labels_path = path.with_suffix(".labels.npy")
    if not (path.exists() and labels_path.exists()):
        rng = np.random.default_rng(0)
        centers = rng.normal(size=(classes, dim)).astype(np.float32) * 0.35
        labels = rng.integers(0, classes, size=n)
        pool = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, dim))
        for start in range(0, n, 100_000):
            stop = min(n, start + 100_000)
            noise = rng.standard_normal((stop - start, dim), dtype=np.float32)
            pool[start:stop] = centers[labels[start:stop]] + noise
        pool.flush()
        del pool
        np.save(labels_path, labels)
    return np.load(path, mmap_mode="r"), np.load(labels_path)


def _write_pool(path: Path, n: int, dim: int, classes: int) -> None:
    make_pool(path, n, dim, classes)  # returns nothing: the arrays would be pickled back


def _start_worker(model_bytes: bytes) -> None:
    """Load the model once and warm up (imports, first kernels), as the Celery workers do
    at process start, so that the scoring phase measures scoring."""
    import torch

    from sampler.acquisition import ACQUISITIONS
    from sampler.ensemble import MLPEnsemble

    torch.set_num_threads(1)
    model = _worker["model"] = MLPEnsemble.from_bytes(model_bytes)
    probs = model.predict_proba(np.zeros((100, model.n_features_), dtype=np.float32))
    for name in ("vote_entropy", "bald", "margin"):
        ACQUISITIONS[name](probs)


def _ready(_: int) -> tuple[int, tuple[float, float]]:
    return os.getpid(), peak_rss_mb()


def _score_shard(job: tuple) -> tuple[list, int, tuple[float, float]]:
    """One shard: read its rows from the memmap, score, keep the best k candidates."""
    from sampler.acquisition import score_floor
    from sampler.pool import score_shard, shard_candidates

    path, strategy, start, stop, k, labeled_path = job
    header = np.load(path, mmap_mode="r")
    dim = header.shape[1]
    # A memmap of this shard's rows only: score_shard reads it chunk by chunk.
    X = np.memmap(
        path, np.float32, "r", offset=header.offset + start * dim * 4, shape=(stop - start, dim)
    )
    extra = {"labeled_X": np.load(labeled_path)} if strategy == "cal" else {}
    ids = np.arange(start, stop)
    scores = score_shard(_worker["model"], X, strategy, ids=ids, random_state=1, **extra)
    costs = np.ones(len(ids))
    candidates = shard_candidates(ids, scores, costs, k, score_floor=score_floor(strategy))
    return candidates, os.getpid(), peak_rss_mb()


def run_round(args, pool: np.ndarray, labels: np.ndarray, workers: int) -> dict:
    import torch

    from sampler.acquisition import score_floor
    from sampler.ensemble import MLPEnsemble
    from sampler.pool import merge_candidates, split_shards
    from sampler.selection import select_under_budget

    torch.set_num_threads(1)
    times: dict[str, float] = {}
    started = time.perf_counter()
    labeled = np.sort(np.random.default_rng(1).choice(len(pool), args.labels, replace=False))
    X_l, y_l = read_rows(args.pool, labeled), labels[labeled]
    model = MLPEnsemble(n_members=args.members, random_state=1).fit(X_l, y_l, args.classes)
    model_bytes = model.to_bytes()
    labeled_path = args.pool.with_suffix(".labeled.npy")
    np.save(labeled_path, X_l)
    times["train"] = time.perf_counter() - started

    k = args.select * DIVERSITY_POOL
    shards = split_shards(len(pool), args.shard)
    jobs = [(str(args.pool), args.strategy, lo, hi, k, str(labeled_path)) for lo, hi in shards]
    rss: dict[int, tuple[float, float]] = {}
    started = time.perf_counter()
    with get_context("spawn").Pool(workers, _start_worker, (model_bytes,)) as processes:
        for pid, mb in processes.map(_ready, range(workers), chunksize=1):
            rss[pid] = mb
        times["start workers"] = time.perf_counter() - started
        started = time.perf_counter()
        results = processes.map(_score_shard, jobs, chunksize=1)
        times["score"] = time.perf_counter() - started
    for _, pid, mb in results:
        rss[pid] = max(rss.get(pid, (0.0, 0.0)), mb)

    started = time.perf_counter()
    floor = score_floor(args.strategy)
    merged = merge_candidates((c for c, _, _ in results), k, score_floor=floor)
    times["merge"] = time.perf_counter() - started
    started = time.perf_counter()
    ids = np.asarray([c[0] for c in merged], dtype=np.int64)
    order = np.argsort(ids)
    features = np.empty((len(ids), pool.shape[1]), dtype=np.float32)
    features[order] = read_rows(args.pool, ids[order])
    picks = select_under_budget(
        np.asarray([c[1] for c in merged]),
        np.asarray([c[2] for c in merged]),
        remaining=float(args.select),
        batch_size=args.select,
        features=features,
        score_floor=floor,
    )
    times["select"] = time.perf_counter() - started
    return {
        "times": times,
        "shards": len(shards),
        "selected": len(picks),
        "worker_rss": rss,
        "main_rss": peak_rss_mb(),
        "picked_ids": ids[picks],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--labels", type=int, default=5000)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--select", type=int, default=100)
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--shard", type=int, default=62_500, help="rows per shard")
    parser.add_argument("--strategy", default="vote_entropy")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--pool", type=Path, default=None, help="pool file (default in /tmp)")
    args = parser.parse_args()
    args.pool = args.pool or Path("/tmp") / f"sampler-bench-pool-{args.n}x{args.dim}.npy"
    started = time.perf_counter()
    with get_context("spawn").Pool(1) as writer:  # so writing it does not count in our RSS
        writer.apply(_write_pool, (args.pool, args.n, args.dim, args.classes))
    pool, labels = make_pool(args.pool, args.n, args.dim, args.classes)
    print(
        f"pool {args.n:,} x {args.dim} float32, {pool.nbytes / 1e9:.2f} GB memmap at "
        f"{args.pool} (ready in {time.perf_counter() - started:.1f} s); {args.labels:,} labels, "
        f"{args.classes} classes; {args.members} members; strategy {args.strategy}; "
        f"{args.shard:,} rows per shard; select {args.select}; {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    results = {}
    for workers in [int(w) for w in args.workers.split(",")]:
        result = results[workers] = run_round(args, pool, labels, workers)
        t = result["times"]
        total = sum(t.values())
        phases = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in t.items())
        hwm = ", ".join(f"{mb[0]:.0f}" for mb in result["worker_rss"].values())
        maxrss = ", ".join(f"{mb[1]:.0f}" for mb in result["worker_rss"].values())
        main_hwm, main_maxrss = result["main_rss"]
        print(f"W={workers}: {phases}; total {total:.2f} s")
        print(
            f"     {result['shards']} shards, {result['selected']} selected; peak RSS (VmHWM): "
            f"main {main_hwm:.0f} MB, workers {hwm} MB; getrusage ru_maxrss: main "
            f"{main_maxrss:.0f} MB, workers {maxrss} MB (inherits the parent's peak)"
        )
    if 1 in results and 2 in results:
        one, two = results[1]["times"], results[2]["times"]
        same = np.array_equal(results[1]["picked_ids"], results[2]["picked_ids"])
        print(
            f"speed-up 1 -> 2 workers: scoring {one['score'] / two['score']:.2f}x, whole round "
            f"{sum(one.values()) / sum(two.values()):.2f}x; same selection: {same}"
        )


if __name__ == "__main__":
    main()
