"""Webhooks: registration, signed deliveries to a receiver on 127.0.0.1, retries with
back-off, the labels.created batch, the events and the delivery log (Celery eager)."""

import hashlib
import hmac
import json
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from celery.exceptions import Retry
from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotation.models import WebhookDelivery
from annotation.services import dispatch, webhooks
from annotation.services.imports import items_import
from annotation.services.labeling import item_next_for
from annotation.services.queue import annotation_submit
from annotation.tasks import webhook_deliver_task
from config.celery import app
from tests.conftest import api_client
from tests.factories import ItemFactory, queue

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def allow_private(settings):
    """The receiver is on 127.0.0.1 (test_webhook_urls.py tests the refusal)."""
    settings.ANNOTATION_WEBHOOK_ALLOW_PRIVATE = True


@pytest.fixture
def eager(monkeypatch):
    app.conf.task_always_eager = True
    monkeypatch.setattr(dispatch, "send_featurize", lambda project_id: True)
    yield
    app.conf.task_always_eager = False


class Receiver:
    """An HTTP server on 127.0.0.1 that records each POST and answers the next status of
    `answers` (200 once they run out)."""

    def __init__(self):
        self.requests: list[tuple[dict, bytes]] = []
        self.answers: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                self.send_response(receiver.answers.pop(0) if receiver.answers else 200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[str]:
        return [json.loads(body)["event"] for _, body in self.requests]


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.server.shutdown()


def hook_for(project, receiver, *events):
    return webhooks.webhook_create(project=project, url=receiver.url, events=list(events))


def test_manager_registers_a_webhook_and_gets_its_secret(project, manager, receiver):
    response = api_client(manager).post(
        f"/api/projects/{project.id}/webhooks/",
        {"url": receiver.url, "events": ["round.finished"]},
        format="json",
    )
    assert response.status_code == 201
    assert len(response.json()["secret"]) == 64


def test_unknown_event_is_refused_naming_events(project, manager, receiver):
    response = api_client(manager).post(
        f"/api/projects/{project.id}/webhooks/",
        {"url": receiver.url, "events": ["item.sneezed"]},
        format="json",
    )
    assert response.status_code == 400
    assert "events" in response.json()


def test_annotator_cannot_register_webhooks(project, annotator, receiver):
    response = api_client(annotator).post(
        f"/api/projects/{project.id}/webhooks/",
        {"url": receiver.url, "events": ["round.finished"]},
        format="json",
    )
    assert response.status_code == 403


def test_import_finished_is_delivered_signed(eager, project, receiver):
    hook = hook_for(project, receiver, "import.finished")
    items_import(project=project, rows=[{"text": "a"}, {"text": "b"}])
    ((headers, body),) = receiver.requests
    assert json.loads(body)["data"] == {"created": 2}
    signed = headers["X-Webhook-Timestamp"].encode() + b"." + body
    expected = "sha256=" + hmac.new(hook.secret.encode(), signed, hashlib.sha256).hexdigest()
    assert headers["X-Webhook-Signature"] == expected
    assert headers["X-Webhook-Event"] == "import.finished"


@pytest.fixture
def sent(monkeypatch):
    """Delivery ids sent to Celery (not run): the tests run each attempt as the worker
    would, as the n-th retry."""
    sent = []
    monkeypatch.setattr(dispatch, "send_webhook_delivery", sent.append)
    monkeypatch.setattr(dispatch, "send_featurize", lambda project_id: True)
    return sent


def attempts(delivery_id: int, count: int) -> list[str]:
    """Run the delivery task `count` times as Celery's retries 0, 1, ... would: "RETRY"
    when it asks Celery for a retry (task.retry; called outside a worker it re-raises
    the delivery's error), "SUCCESS" when it returns."""
    states = []
    for n in range(count):
        webhook_deliver_task.push_request(id=f"test-{n}", retries=n, is_eager=True)
        try:
            webhook_deliver_task.run(delivery_id)
            states.append("SUCCESS")
        except (Retry, webhooks.DeliveryFailed):
            states.append("RETRY")
        finally:
            webhook_deliver_task.pop_request()
    return states


def test_a_refused_delivery_is_retried_until_delivered(project, receiver, sent):
    hook_for(project, receiver, "import.finished")
    receiver.answers = [500, 503]
    items_import(project=project, rows=[{"text": "a"}])
    assert attempts(sent[0], 3) == ["RETRY", "RETRY", "SUCCESS"]
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("delivered", 3, 200)
    assert len(receiver.requests) == 3


def test_a_delivered_delivery_is_not_sent_again(project, receiver, sent):
    hook_for(project, receiver, "import.finished")
    items_import(project=project, rows=[{"text": "a"}])
    attempts(sent[0], 1)
    attempts(sent[0], 1)  # a redelivered task message
    assert len(receiver.requests) == 1


def test_a_delivery_failing_every_retry_is_marked_failed(project, receiver, sent):
    hook_for(project, receiver, "import.finished")
    receiver.answers = [500] * 20
    items_import(project=project, rows=[{"text": "a"}])
    states = attempts(sent[0], webhook_deliver_task.max_retries + 1)
    assert states[-1] == "SUCCESS" and set(states[:-1]) == {"RETRY"}
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.error) == ("failed", 9, "HTTP 500")


