"""Webhooks: a project's events POSTed to the URLs its managers register, at least once.

Events: `round.finished`, `labels.created` (batched: at most one delivery per
ANNOTATION_WEBHOOK_BATCH_SECONDS per hook, holding every label given since the last),
`budget.exhausted`, `import.finished`. An event becomes one WebhookDelivery row per
subscribed hook in the transaction that caused it, and each row is sent by a Celery task
after the commit (dispatch.send_webhook_delivery), retried with exponential back-off
until the receiver answers 2xx or the retries are spent (then `failed`). A receiver may see
a delivery twice (a retry after a lost answer): `X-Webhook-Delivery` is its id.

Signing: `X-Webhook-Signature: sha256=HEX`, the HMAC-SHA256 with the hook's secret of
`TIMESTAMP.BODY` (UTF-8), with `X-Webhook-Timestamp: TIMESTAMP` (Unix seconds). A receiver
recomputes it (webhook_signature) and refuses old timestamps (replays).

Addresses: a hook's URL must lead to a public address (no loopback, private, link-local,
cloud metadata, shared, reserved or multicast address), checked when the hook is
registered and again at each delivery, on the addresses the host resolves to then: the
connection goes to the address that was checked (no second lookup a DNS answer could
change in between), redirects are checked alike, and no HTTP proxy is used.
ANNOTATION_WEBHOOK_ALLOW_PRIVATE=1 turns the check off (a receiver on the same machine or
network; the tests).
"""

import hashlib
import hmac
import http.client
import ipaddress
import json
import secrets
import socket
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from annotation.errors import ValidationFailed
from annotation.models import Annotation, Project, Webhook, WebhookDelivery
from annotation.services import dispatch

ROUND_FINISHED = "round.finished"
LABELS_CREATED = "labels.created"
BUDGET_EXHAUSTED = "budget.exhausted"
IMPORT_FINISHED = "import.finished"
EVENTS = (ROUND_FINISHED, LABELS_CREATED, BUDGET_EXHAUSTED, IMPORT_FINISHED)
LABELS_PER_DELIVERY = 1000
TIMEOUT_SECONDS = 10


class DeliveryFailed(Exception):
    """The receiver did not answer 2xx: the task retries with back-off."""


class AddressRefused(OSError):
    """The webhook's host resolves to an address webhooks may not reach."""


def address_refused(address: str) -> bool:
    """Whether webhooks may not reach the IP `address`: anything but a global unicast
    address (an IPv4 address mapped into IPv6 is judged as IPv4)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone id: link-local
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def _resolve(host: str, port: int) -> list[tuple]:
    """getaddrinfo's TCP answers for `host`; AddressRefused when any of them is refused
    (a name that resolves to a public and a private address is refused)."""
    answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    for *_, sockaddr in answers:
        if address_refused(sockaddr[0]):
            raise AddressRefused(
                f"{host} resolves to {sockaddr[0]}, an internal address (loopback, private, "
                "link-local or reserved): webhooks go to public addresses only"
            )
    return answers


def _connect(address, timeout=socket._GLOBAL_DEFAULT_TIMEOUT, source_address=None):
    """socket.create_connection that checks the addresses first (unless
    ANNOTATION_WEBHOOK_ALLOW_PRIVATE) and connects to a checked one."""
    host, port = address
    if settings.ANNOTATION_WEBHOOK_ALLOW_PRIVATE:
        return socket.create_connection(address, timeout, source_address)
    error: OSError | None = None
    for family, kind, proto, _, sockaddr in _resolve(host, port):
        sock = socket.socket(family, kind, proto)
        try:
            if timeout is not socket._GLOBAL_DEFAULT_TIMEOUT:
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
    raise error or OSError(f"{host} has no address")


class _HTTPConnection(http.client.HTTPConnection):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._create_connection = _connect  # http.client's hook (set in its __init__)


class _HTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._create_connection = _connect


class _HTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req):
        return self.do_open(_HTTPConnection, req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req):
        return self.do_open(_HTTPSConnection, req, context=self._context)


def _build_opener() -> urllib.request.OpenerDirector:
    """urllib's opener for http(s) only (a redirect to ftp:// or file:// is an unknown URL
    type), without proxies (a proxy would be the address checked), its connections made
    by _connect."""
    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.UnknownHandler(),
        _HTTPHandler(),
        _HTTPSHandler(),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPRedirectHandler(),
        urllib.request.HTTPErrorProcessor(),
    ):
        opener.add_handler(handler)
    return opener


_opener = _build_opener()


def webhook_url_check(url: str) -> None:
    """Refuse (a 400 naming `url`) a URL that is not http(s), has no host, or whose host
    resolves to an address webhooks may not reach (unless ANNOTATION_WEBHOOK_ALLOW_PRIVATE)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValidationFailed("The URL must be http:// or https://.", field="url")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise ValidationFailed(f"The URL's port is not valid: {exc}.", field="url") from exc
    if not parts.hostname:
        raise ValidationFailed("The URL has no host.", field="url")
    if settings.ANNOTATION_WEBHOOK_ALLOW_PRIVATE:
        return
    try:
        _resolve(parts.hostname, port)
    except AddressRefused as exc:
        raise ValidationFailed(f"The URL's host {exc}.", field="url") from exc
    except (OSError, UnicodeError) as exc:
        raise ValidationFailed(
            f"The URL's host {parts.hostname} does not resolve ({exc}).", field="url"
        ) from exc


