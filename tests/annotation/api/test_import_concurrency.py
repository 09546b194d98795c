"""A large import never holds the project row: labels and hand-outs go on while its rows
are stored (its transaction stays open, paused after its first batch, for each test)."""

import threading

import numpy as np
import pytest
from django.db import connection

from annotation.models import Annotation, Round
from annotation.services import dispatch, imports
from tests.conftest import api_client
from tests.factories import ItemFactory, queue

pytestmark = pytest.mark.django_db(transaction=True)
ROWS = imports.BULK_BATCH + 10


@pytest.fixture
def sent(monkeypatch):
    """The tasks the services send, recorded instead of going to the broker."""
    calls = []
    monkeypatch.setattr(dispatch, "_send", lambda name, *args, **options: calls.append(name) or 1)
    return calls


@pytest.fixture
def import_in_progress(project, monkeypatch):
    """An import of ROWS rows, paused inside its transaction after its first batch; a
    statement of the test that waits for a lock fails after 3 s instead of hanging."""
    stored, release = threading.Event(), threading.Event()
    real_store = imports._store

    def store_then_wait(*args):
        created = real_store(*args)
        stored.set()
        release.wait(30)
        return created

    monkeypatch.setattr(imports, "_store", store_then_wait)
    result: dict = {}

    def run_import():
        try:
            rows = ({"text": f"imported {i}"} for i in range(ROWS))
            result["created"] = imports.items_import(project=project, rows=rows)
        except Exception as exc:  # noqa: BLE001 (reported by the assertion below)
            result["error"] = exc
        finally:
            connection.close()

    def start():
        importer.start()
        assert stored.wait(30), result
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '3s'")

    importer = threading.Thread(target=run_import)
    yield start
    release.set()
    importer.join(60)
    with connection.cursor() as cursor:
        cursor.execute("SET lock_timeout = 0")
    assert result == {"created": ROWS}


def test_a_label_goes_on_while_an_import_is_storing_rows(
    project, annotator, sent, import_in_progress
):
    item = ItemFactory(project=project)
    queue(project, [item])
    assert api_client(annotator).post(f"/api/projects/{project.id}/next/").json()["state"] == "ok"
    import_in_progress()
    response = api_client(annotator).post(
        f"/api/projects/{project.id}/annotations/", {"item": item.id, "label": "cat"}, format="json"
    )
    assert response.status_code == 201
    assert Annotation.objects.filter(item=item).exists()


def test_a_hand_out_that_starts_a_round_goes_on_while_an_import_is_storing_rows(
    project, annotator, sent, import_in_progress
):
    ItemFactory(project=project, vector=np.zeros(4, np.float32).tobytes())
    import_in_progress()
    response = api_client(annotator).post(f"/api/projects/{project.id}/next/")
    assert response.status_code == 200
    assert Round.objects.filter(project=project, status=Round.Status.RUNNING).exists()
    assert dispatch.ROUND_RUN in sent
