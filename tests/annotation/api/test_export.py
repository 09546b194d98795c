import csv
import io
import json

import pytest

from annotation.services.labeling import item_next_for
from annotation.services.queue import annotation_submit
from tests.conftest import api_client
from tests.factories import ItemFactory, queue

pytestmark = pytest.mark.django_db


@pytest.fixture
def labeled(project, annotator):
    items = [
        ItemFactory(project=project, text='=HYPERLINK("http://x")', external_id="e1"),
        ItemFactory(project=project, text="<b>bold</b>", meta={"k": 1}),
        ItemFactory(project=project, text="never labeled"),
    ]
    queue(project, items[:2])
    for name in ("cat", "dog"):
        item, _ = item_next_for(project=project, user=annotator)
        annotation_submit(project=project, user=annotator, item_id=item.id, label=name)
    return items


def export(user, project, fmt):
    response = api_client(user).get(f"/api/projects/{project.id}/export/?format={fmt}")
    body = b"".join(response.streaming_content).decode() if response.status_code == 200 else ""
    return response, body


def test_jsonl_export_has_one_record_per_labeled_item(project, manager, annotator, labeled):
    response, body = export(manager, project, "jsonl")
    assert response.status_code == 200
    assert response.streaming
    records = [json.loads(line) for line in body.splitlines()]
    assert [r["label"] for r in records] == ["cat", "dog"]
    first = records[0]
    assert first["external_id"] == "e1"
    assert first["annotator"] == annotator.username
    assert first["round"] == 1 and first["acquisition"] == "random"
    assert first["score"] is not None and first["labeled_at"]
    assert set(first) >= {
        "id",
        "external_id",
        "text",
        "meta",
        "label",
        "annotator",
        "labeled_at",
        "round",
        "acquisition",
        "score",
    }


def test_json_export_is_a_list(project, manager, labeled):
    response, body = export(manager, project, "json")
    assert [r["label"] for r in json.loads(body)] == ["cat", "dog"]


def test_csv_export_neutralizes_formulas(project, manager, labeled):
    response, body = export(manager, project, "csv")
    rows = list(csv.DictReader(io.StringIO(body)))
    assert len(rows) == 2
    assert rows[0]["text"].startswith("'=")
    assert rows[1]["text"] == "<b>bold</b>"
    assert json.loads(rows[1]["meta"]) == {"k": 1}


def test_export_refuses_unknown_format(project, manager):
    response = api_client(manager).get(f"/api/projects/{project.id}/export/?format=xml")
    assert response.status_code == 400
    assert "format" in response.json()


def test_outsider_cannot_export(project, outsider, labeled):
    assert export(outsider, project, "jsonl")[0].status_code == 404


def test_annotator_cannot_export(project, annotator, labeled):
    assert export(annotator, project, "jsonl")[0].status_code == 403
