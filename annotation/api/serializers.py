import math
from decimal import Decimal

from rest_framework import serializers

from annotation.models import (
    ACQUISITION_CHOICES,
    DEFAULT_ACQUISITION,
    BudgetGroup,
    CostRule,
    Item,
    Membership,
    Project,
    Round,
    Webhook,
    WebhookDelivery,
)
from annotation.services.webhooks import EVENTS as WEBHOOK_EVENTS

MAX_LABELS = 50
MAX_ID = 2**63 - 1  # a bigint primary key


class FiniteFloatField(serializers.FloatField):
    """A FloatField that answers 400, not 500, for integers too large for a float (10**400
    raises OverflowError, which DRF's field lets through) and refuses inf and NaN."""

    def to_internal_value(self, data):
        try:
            value = super().to_internal_value(data)
        except OverflowError:
            self.fail("invalid")
        if not math.isfinite(value):
            self.fail("invalid")
        return value


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know, naming them (a typo must not pass silently)."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            read_only = sorted(k for k in data if k in self.fields and self.fields[k].read_only)
            errors = {k: ["Unknown field."] for k in unknown}
            errors.update({k: ["This field is read-only."] for k in read_only})
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


def validate_labels(value: list[str]) -> list[str]:
    if not value:
        raise serializers.ValidationError("Give at least one label.")
    if len(value) > MAX_LABELS:
        raise serializers.ValidationError(f"At most {MAX_LABELS} labels.")
    if len(set(value)) != len(value):
        raise serializers.ValidationError("Labels must be distinct.")
    return value


# Keys the labeling page keeps for itself (skip, change last, key map, filter, accept, back).
RESERVED_KEYS = {
    "s": "skip",
    "u": "change the last label",
    "?": "the key map",
    "/": "the filter",
    "z": "zooming an image",
}


def validate_keymap(value) -> dict:
    """{label: key}: one printable, non-blank character per label, no key twice, none of
    the page's own keys (s, u, ?, /, Enter, Esc; letters in either case). The labels are
    checked against the project's in ProjectSerializer.validate."""
    if not isinstance(value, dict):
        raise serializers.ValidationError("Give an object {label: key}.")
    seen: dict[str, str] = {}
    for label, key in value.items():
        if not isinstance(key, str) or len(key) != 1 or not key.isprintable() or key.isspace():
            raise serializers.ValidationError(
                f"The key of {label!r} must be one printable character (not a space), not {key!r}."
            )
        if key.lower() in RESERVED_KEYS:
            raise serializers.ValidationError(
                f"{key!r} ({label!r}) is the page's key for {RESERVED_KEYS[key.lower()]}; "
                "choose another (s, u, ?, /, Enter and Esc are taken)."
            )
        if key.lower() in seen:
            raise serializers.ValidationError(
                f"{label!r} and {seen[key.lower()]!r} both use the key {key!r}."
            )
        seen[key.lower()] = label
    return value


