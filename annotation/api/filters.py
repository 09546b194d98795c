"""Filters, ordering and cursor pagination of the item list (django-filter, DRF)."""

import django_filters
from rest_framework.pagination import CursorPagination

from annotation.models import Item

ORDERING = {
    "id": "id",
    "cost": "cost",
    "score": "score",
    "created_at": "created_at",
    "queued_round": "round",
}


class ItemFilter(django_filters.FilterSet):
    """`?status=&group=&external_id=&round=&labeled_by=&featurized=&ordering=-score`."""

    status = django_filters.ChoiceFilter(choices=Item.Status.choices)
    group = django_filters.CharFilter()
    external_id = django_filters.CharFilter()
    round = django_filters.NumberFilter(field_name="queued_round")
    labeled_by = django_filters.CharFilter(field_name="annotation__annotator__username")
    featurized = django_filters.BooleanFilter(
        field_name="vector", lookup_expr="isnull", exclude=True
    )
    ordering = django_filters.OrderingFilter(fields=tuple(ORDERING.items()))

    class Meta:
        model = Item
        fields = []

    def order_fields(self) -> tuple[str, ...]:
        """The model fields the list is ordered by, ending with `id` (a unique key: the
        cursor pagination's position needs one)."""
        wanted = self.form.cleaned_data.get("ordering") or []
        by_param = {param: field for field, param in ORDERING.items()}
        fields = [("-" if w.startswith("-") else "") + by_param[w.lstrip("-")] for w in wanted]
        if not any(f.lstrip("-") == "id" for f in fields):
            fields.append("id")
        return tuple(fields)


class ItemCursorPagination(CursorPagination):
    """`?pagination=cursor`: constant-time pages however deep the list (no OFFSET)."""

    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000

    def __init__(self, ordering: tuple[str, ...]):
        self.ordering = ordering
