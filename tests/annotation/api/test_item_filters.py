"""Filtering, ordering and cursor pagination of GET /api/projects/{id}/items/."""

from decimal import Decimal

import pytest

from tests.conftest import api_client
from tests.factories import ItemFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def items(project):
    return [
        ItemFactory(project=project, group="en", cost=Decimal(3), external_id="a"),
        ItemFactory(project=project, group="de", cost=Decimal(1), external_id="b"),
        ItemFactory(project=project, group="en", cost=Decimal(2), external_id="c"),
    ]


def listing(user, project, **params):
    response = api_client(user).get(f"/api/projects/{project.id}/items/", params)
    return response, response.json()


def test_items_filter_by_group(project, manager, items):
    _, body = listing(manager, project, group="en")
    assert [row["external_id"] for row in body["results"]] == ["a", "c"]


def test_items_order_by_cost_descending(project, manager, items):
    _, body = listing(manager, project, ordering="-cost")
    assert [row["external_id"] for row in body["results"]] == ["a", "c", "b"]


def test_items_refuse_an_unknown_ordering_naming_the_field(project, manager, items):
    response, body = listing(manager, project, ordering="vector")
    assert response.status_code == 400
    assert "ordering" in body


def test_items_cursor_pages_follow_next_to_the_end(project, manager, items):
    client = api_client(manager)
    url = f"/api/projects/{project.id}/items/?pagination=cursor&page_size=2&ordering=cost"
    seen = []
    while url:
        body = client.get(url).json()
        seen += [row["external_id"] for row in body["results"]]
        url = body["next"]
    assert seen == ["b", "c", "a"]


def test_items_cursor_pages_have_no_count(project, manager, items):
    _, body = listing(manager, project, pagination="cursor")
    assert "count" not in body and body["previous"] is None