class ProjectSerializer(StrictSerializer, serializers.ModelSerializer):
    labels = serializers.ListField(
        child=serializers.CharField(max_length=200, allow_blank=False), validators=[validate_labels]
    )
    budget = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=0)
    acquisition = serializers.ChoiceField(choices=ACQUISITION_CHOICES, default=DEFAULT_ACQUISITION)
    batch_size = serializers.IntegerField(min_value=1, max_value=10_000, default=20)
    ensemble_size = serializers.IntegerField(min_value=1, max_value=32, default=5)
    lease_seconds = serializers.IntegerField(min_value=10, max_value=7 * 24 * 3600, default=600)
    cost_rule = serializers.ChoiceField(choices=CostRule.choices, default=CostRule.GIVEN)
    cost_value = serializers.DecimalField(
        max_digits=14, decimal_places=2, min_value=Decimal("0.01"), default=Decimal(1)
    )
    cost_floor = serializers.DecimalField(
        max_digits=14, decimal_places=2, min_value=Decimal("0.01"), default=Decimal("0.01")
    )
    queue_low_water = serializers.IntegerField(
        min_value=0, max_value=10_000, allow_null=True, required=False
    )
    out_of_scope_label = serializers.CharField(max_length=200, allow_blank=True, required=False)
    out_of_scope_threshold = FiniteFloatField(min_value=0.5, max_value=1.0, required=False)
    audit_share = FiniteFloatField(
        min_value=0.0,
        max_value=0.5,
        required=False,
        help_text="Share of each trained round's batch picked uniformly at random to estimate "
        "the model's accuracy without bias (0 turns the audit slice off).",
    )
    group_mode = serializers.ChoiceField(
        choices=Project.GroupMode.choices,
        default=Project.GroupMode.FIXED,
        help_text="fixed: group budgets only; adaptive: each trained round spends where a "
        "group's learning curve predicts the most gain per unit of cost.",
    )
    group_floor = FiniteFloatField(
        min_value=0.0,
        max_value=1.0,
        default=0.1,
        help_text="adaptive: the least share of each batch every group gets (0 to 1).",
    )
    keymap = serializers.JSONField(
        required=False,
        validators=[validate_keymap],
        help_text='Keys of the labeling page: {label: key}, e.g. {"cat": "c"}. Labels not '
        "in it keep their default key (1-9, 0 by position) unless the map uses it.",
    )
    remaining = serializers.DecimalField(max_digits=14, decimal_places=2, read_only=True)
    item_count = serializers.IntegerField(read_only=True, default=0)
    labeled_count = serializers.IntegerField(read_only=True, default=0)
    featurized_count = serializers.IntegerField(read_only=True, default=0)
    featurize_failed_count = serializers.IntegerField(
        read_only=True, default=0, help_text="Items that cannot be featurized (see items' errors)."
    )

    class Meta:
        model = Project
        fields = [
            "id",
            "name",
            "labels",
            "kind",
            "budget",
            "spent",
            "reserved",
            "remaining",
            "acquisition",
            "batch_size",
            "ensemble_size",
            "queue_low_water",
            "lease_seconds",
            "cost_rule",
            "cost_value",
            "cost_floor",
            "out_of_scope_label",
            "out_of_scope_threshold",
            "text_featurizer",
            "show_predictions",
            "audit_share",
            "group_mode",
            "group_floor",
            "paused",
            "keymap",
            "item_count",
            "labeled_count",
            "featurized_count",
            "featurize_failed_count",
            "featurize_error",
            "round",
            "created_at",
        ]
        read_only_fields = [
            "id",
            "kind",
            "spent",
            "reserved",
            "round",
            "created_at",
            "featurize_error",
        ]

    def validate(self, attrs):
        labels = attrs.get("labels", self.instance.labels if self.instance else [])
        oos = attrs.get(
            "out_of_scope_label", self.instance.out_of_scope_label if self.instance else ""
        )
        if oos and oos not in labels:
            raise serializers.ValidationError(
                {"out_of_scope_label": ["It must be one of the labels."]}
            )
        keymap = attrs.get("keymap", self.instance.keymap if self.instance else {})
        unknown = sorted(set(keymap) - set(labels))
        if unknown:
            raise serializers.ValidationError(
                {"keymap": [f"{unknown[0]!r} is not one of the labels: {', '.join(labels)}."]}
            )
        return attrs


class ItemOutSerializer(serializers.ModelSerializer):
    round = serializers.IntegerField(source="queued_round", read_only=True)

    class Meta:
        model = Item
        fields = [
            "id",
            "external_id",
            "text",
            "image",
            "features",
            "meta",
            "cost",
            "group",
            "status",
            "round",
            "acquisition",
            "score",
        ]

    def to_representation(self, instance):
        data = super().to_representation(instance)
        for field in ("text", "image", "features"):
            if data[field] in ("", None):
                data.pop(field)
        return data


def item_public(item: Item, *, suggestions: bool = False, provenance: bool = False) -> dict:
    """What an annotator sees of an item: content and meta, nothing of its score; with
    `suggestions` (the project's show_predictions), the model's top labels as
    `suggestion`: [{"label", "probability"}, ...], best first (empty if none yet); with
    `provenance` (managers), `queued_by`: {"round", "strategy", "score"} that queued it."""
    data = {"id": item.id, "external_id": item.external_id, "meta": item.meta}
    if provenance:
        data["queued_by"] = {
            "round": item.queued_round,
            "strategy": item.acquisition,
            "score": item.score,
        }
    if suggestions:
        labels = (item.prediction or {}).get("labels", [])
        data["suggestion"] = [{"label": name, "probability": p} for name, p in labels]
    if item.features is not None:
        data["features"] = item.features
    elif item.image:
        data["image"] = item.image
    else:
        data["text"] = item.text
    return data


