"""The labeling page's API needs: a second held item (prefetch) and a release that
navigator.sendBeacon can send (a form body carrying the CSRF token)."""

import pytest
from django.test import Client

from annotation.models import Item
from tests.conftest import api_client
from tests.factories import ItemFactory, queue

pytestmark = pytest.mark.django_db


def test_next_with_exclude_leases_one_more_item_besides_the_held_one(project, annotator):
    items = ItemFactory.create_batch(3, project=project)
    queue(project, items)
    client = api_client(annotator)
    first = client.post(f"/api/projects/{project.id}/next/").json()["item"]["id"]
    ahead = client.post(
        f"/api/projects/{project.id}/next/", {"exclude": [first]}, format="json"
    ).json()["item"]["id"]
    assert (first, ahead) == (items[0].id, items[1].id)
    leased = Item.objects.filter(leased_to=annotator).values_list("id", flat=True)
    assert sorted(leased) == [items[0].id, items[1].id]


def test_next_without_exclude_hands_back_the_held_item(project, annotator):
    items = ItemFactory.create_batch(2, project=project)
    queue(project, items)
    client = api_client(annotator)
    first = client.post(f"/api/projects/{project.id}/next/").json()["item"]["id"]
    again = client.post(f"/api/projects/{project.id}/next/").json()["item"]["id"]
    assert again == first


def test_next_refuses_a_bad_exclude_naming_the_field(project, annotator):
    response = api_client(annotator).post(
        f"/api/projects/{project.id}/next/", {"exclude": ["x"]}, format="json"
    )
    assert response.status_code == 400
    assert "exclude" in response.json()


def test_lease_release_accepts_a_beacon_form_with_its_csrf_token(project, annotator):
    items = ItemFactory.create_batch(1, project=project)
    queue(project, items)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(annotator)
    page = browser.get(f"/projects/{project.id}/label/")
    token = page.context["csrf_token"]
    api_client(annotator).post(f"/api/projects/{project.id}/next/")
    response = browser.post(
        f"/api/projects/{project.id}/lease/",
        {"item": items[0].id, "action": "release", "csrfmiddlewaretoken": str(token)},
    )
    assert response.status_code == 200
    assert Item.objects.get(pk=items[0].pk).leased_to_id is None
