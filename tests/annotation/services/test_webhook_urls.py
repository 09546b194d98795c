"""Webhook URLs lead to public addresses only: refused at registration (a 400 naming
`url`) and again at delivery (the address the host resolves to then), unless
ANNOTATION_WEBHOOK_ALLOW_PRIVATE. No test here leaves 127.0.0.1: host names are resolved
by /etc/hosts (localhost) or by a stand-in for getaddrinfo."""

import os
import socket
import subprocess
import sys

import pytest

from annotation.errors import ValidationFailed
from annotation.models import WebhookDelivery
from annotation.services import webhooks
from tests.annotation.services.test_webhooks import Receiver
from tests.conftest import api_client

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def strict(settings):
    settings.ANNOTATION_WEBHOOK_ALLOW_PRIVATE = False


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.server.shutdown()


def resolving_to(monkeypatch, address: str) -> None:
    """Every host name resolves to `address` (as getaddrinfo answers)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET

    def getaddrinfo(host, port, *args, **kwargs):
        return [(family, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(webhooks.socket, "getaddrinfo", getaddrinfo)


def test_registering_a_loopback_url_is_a_400_naming_url(project, manager):
    response = api_client(manager).post(
        f"/api/projects/{project.id}/webhooks/",
        {"url": "http://127.0.0.1:8000/hook", "events": ["round.finished"]},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["field"] == "url"
    assert "127.0.0.1" in response.json()["detail"]
    assert not project.webhooks.exists()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://localhost:9000/hook",
        "http://10.1.2.3/hook",
        "http://172.16.0.1/hook",
        "http://192.168.1.1/hook",
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata (link-local)
        "http://100.100.100.200/",  # shared address space (a cloud's metadata)
        "http://0.0.0.0/hook",
        "http://224.0.0.1/hook",
        "http://[::1]/hook",
        "http://[fe80::1]/hook",
        "http://[fd00:ec2::254]/hook",
        "http://[::ffff:127.0.0.1]/hook",
    ],
)
def test_an_internal_address_is_refused(project, url):
    with pytest.raises(ValidationFailed) as caught:
        webhooks.webhook_create(project=project, url=url, events=["round.finished"])
    assert caught.value.field == "url"
    assert not project.webhooks.exists()


def test_a_host_name_resolving_to_a_private_address_is_refused(project, monkeypatch):
    resolving_to(monkeypatch, "10.0.0.5")
    with pytest.raises(ValidationFailed) as caught:
        webhooks.webhook_create(
            project=project, url="https://hooks.example.org/in", events=["round.finished"]
        )
    assert caught.value.field == "url"
    assert "10.0.0.5" in caught.value.message


def test_a_host_name_that_does_not_resolve_is_refused(project, monkeypatch):
    def getaddrinfo(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(webhooks.socket, "getaddrinfo", getaddrinfo)
    with pytest.raises(ValidationFailed) as caught:
        webhooks.webhook_create(
            project=project, url="https://nowhere.invalid/in", events=["round.finished"]
        )
    assert caught.value.field == "url"


def test_a_public_address_is_accepted(project, monkeypatch):
    resolving_to(monkeypatch, "93.184.215.14")
    hook = webhooks.webhook_create(
        project=project, url="https://hooks.example.org/in", events=["round.finished"]
    )
    assert hook.url == "https://hooks.example.org/in"


def test_allow_private_accepts_a_loopback_url(project, settings):
    settings.ANNOTATION_WEBHOOK_ALLOW_PRIVATE = True
    hook = webhooks.webhook_create(
        project=project, url="http://127.0.0.1:9/hook", events=["round.finished"]
    )
    assert hook.pk


def test_a_delivery_is_refused_when_the_host_now_resolves_to_an_internal_address(
    project, receiver, monkeypatch
):
    """Registered while its host was public (DNS rebinding): the delivery checks the
    address it connects to, and the receiver on 127.0.0.1 gets nothing."""
    resolving_to(monkeypatch, "93.184.215.14")
    url = receiver.url.replace("127.0.0.1", "hooks.example.org")
    webhooks.webhook_create(project=project, url=url, events=["import.finished"])
    webhooks.event_emit(project_id=project.pk, event="import.finished", payload={})
    delivery = WebhookDelivery.objects.get()
    resolving_to(monkeypatch, "127.0.0.1")
    with pytest.raises(webhooks.DeliveryFailed):
        webhooks.delivery_send(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert receiver.requests == []
    assert "internal address" in delivery.error
    assert delivery.status == WebhookDelivery.Status.PENDING  # retried as any failure


def test_a_delivery_goes_through_when_private_addresses_are_allowed(
    project, receiver, monkeypatch, settings
):
    resolving_to(monkeypatch, "93.184.215.14")
    url = receiver.url.replace("127.0.0.1", "hooks.example.org")
    webhooks.webhook_create(project=project, url=url, events=["import.finished"])
    webhooks.event_emit(project_id=project.pk, event="import.finished", payload={})
    resolving_to(monkeypatch, "127.0.0.1")
    settings.ANNOTATION_WEBHOOK_ALLOW_PRIVATE = True
    assert webhooks.delivery_send(delivery_id=WebhookDelivery.objects.get().pk)
    assert len(receiver.requests) == 1


def test_the_worker_reads_allow_private_from_its_environment():
    """How the tests' Celery worker (tests/conftest.py) reaches the 127.0.0.1 receivers."""
    code = "from django.conf import settings; print(settings.ANNOTATION_WEBHOOK_ALLOW_PRIVATE)"
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="config.settings.test")
    answers = []
    for value in ("1", "0"):
        env["ANNOTATION_WEBHOOK_ALLOW_PRIVATE"] = value
        done = subprocess.run(
            [sys.executable, "-c", "import django; django.setup(); " + code],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        answers.append(done.stdout.strip())
    assert answers == ["True", "False"]