def webhook_create(*, project: Project, url: str, events: list[str]) -> Webhook:
    webhook_url_check(url)
    unknown = [e for e in events if e not in EVENTS]
    if not events or unknown:
        raise ValidationFailed(f"Events must be among: {', '.join(EVENTS)}.", field="events")
    return Webhook.objects.create(
        project=project, url=url, events=sorted(set(events)), secret=secrets.token_hex(32)
    )


def webhook_signature(*, secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=` and the hex HMAC-SHA256 of `timestamp.body` under `secret`."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def event_emit(*, project_id: int, event: str, payload: dict) -> int:
    """Record `event` for every active hook of the project that wants it and send each
    after the surrounding transaction commits. Returns how many deliveries were made."""
    hooks = Webhook.objects.filter(project_id=project_id, active=True, events__contains=[event])
    deliveries = WebhookDelivery.objects.bulk_create(
        WebhookDelivery(webhook=hook, event=event, payload=payload) for hook in hooks
    )
    for delivery in deliveries:
        transaction.on_commit(lambda pk=delivery.pk: dispatch.send_webhook_delivery(pk))
    return len(deliveries)


def label_events(*, project: Project) -> None:
    """After a label was given: schedule the labels.created batch of the hooks that want
    one and have none scheduled (one UPDATE; none when project_for_member found that the
    project has no such hook), and
    emit budget.exhausted when this label spent the last of the budget (`project.spent`
    is as after the label)."""
    scheduled = getattr(project, "has_label_hooks", True) and (
        Webhook.objects.filter(
            project_id=project.pk,
            active=True,
            labels_scheduled=False,
            events__contains=[LABELS_CREATED],
        ).update(labels_scheduled=True)
    )
    if scheduled:
        transaction.on_commit(lambda: dispatch.send_webhook_labels(project.pk))
    if project.spent >= project.budget:
        event_emit(
            project_id=project.pk,
            event=BUDGET_EXHAUSTED,
            payload={"project": project.pk, "budget": str(project.budget)},
        )


def labels_batch(*, project_id: int) -> int:
    """Make one labels.created delivery per scheduled hook, with the labels given since
    its last batch (at most LABELS_PER_DELIVERY; a fuller batch schedules the next one).
    Holds each hook's row lock, so two runs make no duplicate batch."""
    made = 0
    with transaction.atomic():
        hooks = Webhook.objects.select_for_update().filter(
            project_id=project_id, labels_scheduled=True
        )
        for hook in hooks:
            labels = list(
                Annotation.objects.filter(item__project_id=project_id, id__gt=hook.labels_after)
                .order_by("id")
                .values(
                    "id",
                    "item_id",
                    "item__external_id",
                    "label",
                    "annotator__username",
                    "created_at",
                )[:LABELS_PER_DELIVERY]
            )
            more = len(labels) == LABELS_PER_DELIVERY
            hook.labels_scheduled = more
            if labels:
                hook.labels_after = labels[-1]["id"]
                delivery = WebhookDelivery.objects.create(
                    webhook=hook,
                    event=LABELS_CREATED,
                    payload={
                        "project": project_id,
                        "labels": [
                            {
                                "item": row["item_id"],
                                "external_id": row["item__external_id"],
                                "label": row["label"],
                                "annotator": row["annotator__username"],
                                "labeled_at": row["created_at"].isoformat(),
                            }
                            for row in labels
                        ],
                    },
                )
                transaction.on_commit(lambda pk=delivery.pk: dispatch.send_webhook_delivery(pk))
                made += 1
            hook.save(update_fields=["labels_scheduled", "labels_after"])
            if more:
                transaction.on_commit(lambda: dispatch.send_webhook_labels(project_id))
    return made


def delivery_send(*, delivery_id: int, final: bool = False) -> bool:
    """POST the delivery, signed; record the attempt. Returns True when delivered (or
    already delivered), raises DeliveryFailed otherwise (`final`: the last attempt, the
    delivery is marked failed first)."""
    delivery = WebhookDelivery.objects.select_related("webhook").filter(pk=delivery_id).first()
    if delivery is None or delivery.status != WebhookDelivery.Status.PENDING:
        return True
    hook = delivery.webhook
    body = json.dumps(
        {"event": delivery.event, "delivery": delivery.pk, "data": delivery.payload},
        ensure_ascii=False,
    ).encode()
    timestamp = str(int(time.time()))
    request = urllib.request.Request(
        hook.url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "annotation-webhooks/1",
            "X-Webhook-Event": delivery.event,
            "X-Webhook-Delivery": str(delivery.pk),
            "X-Webhook-Timestamp": timestamp,
            "X-Webhook-Signature": webhook_signature(
                secret=hook.secret, timestamp=timestamp, body=body
            ),
        },
    )
    status, error = None, ""
    try:
        with _opener.open(request, timeout=TIMEOUT_SECONDS) as answer:
            status = answer.status
    except urllib.error.HTTPError as exc:
        status, error = exc.code, f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        error = f"{type(exc).__name__}: {exc}"[:1000]
    delivered = status is not None and 200 <= status < 300
    state = WebhookDelivery.Status
    WebhookDelivery.objects.filter(pk=delivery.pk, status=state.PENDING).update(
        attempts=delivery.attempts + 1,
        response_status=status,
        error=error,
        status=state.DELIVERED if delivered else (state.FAILED if final else state.PENDING),
        delivered_at=timezone.now() if delivered else None,
    )
    if not delivered:
        raise DeliveryFailed(error)
    return True
