"""Celery tasks: thin, idempotent, by id. Each loads by id and calls one service.

acks_late and reject_on_worker_lost are on in settings: a task whose worker dies is run
again; the services guard on database state, so a second run does no double work. Only
transient database errors are retried; a bug fails the round with its error recorded.
"""

import logging

from celery import shared_task
from celery.utils.time import get_exponential_backoff_interval
from django.conf import settings
from django.db import InterfaceError, OperationalError

from annotation.services import dispatch, items, rounds, webhooks

logger = logging.getLogger(__name__)
TRANSIENT = (OperationalError, InterfaceError)
RETRY = {"autoretry_for": TRANSIENT, "retry_backoff": 2, "max_retries": 5}


@shared_task(name=dispatch.FEATURIZE, **RETRY)
def items_featurize_task(project_id: int) -> int:
    done, more = items.items_featurize(project_id=project_id)
    if more:  # the time slice is used up: the rest in a fresh task
        dispatch.send_featurize(project_id)
    rounds.round_maybe_start(project_id=project_id)
    return done


def _failing_round(round_id: int, exc: Exception) -> None:
    logger.exception("round %s failed", round_id)
    rounds.round_fail(round_id=round_id, error=f"{type(exc).__name__}: {exc}")


@shared_task(name=dispatch.ROUND_RUN, **RETRY)
def round_run_task(round_id: int) -> None:
    try:
        with rounds.round_beating(round_id):
            rounds.round_run(round_id=round_id)
    except TRANSIENT:
        raise
    except Exception as exc:
        _failing_round(round_id, exc)


@shared_task(name=dispatch.ROUND_SHARD, **RETRY)
def round_score_shard_task(round_id: int, index: int) -> None:
    try:
        with rounds.round_beating(round_id):
            rounds.round_score_shard(round_id=round_id, index=index)
    except TRANSIENT:
        raise
    except Exception as exc:
        _failing_round(round_id, exc)


@shared_task(name=dispatch.ROUND_REDUCE, **RETRY)
def round_reduce_task(round_id: int) -> None:
    try:
        with rounds.round_beating(round_id):
            rounds.round_reduce(round_id=round_id)
    except TRANSIENT:
        raise
    except Exception as exc:
        _failing_round(round_id, exc)


@shared_task(name=dispatch.WEBHOOK_LABELS, **RETRY)
def webhook_labels_task(project_id: int) -> int:
    return webhooks.labels_batch(project_id=project_id)


@shared_task(name=dispatch.WEBHOOK_DELIVER, bind=True, max_retries=8)
def webhook_deliver_task(self, delivery_id: int) -> None:
    """At least once: retried with exponential back-off (ANNOTATION_WEBHOOK_RETRY_SECONDS,
    doubling, at most 1 hour, full jitter) until the receiver answers 2xx; the last
    attempt marks the delivery failed."""
    final = self.request.retries >= self.max_retries
    try:
        webhooks.delivery_send(delivery_id=delivery_id, final=final)
    except webhooks.DeliveryFailed as exc:
        if final:
            logger.warning("webhook delivery %s failed for good: %s", delivery_id, exc)
            return
        factor = int(getattr(settings, "ANNOTATION_WEBHOOK_RETRY_SECONDS", 10))
        countdown = get_exponential_backoff_interval(factor, self.request.retries, 3600, True)
        raise self.retry(exc=exc, countdown=countdown) from exc
