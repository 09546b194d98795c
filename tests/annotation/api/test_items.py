import base64
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from annotation.models import Item, Project
from tests.conftest import api_client
from tests.factories import ItemFactory, ProjectFactory

pytestmark = pytest.mark.django_db


def png_uri(size=(8, 8)) -> str:
    buffer = io.BytesIO()
    Image.new("L", size, color=128).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


@pytest.fixture
def empty_project(db):
    return ProjectFactory(kind="")


@pytest.fixture
def boss(empty_project):
    from tests.factories import MembershipFactory

    return MembershipFactory(project=empty_project, role="manager").user


def post_items(user, project, payload):
    return api_client(user).post(f"/api/projects/{project.id}/items/", payload, format="json")


def test_json_import_stores_all_rows(empty_project, boss):
    rows = [
        {"text": "a good film", "external_id": "r1", "meta": {"lang": "en"}},
        {"text": "a bad film", "cost": 2.5, "group": "short"},
    ]
    response = post_items(boss, empty_project, rows)
    assert response.status_code == 201
    assert response.json() == {"created": 2}
    first, second = Item.objects.filter(project=empty_project).order_by("id")
    assert (first.external_id, first.meta, first.cost) == ("r1", {"lang": "en"}, 1)
    assert (second.cost, second.group) == (2.5, "short")
    empty_project.refresh_from_db()
    assert empty_project.kind == "text"


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ({"text": "x", "colour": "red"}, "colour"),
        ({"text": "x", "cost": -1}, "cost"),
        ({"text": "x", "cost": "cheap"}, "cost"),
        ({"text": "x", "cost": True}, "cost"),
        ({"text": "x", "meta": [1, 2]}, "meta"),
        ({"text": 5}, "text"),
        ({"features": [1, "two"]}, "features"),
        ({"text": "x", "external_id": ["a"]}, "external_id"),
    ],
)
def test_bad_row_stores_nothing_and_names_row_and_field(empty_project, boss, row, field):
    response = post_items(boss, empty_project, [{"text": "fine"}, row])
    assert response.status_code == 400
    body = response.json()
    assert body["row"] == 2
    assert body["field"] == field
    assert "row 2" in body["detail"]
    assert not Item.objects.exists()


@pytest.mark.parametrize(
    "uri",
    [
        "data:image/png;base64,bm90IGFuIGltYWdl",
        "data:image/png;base64,@@@",
        "http://example.com/cat.png",
        "data:text/plain;base64,aGVsbG8=",
    ],
)
def test_image_that_is_not_an_image_is_refused(empty_project, boss, uri):
    response = post_items(boss, empty_project, [{"image": png_uri()}, {"image": uri}])
    assert response.status_code == 400
    assert (response.json()["row"], response.json()["field"]) == (2, "image")
    assert not Item.objects.exists()


def test_row_without_content_is_refused(empty_project, boss):
    response = post_items(boss, empty_project, [{"external_id": "x"}])
    assert response.status_code == 400
    assert response.json()["row"] == 1


def test_duplicate_external_id_in_file_is_refused(empty_project, boss):
    rows = [{"text": "a", "external_id": "e"}, {"text": "b", "external_id": "e"}]
    response = post_items(boss, empty_project, rows)
    assert response.status_code == 400
    assert response.json()["field"] == "external_id"
    assert not Item.objects.exists()


def test_external_id_already_in_project_is_refused(project, manager):
    ItemFactory(project=project, external_id="e")
    response = post_items(manager, project, [{"text": "b", "external_id": "e"}])
    assert response.status_code == 400
    assert Item.objects.count() == 1


def test_mixing_kinds_is_refused(project, manager):
    response = post_items(manager, project, [{"features": [1.0, 2.0]}])
    assert response.status_code == 400
    assert response.json()["field"] == "features"


def test_feature_vectors_must_share_length(empty_project, boss):
    response = post_items(boss, empty_project, [{"features": [1, 2]}, {"features": [1, 2, 3]}])
    assert response.status_code == 400
    assert response.json()["row"] == 2


def test_image_data_uri_is_accepted(empty_project, boss):
    response = post_items(boss, empty_project, [{"image": png_uri()}])
    assert response.status_code == 201
    empty_project.refresh_from_db()
    assert empty_project.kind == Project.Kind.IMAGE


def test_jsonl_file_upload(empty_project, boss):
    data = b'{"text": "one"}\n\n{"text": "two", "external_id": 7}\n'
    upload = SimpleUploadedFile("items.jsonl", data, content_type="application/x-ndjson")
    response = api_client(boss).post(
        f"/api/projects/{empty_project.id}/items/", {"file": upload}, format="multipart"
    )
    assert response.status_code == 201, response.json()
    assert list(Item.objects.values_list("external_id", flat=True).order_by("id")) == [None, "7"]


def test_csv_file_upload(empty_project, boss):
    data = b'text,cost,meta,group\n"hello, world",2,"{""k"": 1}",g1\nbye,,,\n'
    upload = SimpleUploadedFile("items.csv", data, content_type="text/csv")
    response = api_client(boss).post(
        f"/api/projects/{empty_project.id}/items/", {"file": upload}, format="multipart"
    )
    assert response.status_code == 201, response.json()
    first, second = Item.objects.order_by("id")
    assert (first.text, first.cost, first.meta, first.group) == ("hello, world", 2, {"k": 1}, "g1")
    assert (second.text, second.cost, second.meta) == ("bye", 1, {})


def test_malformed_jsonl_names_the_line(empty_project, boss):
    upload = SimpleUploadedFile("items.jsonl", b'{"text": "a"}\n{"text": \n')
    response = api_client(boss).post(
        f"/api/projects/{empty_project.id}/items/", {"file": upload}, format="multipart"
    )
    assert response.status_code == 400
    assert "line 2" in response.json()["detail"]
    assert not Item.objects.exists()


def test_csv_with_unknown_column_is_refused(empty_project, boss):
    upload = SimpleUploadedFile("items.csv", b"text,label\nhi,pos\n")
    response = api_client(boss).post(
        f"/api/projects/{empty_project.id}/items/", {"file": upload}, format="multipart"
    )
    assert response.status_code == 400
    assert "label" in response.json()["detail"]


def test_malformed_json_body_is_400(empty_project, boss):
    response = api_client(boss).post(
        f"/api/projects/{empty_project.id}/items/", '[{"text": ', content_type="application/json"
    )
    assert response.status_code == 400


def test_annotator_cannot_import(project, annotator):
    assert post_items(annotator, project, [{"text": "x"}]).status_code == 403


def test_list_filters_by_status(project, manager):
    ItemFactory(project=project, status="labeled")
    unlabeled = ItemFactory(project=project)
    response = api_client(manager).get(f"/api/projects/{project.id}/items/?status=unlabeled")
    assert response.status_code == 200
    assert [i["id"] for i in response.json()["results"]] == [unlabeled.id]


def test_list_refuses_unknown_status(project, manager):
    response = api_client(manager).get(f"/api/projects/{project.id}/items/?status=done")
    assert response.status_code == 400
    assert "status" in response.json()
