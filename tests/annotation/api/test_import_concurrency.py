"""A large import never holds the project row: labels go on while its rows are stored."""

import threading

import pytest
from django.db import connection

from annotation.models import Annotation, Item
from annotation.services import imports
from tests.conftest import api_client
from tests.factories import ItemFactory, queue


@pytest.mark.django_db(transaction=True)
def test_a_label_goes_on_while_an_import_is_storing_rows(project, annotator, monkeypatch):
    item = ItemFactory(project=project)
    queue(project, [item])
    assert api_client(annotator).post(f"/api/projects/{project.id}/next/").json()["state"] == "ok"

    stored, release = threading.Event(), threading.Event()
    real_bulk_create = type(Item.objects).bulk_create

    def bulk_create_then_wait(manager, objs, **kwargs):
        created = real_bulk_create(manager, objs, **kwargs)
        stored.set()  # the import's transaction is open and has stored a batch
        release.wait(30)
        return created

    monkeypatch.setattr(type(Item.objects), "bulk_create", bulk_create_then_wait)
    result: dict = {}

    def run_import():
        try:
            rows = ({"text": f"imported {i}"} for i in range(imports.BULK_BATCH + 10))
            result["created"] = imports.items_import(project=project, rows=rows)
        except Exception as exc:  # noqa: BLE001 (reported by the assertion below)
            result["error"] = exc
        finally:
            connection.close()

    importer = threading.Thread(target=run_import)
    importer.start()
    try:
        assert stored.wait(30), result
        with connection.cursor() as cursor:  # a label that would wait fails fast instead
            cursor.execute("SET lock_timeout = '3s'")
        response = api_client(annotator).post(
            f"/api/projects/{project.id}/annotations/",
            {"item": item.id, "label": "cat"},
            format="json",
        )
        assert response.status_code == 201
        assert Annotation.objects.filter(item=item).exists()
    finally:
        release.set()
        importer.join(60)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = 0")
    assert result == {"created": imports.BULK_BATCH + 10}
