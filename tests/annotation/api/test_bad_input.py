"""Hostile or careless input gets a 4xx naming the field, never a 500, and stores nothing."""

import base64
import io
import os
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from annotation.models import Item
from tests.conftest import api_client
from tests.factories import ItemFactory, MembershipFactory, ProjectFactory, queue

pytestmark = pytest.mark.django_db

DEEP = "[" * 50_000 + "]" * 50_000
LONG_INT = "7" * 5_000


@pytest.fixture
def empty_project(db):
    return ProjectFactory(kind="")


@pytest.fixture
def boss(empty_project):
    return MembershipFactory(project=empty_project, role="manager").user


def items_url(project) -> str:
    return f"/api/projects/{project.id}/items/"


def upload(user, project, name: str, data: bytes):
    file = SimpleUploadedFile(name, data)
    return api_client(user).post(items_url(project), {"file": file}, format="multipart")


def noisy_png_uri(side: int) -> str:
    image = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def test_json_body_nested_50000_deep_is_a_400(empty_project, boss):
    response = api_client(boss).post(
        items_url(empty_project), DEEP, content_type="application/json"
    )
    assert response.status_code == 400
    assert "nested too deeply" in response.json()["detail"]


def test_anonymous_token_request_nested_50000_deep_is_a_400(db):
    response = api_client().post("/api/auth/token/", DEEP, content_type="application/json")
    assert response.status_code == 400
    assert "nested too deeply" in response.json()["detail"]


def test_jsonl_line_nested_50000_deep_names_the_line(empty_project, boss):
    response = upload(boss, empty_project, "items.jsonl", b'{"text": "a"}\n' + DEEP.encode())
    assert response.status_code == 400
    assert response.json()["row"] == 2
    assert "nested too deeply" in response.json()["detail"]
    assert not Item.objects.exists()


def test_jsonl_integer_of_5000_digits_names_the_line(empty_project, boss):
    line = b'{"features": [' + LONG_INT.encode() + b"]}\n"
    response = upload(boss, empty_project, "items.jsonl", line)
    assert response.status_code == 400
    assert "line 1" in response.json()["detail"]


def test_csv_cell_integer_of_5000_digits_names_the_field(empty_project, boss):
    data = ("features\n" + f'"[{LONG_INT}]"\n').encode()
    response = upload(boss, empty_project, "items.csv", data)
    assert response.status_code == 400
    assert response.json()["field"] == "features"


def test_csv_image_over_128_kib_is_imported(empty_project, boss):
    uri = noisy_png_uri(220)
    assert len(uri) > 128 * 1024
    response = upload(boss, empty_project, "items.csv", f'image\n"{uri}"\n'.encode())
    assert response.status_code == 201, response.json()
    assert Item.objects.get().image == uri


def test_csv_text_cell_over_the_text_limit_names_the_field(empty_project, boss):
    response = upload(boss, empty_project, "items.csv", b"text\n" + b"x" * 200_000 + b"\n")
    assert response.status_code == 400
    assert response.json()["field"] == "text"


def test_feature_integer_of_400_digits_names_the_field(empty_project, boss):
    body = '[{"features": [1' + "0" * 400 + "]}]"
    response = api_client(boss).post(
        items_url(empty_project), body, content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["field"] == "features"


@pytest.mark.parametrize("value", [1e39, -3.5e38])
def test_feature_outside_float32_is_refused_at_import(empty_project, boss, value):
    response = api_client(boss).post(
        items_url(empty_project), [{"features": [1.0, value]}], format="json"
    )
    assert response.status_code == 400
    assert response.json()["field"] == "features"
    assert "float32" in response.json()["detail"]
    assert not Item.objects.exists()


def test_rule_based_cost_beyond_max_cost_names_the_field(empty_project, boss):
    empty_project.cost_rule = "text_length"
    empty_project.cost_value = Decimal("999999999999.99")
    empty_project.save()
    response = api_client(boss).post(
        items_url(empty_project), [{"text": "x" * 2000}], format="json"
    )
    assert response.status_code == 400
    assert response.json()["field"] == "cost"
    assert not Item.objects.exists()


def test_threshold_of_10_to_the_400_names_the_field(project, manager):
    body = '{"out_of_scope_threshold": 1' + "0" * 400 + "}"
    response = api_client(manager).patch(
        f"/api/projects/{project.id}/", body, content_type="application/json"
    )
    assert response.status_code == 400
    assert "out_of_scope_threshold" in response.json()


def test_item_id_of_10_to_the_400_names_the_field(project, annotator):
    queue(project, [ItemFactory(project=project)])
    body = '{"item": 1' + "0" * 400 + ', "label": "cat"}'
    response = api_client(annotator).post(
        f"/api/projects/{project.id}/annotations/", body, content_type="application/json"
    )
    assert response.status_code == 400
    assert "item" in response.json()


def test_meta_nested_too_deeply_names_the_field(empty_project, boss):
    meta: dict = {}
    node = meta
    for _ in range(100):
        node["a"] = {}
        node = node["a"]
    response = api_client(boss).post(
        items_url(empty_project), [{"text": "x", "meta": meta}], format="json"
    )
    assert response.status_code == 400
    assert response.json()["field"] == "meta"


# --- size caps, checked before the body is read -------------------------------------------


def test_import_upload_over_the_cap_is_a_413_naming_the_file(empty_project, boss, settings):
    settings.ANNOTATION_MAX_IMPORT_BYTES = 10_000
    response = upload(boss, empty_project, "items.jsonl", b'{"text": "xx"}\n' * 2_000)
    assert response.status_code == 413
    assert response.json()["field"] == "file"
    assert not Item.objects.exists()


def test_import_upload_under_the_cap_but_over_the_general_one_is_accepted(
    empty_project, boss, settings
):
    settings.ANNOTATION_MAX_UPLOAD_BYTES = 1_000
    response = upload(boss, empty_project, "items.jsonl", b'{"text": "xx"}\n' * 200)
    assert response.status_code == 201


def test_anonymous_multipart_over_the_general_cap_is_a_413(db, settings):
    settings.ANNOTATION_MAX_UPLOAD_BYTES = 1_000
    file = SimpleUploadedFile("big.bin", b"x" * 5_000)
    response = api_client().post(
        "/api/auth/token/", {"username": "a", "password": "b", "file": file}, format="multipart"
    )
    assert response.status_code == 413


def test_json_body_over_the_cap_is_a_413(empty_project, boss, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1_000
    response = api_client(boss).post(
        items_url(empty_project), [{"text": "x" * 100}] * 20, format="json"
    )
    assert response.status_code == 413
    assert response.json()["field"] == "body"


def test_a_lease_body_that_is_not_an_object_is_a_400(project, annotator):
    response = api_client(annotator).post(
        f"/api/projects/{project.id}/lease/", '"flat"', content_type="application/json"
    )
    assert response.status_code == 400
    assert "non_field_errors" in response.json()