def test_round_finished_is_delivered(eager, project, receiver):
    hook_for(project, receiver, "round.finished")
    queue(project, [ItemFactory(project=project)])
    assert receiver.events() == ["round.finished"]
    assert json.loads(receiver.requests[0][1])["data"]["queued"] == 1


def label_all(project, user, labels):
    for label in labels:
        item, _ = item_next_for(project=project, user=user)
        annotation_submit(project=project, user=user, item_id=item.id, label=label)


def test_labels_created_are_batched_into_one_delivery(
    eager, project, annotator, receiver, monkeypatch
):
    hook_for(project, receiver, "labels.created")
    queue(project, [ItemFactory(project=project) for _ in range(3)])
    scheduled = []
    monkeypatch.setattr(dispatch, "send_webhook_labels", scheduled.append)
    label_all(project, annotator, ["cat", "dog", "cat"])
    assert scheduled == [project.id]  # one batch scheduled for the three labels
    webhooks.labels_batch(project_id=project.id)
    ((_, body),) = receiver.requests
    assert [row["label"] for row in json.loads(body)["data"]["labels"]] == ["cat", "dog", "cat"]


def test_a_second_batch_holds_only_later_labels(eager, project, annotator, receiver, monkeypatch):
    hook_for(project, receiver, "labels.created")
    queue(project, [ItemFactory(project=project) for _ in range(2)])
    monkeypatch.setattr(dispatch, "send_webhook_labels", lambda project_id: True)
    label_all(project, annotator, ["cat"])
    webhooks.labels_batch(project_id=project.id)
    label_all(project, annotator, ["dog"])
    webhooks.labels_batch(project_id=project.id)
    batches = [json.loads(body)["data"]["labels"] for _, body in receiver.requests]
    assert [[row["label"] for row in batch] for batch in batches] == [["cat"], ["dog"]]


def test_budget_exhausted_is_delivered_when_the_last_budget_is_spent(
    eager, project, annotator, receiver
):
    project.budget = Decimal(2)
    project.save(update_fields=["budget"])
    hook_for(project, receiver, "budget.exhausted")
    queue(project, [ItemFactory(project=project), ItemFactory(project=project)])
    label_all(project, annotator, ["cat"])
    assert receiver.events() == []
    label_all(project, annotator, ["dog"])
    assert receiver.events() == ["budget.exhausted"]


def test_manager_reads_the_delivery_log(project, manager, receiver, sent):
    hook = hook_for(project, receiver, "import.finished")
    receiver.answers = [500]
    items_import(project=project, rows=[{"text": "a"}])
    attempts(sent[0], 2)
    response = api_client(manager).get(f"/api/projects/{project.id}/webhooks/{hook.id}/deliveries/")
    (row,) = response.json()
    assert (row["event"], row["status"], row["attempts"]) == ("import.finished", "delivered", 2)


def test_annotator_cannot_read_the_delivery_log(project, annotator, receiver):
    hook = hook_for(project, receiver, "import.finished")
    url = f"/api/projects/{project.id}/webhooks/{hook.id}/deliveries/"
    assert api_client(annotator).get(url).status_code == 403


def label_by_api(project, user):
    client = api_client(user)
    item = client.post(f"/api/projects/{project.id}/next/").json()["item"]
    response = client.post(
        f"/api/projects/{project.id}/annotations/",
        {"item": item["id"], "label": "cat"},
        format="json",
    )
    assert response.status_code == 201


def test_a_label_through_the_api_schedules_the_batch_of_a_labels_hook(
    project, annotator, receiver, monkeypatch, django_capture_on_commit_callbacks
):
    hook = hook_for(project, receiver, "labels.created")
    queue(project, [ItemFactory(project=project)])
    scheduled = []
    monkeypatch.setattr(dispatch, "send_webhook_labels", scheduled.append)
    with django_capture_on_commit_callbacks(execute=True):
        label_by_api(project, annotator)
    hook.refresh_from_db()
    assert hook.labels_scheduled
    assert scheduled == [project.id]


def test_a_label_in_a_project_without_labels_hooks_does_not_look_for_one(
    project, annotator, receiver
):
    hook_for(project, receiver, "round.finished")
    queue(project, [ItemFactory(project=project)])
    with CaptureQueriesContext(connection) as queries:
        label_by_api(project, annotator)
    assert not [
        q for q in queries.captured_queries if q["sql"].startswith('UPDATE "annotation_webhook"')
    ]
