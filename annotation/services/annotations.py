"""Labels: submit (spends the reserved cost), idempotent repeats and relabeling."""

from django.db import transaction

from annotation.errors import Conflict, ValidationFailed
from annotation.models import Annotation, Assignment, Item, Project
from annotation.services.budgets import budget_spend_reserved
from annotation.services.items import item_get_for_update


def annotation_submit(
    *, project: Project, user, item_id: int, label: str
) -> tuple[Annotation, bool]:
    """Record `user`'s label for an item; returns (annotation, created).

    Holds the item's row lock for the whole decision, so a label and a concurrent hand-out,
    skip or second label of the same item are serialized. Cases:
    - the item is queued and leased to the user (even if the lease has expired, as long as
      nobody else was handed it since): the label is stored, the reserved cost is spent;
    - the user already labeled it: same label -> nothing changes (idempotent), another
      label -> the label is changed at no new cost;
    - anything else (someone else holds or labeled it, it is not queued) -> 409.
    """
    if label not in project.labels:
        raise ValidationFailed(
            f"{label!r} is not one of this project's labels: {', '.join(project.labels)}.",
            field="label",
        )
    with transaction.atomic():
        item = item_get_for_update(project=project, item_id=item_id)
        if item.status == Item.Status.LABELED:
            annotation = Annotation.objects.select_for_update().get(item=item)
            if annotation.annotator_id != user.pk:
                raise Conflict("This item was labeled by someone else.", field="item")
            if annotation.label != label:
                annotation.label = label
                annotation.save(update_fields=["label", "updated_at"])
            return annotation, False
        # The lease may have expired: the label still counts while nobody else took the
        # item (leased_to is only overwritten by another hand-out) and it is still queued,
        # which means its cost is still reserved.
        if item.status != Item.Status.QUEUED or item.leased_to_id != user.pk:
            raise Conflict("This item is not assigned to you.", field="item")
        budget_spend_reserved(project_id=project.pk, cost=item.cost, group=item.group)
        Item.objects.filter(pk=item.pk).update(
            status=Item.Status.LABELED, leased_to=None, lease_expires_at=None
        )
        Assignment.objects.filter(item=item, status=Assignment.Status.ACTIVE).update(
            status=Assignment.Status.SUBMITTED
        )
        annotation = Annotation.objects.create(
            item=item, annotator=user, label=label, cost=item.cost
        )
    return annotation, True


def annotation_last_for(*, project: Project, user) -> Annotation | None:
    """The user's most recent label in the project (the labeling page's `u` key)."""
    return (
        Annotation.objects.filter(item__project=project, annotator=user)
        .select_related("item")
        .order_by("-updated_at", "-id")
        .first()
    )
