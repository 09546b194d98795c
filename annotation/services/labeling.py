"""What an annotator's requests do: the item-life changes of annotation.services.queue,
and a new round when the free queue runs low.

Kept apart from `queue` so the import graph has no circle: rounds queue their picks
through `queue`, and this module, above both, starts rounds after hand-outs and skips.
"""

from annotation.models import Item, Project
from annotation.services import queue
from annotation.services.rounds import round_maybe_start


def item_next_for(
    *, project: Project, user, exclude: tuple[int, ...] = ()
) -> tuple[Item | None, str]:
    """Lease the best free queued item to `user` (queue.item_lease; `exclude`: held items
    not to hand back); start a round when the free queue is under the low-water mark or
    nothing is left for the caller."""
    item, state, low = queue.item_lease(project=project, user=user, exclude=exclude)
    if low:
        round_maybe_start(project_id=project.pk)
    return item, state


def item_skip(*, project: Project, user, item_id: int) -> Item:
    """Pass on a leased item (queue.item_skip); a round may be due after it."""
    item = queue.item_skip(project=project, user=user, item_id=item_id)
    round_maybe_start(project_id=project.pk)
    return item
