"""Who gets in: sign-in throttles, the routed auth pages, staff without membership,
round errors for annotators, the schema setting, tokens after a password change."""

import pytest
from django.core.cache import cache
from django.test import Client
from rest_framework.authtoken.models import Token

from annotation.api.serializers import ROUND_FAILED
from annotation.models import Round
from tests.conftest import api_client
from tests.factories import PASSWORD, UserFactory, token_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def throttled(settings):
    """Sign-in throttles of 3 attempts a minute, counted from zero."""
    settings.ANNOTATION_LOGIN_RATE_PER_IP = "3/min"
    settings.ANNOTATION_LOGIN_RATE_PER_USERNAME = "3/min"
    cache.clear()
    yield settings
    cache.clear()


def token_attempt(username: str, ip: str):
    return api_client().post(
        "/api/auth/token/",
        {"username": username, "password": "wrong"},
        format="json",
        REMOTE_ADDR=ip,
    )


def login_attempt(username: str, ip: str):
    return Client(REMOTE_ADDR=ip).post(
        "/accounts/login/", {"username": username, "password": "wrong"}
    )


def test_token_endpoint_throttles_one_username_from_many_addresses(throttled):
    statuses = [token_attempt("alice", f"10.0.0.{i}").status_code for i in range(4)]
    assert statuses == [400, 400, 400, 429]


def test_token_endpoint_throttles_one_address_trying_many_usernames(throttled):
    throttled.ANNOTATION_LOGIN_RATE_PER_USERNAME = "100/min"
    statuses = [token_attempt(f"user-{i}", "10.0.0.9").status_code for i in range(4)]
    assert statuses == [400, 400, 400, 429]


def test_login_form_throttles_one_username_from_many_addresses(throttled):
    statuses = [login_attempt("alice", f"10.0.1.{i}").status_code for i in range(4)]
    assert statuses == [200, 200, 200, 429]


def test_login_form_throttles_one_address_trying_many_usernames(throttled):
    throttled.ANNOTATION_LOGIN_RATE_PER_USERNAME = "100/min"
    statuses = [login_attempt(f"user-{i}", "10.0.1.9").status_code for i in range(4)]
    assert statuses == [200, 200, 200, 429]


def test_login_form_still_signs_in(annotator):
    client = Client()
    response = client.post(
        "/accounts/login/", {"username": annotator.username, "password": PASSWORD}
    )
    assert response.status_code == 302
    assert client.get("/").status_code == 200


@pytest.mark.parametrize(
    "path", ["/accounts/password_reset/", "/accounts/password_change/", "/accounts/reset/done/"]
)
def test_only_login_and_logout_of_django_auth_are_routed(path):
    assert Client().get(path).status_code == 404


def test_staff_alone_is_not_manager_of_every_project(project, staff):
    client = api_client(staff)
    assert client.get(f"/api/projects/{project.id}/").status_code == 404
    assert client.get(f"/api/projects/{project.id}/items/").status_code == 404
    assert project.id not in [p["id"] for p in client.get("/api/projects/").json()]


def test_superuser_manages_every_project(project):
    root = UserFactory(is_staff=True, is_superuser=True)
    assert api_client(root).get(f"/api/projects/{project.id}/items/").status_code == 200


@pytest.fixture
def failed_round(project):
    return Round.objects.create(
        project=project,
        number=1,
        strategy="random",
        status=Round.Status.FAILED,
        error="OperationalError: could not connect to server at 10.1.2.3",
    )


def test_annotators_see_a_generic_round_error(project, annotator, failed_round):
    rounds = api_client(annotator).get(f"/api/projects/{project.id}/rounds/").json()
    assert rounds[0]["error"] == ROUND_FAILED


def test_managers_see_the_round_error(project, manager, failed_round):
    rounds = api_client(manager).get(f"/api/projects/{project.id}/rounds/").json()
    assert rounds[0]["error"] == failed_round.error


def test_schema_is_public_by_default():
    assert Client().get("/api/schema/").status_code == 200


def test_schema_can_be_put_behind_authentication(settings, annotator):
    settings.ANNOTATION_SCHEMA_AUTH = True
    assert api_client().get("/api/schema/").status_code == 401
    assert api_client().get("/api/docs/").status_code == 401
    assert api_client(annotator).get("/api/schema/").status_code == 200


def test_a_password_change_rotates_the_token(project, annotator):
    old = token_for(annotator)
    annotator.set_password("a new and long passphrase")
    annotator.save()
    assert (
        api_client()
        .get(f"/api/projects/{project.id}/", HTTP_AUTHORIZATION=f"Token {old}")
        .status_code
        == 401
    )
    new = Token.objects.get(user=annotator).key
    assert new != old
    assert (
        api_client()
        .get(f"/api/projects/{project.id}/", HTTP_AUTHORIZATION=f"Token {new}")
        .status_code
        == 200
    )


def test_saving_a_user_without_a_password_change_keeps_the_token(annotator):
    old = token_for(annotator)
    annotator.first_name = "Ada"
    annotator.save()
    assert Token.objects.get(user=annotator).key == old
