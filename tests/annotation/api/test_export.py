import csv
import io
import json

import pandas
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from annotation.models import Item
from annotation.services.labeling import item_next_for
from annotation.services.queue import annotation_submit
from tests.conftest import api_client
from tests.factories import ItemFactory, MembershipFactory, ProjectFactory, queue

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


# --- Label Studio, incremental export, pandas, predictions --------------------------------


def import_file(user, project, name, body: bytes):
    return api_client(user).post(
        f"/api/projects/{project.id}/items/",
        {"file": SimpleUploadedFile(name, body)},
        format="multipart",
    )


def ls_task(task_id, text, label=None, prediction=None, meta=None):
    result = lambda name: [  # noqa: E731
        {"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": [name]}}
    ]
    return {
        "id": task_id,
        "data": {"text": text},
        "meta": meta or {},
        "annotations": [{"result": result(label), "was_cancelled": False}] if label else [],
        "predictions": [{"result": result(prediction), "score": 0.7, "model_version": "v1"}]
        if prediction
        else [],
    }


def comparable(tasks):
    """What a round trip keeps: data, meta, the label and the predictions."""
    return [
        (
            t["data"],
            t["meta"],
            [a["result"][0]["value"]["choices"] for a in t["annotations"]],
            t["predictions"],
        )
        for t in tasks
    ]


def test_labelstudio_export_is_tasks_with_the_label_as_annotation(project, manager, labeled):
    response, body = export(manager, project, "labelstudio")
    tasks = json.loads(body)
    assert [t["data"]["text"] for t in tasks] == [labeled[0].text, labeled[1].text]
    assert [t["annotations"][0]["result"][0]["value"]["choices"] for t in tasks] == [
        ["cat"],
        ["dog"],
    ]
    assert tasks[0]["data"]["external_id"] == "e1"
    assert tasks[1]["meta"] == {"k": 1}


def test_labelstudio_import_keeps_labels_predictions_and_meta(project, manager):
    tasks = [
        ls_task(11, "a purring thing", label="cat", meta={"source": "ls"}),
        ls_task(12, "a barking thing", prediction="dog"),
    ]
    response = import_file(manager, project, "tasks.json", json.dumps(tasks).encode())
    assert response.status_code == 201, response.content
    first, second = Item.objects.filter(project=project).order_by("id")
    assert (first.external_id, first.status, first.meta) == ("11", "labeled", {"source": "ls"})
    assert first.annotation.label == "cat" and first.annotation.cost == 0
    assert second.status == "unlabeled"
    assert second.prediction["labels"] == [["dog", 0.7]]
    project.refresh_from_db()
    assert project.spent == 0  # imported history spends no budget


def test_labelstudio_import_of_an_unknown_label_names_the_task(project, manager):
    tasks = [ls_task(1, "fine", label="cat"), ls_task(2, "bad", label="horse")]
    response = import_file(manager, project, "tasks.json", json.dumps(tasks).encode())
    assert response.status_code == 400
    assert response.json()["row"] == 2 and response.json()["field"] == "annotations"
    assert not Item.objects.filter(project=project).exists()


def test_labelstudio_round_trip_gives_the_same_records(project, manager):
    tasks = [
        ls_task(1, "one", label="cat", prediction="dog", meta={"a": [1, 2]}),
        ls_task(2, "two", label="dog"),
    ]
    assert import_file(manager, project, "t.json", json.dumps(tasks).encode()).status_code == 201
    _, first_export = export(manager, project, "labelstudio")
    other = ProjectFactory(labels=["cat", "dog"])
    MembershipFactory(project=other, user=manager, role="manager")
    assert import_file(manager, other, "t.json", first_export.encode()).status_code == 201
    _, second_export = export(manager, other, "labelstudio")
    assert comparable(json.loads(second_export)) == comparable(json.loads(first_export))
    assert [t["data"]["external_id"] for t in json.loads(second_export)] == ["1", "2"]
    assert comparable(json.loads(first_export))[0][3] == tasks[0]["predictions"]


def test_export_since_the_cursor_holds_only_later_labels(project, manager, annotator, labeled):
    response, body = export(manager, project, "jsonl")
    cursor = response["X-Export-Cursor"]
    queue(project, [labeled[2]])
    item, _ = item_next_for(project=project, user=annotator)
    annotation_submit(project=project, user=annotator, item_id=item.id, label="dog")
    later = api_client(manager).get(
        f"/api/projects/{project.id}/export/", {"format": "jsonl", "since": cursor}
    )
    records = [json.loads(line) for line in b"".join(later.streaming_content).splitlines()]
    assert [r["id"] for r in records] == [labeled[2].id]


def test_export_since_refuses_a_bad_timestamp(project, manager):
    response = api_client(manager).get(f"/api/projects/{project.id}/export/?since=yesterday")
    assert response.status_code == 400
    assert "since" in response.json()


def test_pandas_reads_the_jsonl_export(project, manager, labeled):
    _, body = export(manager, project, "jsonl")
    frame = pandas.read_json(io.StringIO(body), lines=True)
    assert list(frame["label"]) == ["cat", "dog"]
    assert list(frame["external_id"])[0] == "e1"


def predictions(user, project, query=""):
    response = api_client(user).get(f"/api/projects/{project.id}/predictions/{query}")
    lines = b"".join(response.streaming_content).splitlines() if response.status_code == 200 else []
    return response, [json.loads(line) for line in lines]


@pytest.fixture
def predicted(project, labeled):
    Item.objects.filter(pk=labeled[2].pk).update(
        prediction={"labels": [["dog", 0.9], ["cat", 0.1]]}
    )
    return labeled


def test_predictions_stream_the_unlabeled_items_latest_prediction(project, manager, predicted):
    response, rows = predictions(manager, project)
    assert response.streaming
    assert rows == [
        {
            "id": predicted[2].id,
            "external_id": None,
            "status": "unlabeled",
            "label": "dog",
            "probabilities": {"dog": 0.9, "cat": 0.1},
        }
    ]


def test_predictions_all_includes_labeled_items(project, manager, predicted):
    _, rows = predictions(manager, project, "?all=1")
    assert [r["id"] for r in rows] == [item.id for item in predicted]


def test_annotator_cannot_read_predictions(project, annotator, predicted):
    assert predictions(annotator, project)[0].status_code == 403