class AnnotationInSerializer(StrictSerializer):
    item = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    label = serializers.CharField(max_length=200)
    next = serializers.BooleanField(
        default=False, help_text="Also lease the next item and return it as `next`."
    )


class SkipInSerializer(StrictSerializer):
    item = serializers.IntegerField(min_value=1, max_value=MAX_ID)


class NextInSerializer(StrictSerializer):
    """`exclude`: items the caller holds and already shows (a page that prefetches asks
    for one more item besides them)."""

    exclude = serializers.ListField(
        child=serializers.IntegerField(min_value=1), max_length=20, required=False, default=list
    )


class LeaseInSerializer(StrictSerializer):
    item = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    action = serializers.ChoiceField(["renew", "release"])


class MembershipInSerializer(StrictSerializer):
    username = serializers.CharField(max_length=150)
    role = serializers.ChoiceField(choices=Membership.Role.choices)
    # A PositiveIntegerField's column (PostgreSQL `integer`) holds at most 2**31 - 1.
    quota_total = serializers.IntegerField(
        min_value=0, max_value=2**31 - 1, required=False, allow_null=True
    )
    quota_daily = serializers.IntegerField(
        min_value=0, max_value=2**31 - 1, required=False, allow_null=True
    )


class MembershipOutSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username")

    class Meta:
        model = Membership
        fields = ["username", "role", "quota_total", "quota_daily"]


ROUND_FAILED = "The round failed; the project's managers can see why."


class RoundSerializer(serializers.ModelSerializer):
    """A round; its `error` text (an exception's message) only for managers (context
    `manager`), a generic line for everyone else.

    `accuracy` is out-of-bag on the labeled set (actively chosen, hard items: biased);
    audit_* is the unbiased estimate from the round's uniform audit slice, with its 95%
    Wilson interval (None until one of its audit items is labeled)."""

    audit_labeled = serializers.IntegerField(read_only=True)
    audit_accuracy = serializers.FloatField(read_only=True, allow_null=True)
    audit_low = serializers.FloatField(read_only=True, allow_null=True)
    audit_high = serializers.FloatField(read_only=True, allow_null=True)

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if data["error"] and not self.context.get("manager"):
            data["error"] = ROUND_FAILED
        return data

    class Meta:
        model = Round
        fields = [
            "number",
            "status",
            "strategy",
            "cold_start",
            "labeled_count",
            "budget_spent",
            "pool_size",
            "shard_count",
            "queued_count",
            "queued_cost",
            "accuracy",
            "audit_count",
            "audit_labeled",
            "audit_accuracy",
            "audit_low",
            "audit_high",
            "strategy_reason",
            "group_stats",
            "started_at",
            "finished_at",
            "seconds",
            "error",
        ]


class BudgetGroupSerializer(StrictSerializer, serializers.ModelSerializer):
    share = serializers.DecimalField(
        max_digits=5, decimal_places=4, min_value=0, max_value=1, required=False, allow_null=True
    )
    budget = serializers.DecimalField(
        max_digits=14, decimal_places=2, min_value=0, required=False, allow_null=True
    )
    remaining = serializers.DecimalField(max_digits=14, decimal_places=2, read_only=True)

    class Meta:
        model = BudgetGroup
        fields = ["name", "share", "budget", "spent", "reserved", "remaining"]
        read_only_fields = ["spent", "reserved"]
        # Names are validated as a set by the service (the model's unique constraint would
        # otherwise make DRF query per entry).
        validators = []


class WebhookInSerializer(StrictSerializer):
    url = serializers.URLField(max_length=2000)
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=WEBHOOK_EVENTS), allow_empty=False
    )


class WebhookOutSerializer(serializers.ModelSerializer):
    class Meta:
        model = Webhook
        fields = ["id", "url", "events", "secret", "active", "created_at"]


class WebhookDeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "event",
            "payload",
            "status",
            "attempts",
            "response_status",
            "error",
            "created_at",
            "delivered_at",
        ]
