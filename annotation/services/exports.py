"""Exports: the labeled items of a project as JSONL, CSV, JSON or Label Studio tasks,
streamed: records are read in chunks (annotation.selectors.items.labeled_records) and
written as they come, so memory stays flat whatever the project's size. Used by the API's
export view and the `export_labels` command."""

import csv
import io
import json
from collections.abc import Iterator
from datetime import datetime

from annotation.models import Project
from annotation.selectors.items import RawJSON, labeled_records
from annotation.services.formats import labelstudio_tasks

EXPORT_FORMATS = {
    "jsonl": "application/x-ndjson",
    "csv": "text/csv",
    "json": "application/json",
    "labelstudio": "application/json",
}
# The export's end: the labels given or changed up to this instant; the next incremental
# export passes it back as `since`.
CURSOR_HEADER = "X-Export-Cursor"
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# json.dumps(value, ensure_ascii=False) without building an encoder for each call.
_encode = json.JSONEncoder(ensure_ascii=False).encode
# Where a record's RawJSON meta goes: encoded, the mark is '"\u0000raw\u0000"', which no
# other value of the record can hold (a string would have to start with NUL, which
# PostgreSQL text cannot store).
_RAW_MARK = "\x00raw\x00"
_RAW_MARK_JSON = _encode(_RAW_MARK)


def _encode_record(record: dict) -> str:
    meta = record.get("meta")
    if type(meta) is not RawJSON:
        return _encode(record)
    record["meta"] = _RAW_MARK
    return _encode(record).replace(_RAW_MARK_JSON, meta, 1)


def csv_safe(value) -> str:
    """A cell a spreadsheet will not run as a formula (OWASP CSV injection)."""
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        value = _encode(value)
    if isinstance(value, (int, float)):
        return repr(value) if isinstance(value, float) else str(value)
    value = str(value)
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value


# Records per yielded chunk: a response or a file gets a few large writes, not one per
# record (the encoded chunk is held in memory: a few MB at most for large items).
LINES_PER_CHUNK = 500


def stream_jsonl(records: Iterator[dict]) -> Iterator[str]:
    lines: list[str] = []
    for record in records:
        lines.append(_encode_record(record))
        if len(lines) >= LINES_PER_CHUNK:
            yield "\n".join(lines) + "\n"
            lines = []
    if lines:
        yield "\n".join(lines) + "\n"


def stream_json(records: Iterator[dict]) -> Iterator[str]:
    parts = ["["]
    separator = "\n"
    for record in records:
        parts.append(separator + _encode_record(record))
        separator = ",\n"
        if len(parts) >= LINES_PER_CHUNK:
            yield "".join(parts)
            parts = []
    parts.append("\n]\n")
    yield "".join(parts)


def stream_csv(records: Iterator[dict], content: str) -> Iterator[str]:
    columns = [
        "id",
        "external_id",
        content,
        "meta",
        "label",
        "out_of_scope",
        "annotator",
        "labeled_at",
        "round",
        "acquisition",
        "score",
        "cost",
        "group",
        "suggestion_agreed",
        "suggestion_probability",
    ]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for record in records:
        writer.writerow([csv_safe(record[c]) for c in columns])
        if buffer.tell() > 64 * 1024:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def export_stream(
    *,
    project: Project,
    fmt: str,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Iterator[str]:
    """The export of `project` in `fmt` (one of EXPORT_FORMATS) as text chunks: labels
    given or changed after `since` and at or before `until` (both optional)."""
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {fmt!r}")
    content = project.kind or "text"
    labelstudio = fmt == "labelstudio"
    records = labeled_records(
        project=project,
        since=since,
        until=until,
        with_prediction=labelstudio,
        raw_meta=not labelstudio,
    )
    if fmt == "jsonl":
        return stream_jsonl(records)
    if fmt == "json":
        return stream_json(records)
    if labelstudio:
        return stream_json(labelstudio_tasks(records, content=content))
    return stream_csv(records, content)
