"""Import and export at scale: rows per second and peak memory.

On its own PostgreSQL database (annotation_bench_scale: dropped, created and migrated by
each run); nothing is sent to Celery (the featurize send is replaced by a no-op). Writes
N text items as JSONL, imports them with `manage.py import_items` (batches of 10,000 in
one transaction), labels them all in SQL, and exports them with `export_labels --format
jsonl` (streamed). Prints rows/s and the growth of the process's peak RSS over each step
(ru_maxrss), next to the goals of issue 11 (import > 20,000 rows/s, export > 50,000 rows/s,
memory flat in the file size).

    python -m bench.bench_scale [--rows 100000] [--batch 10000]
"""

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/annotation_bench_scale"
IMPORT_GOAL, EXPORT_GOAL = 20_000, 50_000


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--database-url", default=DEFAULT_URL)
    args = parser.parse_args()
    os.environ["DATABASE_URL"] = args.database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from bench.common import fresh_database

    fresh_database(args.database_url)
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection

    from annotation.models import Project
    from annotation.services import dispatch
    from annotation.services.projects import project_create

    dispatch.send_featurize = lambda project_id: True
    user = get_user_model().objects.create(username="bench")
    project = project_create(
        creator=user,
        budget=args.rows * 2,
        name="scale",
        labels=["a", "b"],
        text_featurizer="hashed",
    )
    with tempfile.TemporaryDirectory() as folder:
        source, sink = Path(folder) / "items.jsonl", Path(folder) / "labels.jsonl"
        with source.open("w") as out:
            for i in range(args.rows):
                row = {"text": f"item {i} " + "lorem ipsum dolor " * 5, "external_id": f"x{i}"}
                out.write(json.dumps(row) + "\n")
        base = peak_mib()
        start = time.perf_counter()
        call_command("import_items", str(project.pk), str(source), "--batch", str(args.batch))
        seconds = time.perf_counter() - start
        rate = args.rows / seconds
        print(
            f"import {args.rows} rows: {seconds:.1f} s, {rate:,.0f} rows/s "
            f"({rate / IMPORT_GOAL:.2f}x the {IMPORT_GOAL:,} goal); "
            f"peak RSS {peak_mib():.0f} MiB (+{peak_mib() - base:.0f} MiB over the import)"
        )
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO annotation_annotation (item_id, annotator_id, label, cost, "
                "created_at, updated_at) SELECT id, %s, 'a', cost, now(), now() "
                "FROM annotation_item WHERE project_id = %s",
                [user.pk, project.pk],
            )
            cursor.execute(
                "UPDATE annotation_item SET status = 'labeled' WHERE project_id = %s", [project.pk]
            )
        Project.objects.filter(pk=project.pk).update(kind="text")
        base = peak_mib()
        start = time.perf_counter()
        call_command("export_labels", str(project.pk), "--format", "jsonl", "--out", str(sink))
        seconds = time.perf_counter() - start
        lines = sum(1 for _ in sink.open())
        rate = lines / seconds
        print(
            f"export {lines} labeled rows as JSONL: {seconds:.1f} s, {rate:,.0f} rows/s "
            f"({rate / EXPORT_GOAL:.2f}x the {EXPORT_GOAL:,} goal); "
            f"peak RSS {peak_mib():.0f} MiB (+{peak_mib() - base:.0f} MiB over the export)"
        )


if __name__ == "__main__":
    main()
