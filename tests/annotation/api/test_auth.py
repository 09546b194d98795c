import pytest

from tests.conftest import api_client
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def test_token_is_issued_for_valid_credentials(annotator):
    response = api_client().post(
        "/api/auth/token/", {"username": annotator.username, "password": PASSWORD}, format="json"
    )
    assert response.status_code == 200
    assert len(response.json()["token"]) == 40


def test_wrong_password_gets_no_token(annotator):
    response = api_client().post(
        "/api/auth/token/", {"username": annotator.username, "password": "nope"}, format="json"
    )
    assert response.status_code == 400


def test_revoked_token_no_longer_works(project, annotator):
    client = api_client(annotator)
    assert client.delete("/api/auth/token/").status_code == 204
    assert client.get(f"/api/projects/{project.id}/").status_code == 401


def test_session_api_calls_need_csrf(project, annotator):
    from rest_framework.test import APIClient

    client = APIClient(enforce_csrf_checks=True)
    client.force_login(annotator)
    assert client.post(f"/api/projects/{project.id}/next/").status_code == 403


def test_schema_is_served(staff):
    response = api_client(staff).get("/api/schema/")
    assert response.status_code == 200
    assert b"/api/projects/{id}/next/" in response.content
