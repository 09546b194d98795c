"""items_import's store path (COPY, one per batch, under a savepoint): what it writes, and
that a bad row in a later batch still leaves nothing written. BULK_BATCH is made small so
that a few rows span several batches."""

from decimal import Decimal

import pytest
from django.db import connection

from annotation.models import Item
from annotation.services import imports
from annotation.services.imports import RowError, items_import
from tests.factories import ItemFactory, ProjectFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def small_batches(monkeypatch):
    monkeypatch.setattr(imports, "BULK_BATCH", 2)


def test_rows_are_stored_as_given():
    """COPY's text format escapes tabs, newlines and backslashes: they round-trip."""
    project = ProjectFactory(kind="")
    rows = [
        {"text": "tab\there\nnew line \\N back\\slash", "external_id": 7, "group": "g"},
        {"text": "é ünïcode", "meta": {"k": ["v", 1.5, None, {"d": "\\u0000"}]}, "cost": "2.5"},
        {"text": "plain"},
    ]
    assert items_import(project=project, rows=rows) == 3
    stored = list(
        Item.objects.filter(project=project)
        .order_by("id")
        .values("text", "external_id", "group", "meta", "cost", "features", "status")
    )
    assert stored == [
        {
            "text": "tab\there\nnew line \\N back\\slash",
            "external_id": "7",
            "group": "g",
            "meta": {},
            "cost": Decimal("1.00"),
            "features": None,
            "status": "unlabeled",
        },
        {
            "text": "é ünïcode",
            "external_id": None,
            "group": "",
            "meta": {"k": ["v", 1.5, None, {"d": "\\u0000"}]},
            "cost": Decimal("2.50"),
            "features": None,
            "status": "unlabeled",
        },
        {
            "text": "plain",
            "external_id": None,
            "group": "",
            "meta": {},
            "cost": Decimal("1.00"),
            "features": None,
            "status": "unlabeled",
        },
    ]


def test_feature_rows_are_stored_as_lists_of_floats():
    project = ProjectFactory(kind="")
    items_import(project=project, rows=[{"features": [1, 2.5]}, {"features": [3, -4e10]}])
    stored = Item.objects.filter(project=project).order_by("id").values_list("features", flat=True)
    assert list(stored) == [[1.0, 2.5], [3.0, -4e10]]


def test_a_bad_row_in_a_later_batch_leaves_nothing_written(project):
    rows = [{"text": f"fine {i}"} for i in range(5)] + [{"text": 5}]
    with pytest.raises(RowError) as caught:
        items_import(project=project, rows=rows)
    assert (caught.value.row, caught.value.field) == (6, "text")
    assert not Item.objects.filter(project=project).exists()


def test_an_external_id_already_in_the_project_names_the_earliest_row_that_holds_one(project):
    ItemFactory(project=project, external_id="a")  # the older item clashes with a later row
    ItemFactory(project=project, external_id="b")
    rows = [
        {"text": "1", "external_id": "new 1"},
        {"text": "2", "external_id": "new 2"},
        {"text": "3", "external_id": "b"},
        {"text": "4", "external_id": "a"},
    ]
    with pytest.raises(RowError) as caught:
        items_import(project=project, rows=rows)
    assert (caught.value.row, caught.value.field) == (3, "external_id")
    assert "'b' is already in the project" in caught.value.message
    assert Item.objects.filter(project=project).count() == 2


def test_the_connection_is_usable_after_a_refused_import(project):
    ItemFactory(project=project, external_id="a")
    with pytest.raises(RowError):
        items_import(project=project, rows=[{"text": "x", "external_id": "a"}])
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ({"text": "a\x00b"}, "text"),
        ({"text": "x", "external_id": "a\x00"}, "external_id"),
        ({"text": "x", "group": "\x00"}, "group"),
        ({"text": "x", "meta": {"k": "v\x00"}}, "meta"),
        ({"text": "x", "meta": {"\x00": 1}}, "meta"),
    ],
)
def test_a_nul_character_is_refused_naming_the_field(project, row, field):
    """PostgreSQL stores no NUL in text or jsonb: a RowError (a 400), not a database error."""
    with pytest.raises(RowError) as caught:
        items_import(project=project, rows=[{"text": "fine"}, row])
    assert (caught.value.row, caught.value.field) == (2, field)
    assert "NUL" in caught.value.message
    assert not Item.objects.filter(project=project).exists()
