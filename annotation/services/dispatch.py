"""Every Celery send of the server, as one typed function per task.

Services call these; tasks call services. The tasks are addressed by their registered
names (annotation.tasks names each one with the constants below), so this module imports
no task and services never import annotation.tasks: no import circle. A signature resolves
its task in the app's registry when sent, so eager mode (tests) runs it in place.

A send that fails because the broker is down is logged and answered False: labels never
depend on the broker (they live in the database), and the callers have their own way back
(a round is failed at once and retried by a later request; a featurize heartbeat goes
stale and is re-sent).
"""

import logging

from celery import current_app, group
from django.conf import settings

logger = logging.getLogger(__name__)

FEATURIZE = "annotation.items_featurize"
ROUND_RUN = "annotation.round_run"
ROUND_SHARD = "annotation.round_score_shard"
ROUND_REDUCE = "annotation.round_reduce"
WEBHOOK_DELIVER = "annotation.webhook_deliver"
WEBHOOK_LABELS = "annotation.webhook_labels"


def _send(name: str, *args, queue: str | None = None) -> bool:
    try:
        current_app.signature(name, args=args, queue=queue).apply_async()
    except Exception as exc:  # kombu raises OperationalError and friends when Redis is down
        logger.warning("could not send %s%s: %s", name, args, exc)
        return False
    return True


def send_featurize(project_id: int) -> bool:
    """Featurize the project's items that have no vector yet (on the featurize queue)."""
    return _send(FEATURIZE, project_id, queue=settings.ANNOTATION_FEATURIZE_QUEUE)


def send_round_run(round_id: int) -> bool:
    """Train (or cold-start) the round and send its shards."""
    return _send(ROUND_RUN, round_id)


def send_round_shards(round_id: int, indexes: list[int]) -> bool:
    """Score the round's shards `indexes`, one task each, as one Celery group."""
    if not indexes:
        return True
    try:
        group(
            current_app.signature(ROUND_SHARD, args=(round_id, index)) for index in indexes
        ).apply_async()
    except Exception as exc:
        logger.warning("could not send the shards of round %s: %s", round_id, exc)
        return False
    return True


def send_round_reduce(round_id: int) -> bool:
    """Merge the round's shard candidates and queue its batch."""
    return _send(ROUND_REDUCE, round_id)


def send_webhook_delivery(delivery_id: int) -> bool:
    """POST one webhook delivery (the task retries it with back-off)."""
    return _send(WEBHOOK_DELIVER, delivery_id)


def send_webhook_labels(project_id: int) -> bool:
    """Batch the project's new labels into labels.created deliveries, after
    ANNOTATION_WEBHOOK_BATCH_SECONDS (default 5) so one delivery carries many labels."""
    seconds = int(getattr(settings, "ANNOTATION_WEBHOOK_BATCH_SECONDS", 5))
    try:
        current_app.signature(WEBHOOK_LABELS, args=(project_id,)).apply_async(countdown=seconds)
    except Exception as exc:
        logger.warning("could not send %s(%s): %s", WEBHOOK_LABELS, project_id, exc)
        return False
    return True
