"""The fast export path (timestamps formatted by PostgreSQL, meta written as stored when
it round-trips, records encoded in chunks) writes the same bytes as encoding each record
with json.dumps."""

import csv
import io
import json
from datetime import UTC, datetime

import pytest

from annotation.models import Annotation, Item
from annotation.services.exports import export_stream
from tests.factories import ItemFactory

pytestmark = pytest.mark.django_db

METAS = [
    {},
    {"n": 1, "neg": -5, "big": 12345678901234567890, "t": True, "f": False, "none": None},
    {"s": 'é \u2028 \x7f \x1f \t \n " \\ / 😀', "nested": {"l": [1, [2, {}], []]}},
    {"bb": 1, "a": 2, "aaa": 3},  # jsonb orders keys by length first
    {"x": 1e-05, "y": 1.1, "z": 0.1, "w": 1e16, "v": 3.141592653589793},
    {"k.k": "a.b", "e": "1e5"},
]


@pytest.fixture
def labeled(project, annotator):
    """One labeled item per meta; the first label at a whole second (isoformat drops a
    zero fraction), the others with microseconds."""
    items = []
    for number, meta in enumerate(METAS):
        item = ItemFactory(project=project, meta=meta, external_id=f"e{number}", status="labeled")
        Annotation.objects.create(item=item, annotator=annotator, label="cat", cost=1)
        instant = datetime(2025, 1, 2, 3, 4, 5, 0 if number == 0 else 10 * number + 7, UTC)
        Annotation.objects.filter(item=item).update(created_at=instant)
        items.append(item)
    return items


def expected_records(project) -> list[dict]:
    """Each record as the export documents it, built from the models."""
    records = []
    for item in Item.objects.filter(project=project).order_by("id"):
        annotation = Annotation.objects.get(item=item)
        records.append(
            {
                "id": item.id,
                "external_id": item.external_id,
                "text": item.text,
                "meta": item.meta,
                "label": annotation.label,
                "out_of_scope": False,
                "annotator": annotation.annotator.username,
                "labeled_at": annotation.created_at.isoformat(),
                "round": item.queued_round,
                "acquisition": item.acquisition,
                "score": item.score,
                "cost": float(item.cost),
                "group": item.group,
                "suggestion_agreed": annotation.suggestion_agreed,
                "suggestion_probability": annotation.suggestion_probability,
            }
        )
    return records


def test_jsonl_export_is_json_dumps_of_each_record(project, labeled):
    body = "".join(export_stream(project=project, fmt="jsonl"))
    expected = "".join(
        json.dumps(record, ensure_ascii=False) + "\n" for record in expected_records(project)
    )
    assert body == expected


def test_json_export_is_the_records_one_per_line(project, labeled):
    body = "".join(export_stream(project=project, fmt="json"))
    lines = [json.dumps(record, ensure_ascii=False) for record in expected_records(project)]
    assert body == "[\n" + ",\n".join(lines) + "\n]\n"


def test_a_zero_fraction_of_a_second_is_left_out_as_isoformat_does(project, labeled):
    first = json.loads(next(iter(export_stream(project=project, fmt="jsonl"))).split("\n")[0])
    assert first["labeled_at"] == "2025-01-02T03:04:05+00:00"


def test_an_export_of_many_records_is_written_in_chunks_of_whole_lines(project, annotator):
    items = ItemFactory.create_batch(1201, project=project, status="labeled")
    Annotation.objects.bulk_create(
        Annotation(item=item, annotator=annotator, label="dog", cost=1) for item in items
    )
    chunks = list(export_stream(project=project, fmt="jsonl"))
    assert len(chunks) == 3
    assert all(chunk.endswith("\n") for chunk in chunks)
    assert sum(chunk.count("\n") for chunk in chunks) == 1201


def test_the_export_says_whether_a_label_agreed_with_the_suggestion_shown(project, labeled):
    Annotation.objects.filter(item=labeled[0]).update(
        suggestion_agreed=False, suggestion_probability=0.75
    )
    body = "".join(export_stream(project=project, fmt="jsonl"))
    first, second = (json.loads(line) for line in body.split("\n")[:2])
    assert (first["suggestion_agreed"], first["suggestion_probability"]) == (False, 0.75)
    assert (second["suggestion_agreed"], second["suggestion_probability"]) == (None, None)
    rows = list(csv.DictReader(io.StringIO("".join(export_stream(project=project, fmt="csv")))))
    assert (rows[0]["suggestion_agreed"], rows[0]["suggestion_probability"]) == ("False", "0.75")
    assert (rows[1]["suggestion_agreed"], rows[1]["suggestion_probability"]) == ("", "")
