"""State of the annotation server: the only source of truth for items, labels and budget.

Budget figures are stored on the project (and on each budget group) and changed only by
conditional UPDATEs in annotation.services.budgets; the CHECK constraints below make the
database itself refuse any write that would break `spent + reserved <= budget`.
"""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q

# The names of sampler.acquisition.ACQUISITIONS and "auto" (sampler.strategy); kept here so
# the web process does not have to import PyTorch (tests/annotation/test_settings.py checks
# the two lists agree).
ACQUISITION_CHOICES = [
    ("vote_entropy", "Vote entropy (ensemble)"),
    ("consensus_entropy", "Consensus entropy (ensemble)"),
    ("max_disagreement", "KL max disagreement (ensemble)"),
    ("bald", "BALD (ensemble)"),
    ("cal", "CAL: contrastive with labeled neighbours"),
    ("lftl", "LFTL: contrastive with the previous round's model"),
    ("entropy", "Entropy (single model)"),
    ("margin", "Margin (single model)"),
    ("least_confidence", "Least confidence (single model)"),
    ("random", "Random"),
    ("auto", "Auto: learns per project which strategy pays off (audit slice)"),
]

# Measured with `make bench` (bench/bench_simulate.py, digits, B=200, b=20, 5 seeds): the
# margin of the ensemble's mean reached random's final accuracy with 40% fewer labels,
# vote entropy with 30% fewer.
DEFAULT_ACQUISITION = "margin"

# Item.acquisition of the items a round picks uniformly at random (Project.audit_share).
AUDIT = "audit"

MONEY = {"max_digits": 14, "decimal_places": 2}


class CostRule(models.TextChoices):
    GIVEN = "given", "The item's own cost (1 if it gives none)"
    FLAT = "flat", "Flat: cost_value per item"
    TEXT_LENGTH = "text_length", "cost_value per 1,000 characters of text"
    IMAGE_SIZE = "image_size", "cost_value per megapixel of image"


class Project(models.Model):
    class GroupMode(models.TextChoices):
        FIXED = "fixed", "Fixed: group budgets only"
        ADAPTIVE = "adaptive", "Adaptive: follow each group's learning curve"

    class Kind(models.TextChoices):
        TEXT = "text"
        IMAGE = "image"
        FEATURES = "features"

    name = models.CharField(max_length=200)
    labels = models.JSONField(help_text="The label set: a list of distinct names.")
    kind = models.CharField(
        max_length=10, choices=Kind.choices, blank=True, help_text="Set by the first import."
    )

    class TextFeaturizer(models.TextChoices):
        MINILM = "minilm", "sentence embeddings (all-MiniLM-L6-v2)"
        HASHED = "hashed", "hashed word and character n-grams"

    text_featurizer = models.CharField(
        max_length=10,
        choices=TextFeaturizer.choices,
        default=TextFeaturizer.MINILM,
        help_text="How texts become feature vectors; fixed once items are featurized.",
    )
    budget = models.DecimalField(**MONEY, validators=[MinValueValidator(0)])
    spent = models.DecimalField(**MONEY, default=Decimal(0))
    reserved = models.DecimalField(**MONEY, default=Decimal(0))
    acquisition = models.CharField(
        max_length=32, choices=ACQUISITION_CHOICES, default=DEFAULT_ACQUISITION
    )
    batch_size = models.PositiveIntegerField(default=20, validators=[MinValueValidator(1)])
    ensemble_size = models.PositiveIntegerField(default=5, validators=[MinValueValidator(1)])
    queue_low_water = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Start the next round when fewer free items are queued (default: half a batch).",
    )
    lease_seconds = models.PositiveIntegerField(
        default=600, help_text="How long an assigned item stays with its annotator."
    )
    round = models.PositiveIntegerField(default=0, help_text="Number of the latest round.")
    # When a featurize task was last sent or last stored a batch: a stale one (the broker
    # lost it, or it was down at import) is sent again by round_maybe_start.
    featurize_heartbeat_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Why the project's items cannot be featurized here (a missing package): set by the
    # featurize task, cleared by the next import. Empty: nothing wrong.
    featurize_error = models.TextField(blank=True, editable=False)
    cost_rule = models.CharField(
        max_length=12,
        choices=CostRule.choices,
        default=CostRule.GIVEN,
        help_text="The cost of an imported item that gives none.",
    )
    cost_value = models.DecimalField(
        **MONEY,
        default=Decimal(1),
        validators=[MinValueValidator(Decimal("0.01"))],
        help_text="flat: the cost; text_length: per 1,000 characters; image_size: per megapixel.",
    )
    cost_floor = models.DecimalField(
        **MONEY,
        default=Decimal("0.01"),
        validators=[MinValueValidator(Decimal("0.01"))],
        help_text="The least an item costs under a proportional rule.",
    )
    group_mode = models.CharField(
        max_length=10,
        choices=GroupMode.choices,
        default=GroupMode.FIXED,
        help_text="adaptive: each round spends where a group's learning curve predicts the "
        "most gain per unit of cost (within any group budgets).",
    )
    group_floor = models.FloatField(
        default=0.1,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="adaptive: the least share of each batch every group gets.",
    )
    out_of_scope_label = models.CharField(
        max_length=200,
        blank=True,
        help_text="A label (one of `labels`) for items outside the task. The ensemble learns "
        "it like any class, and rounds stop spending budget on items it confidently calls "
        "out of scope.",
    )
    out_of_scope_threshold = models.FloatField(
        default=0.8,
        validators=[MinValueValidator(0.5), MaxValueValidator(1.0)],
        help_text="How sure (mean ensemble probability) the model must be to skip an item.",
    )
    show_predictions = models.BooleanField(
        default=False,
        help_text="Show annotators the model's top labels beside the buttons (off by default: "
        "suggestions bias annotators).",
    )
    audit_share = models.FloatField(
        default=0.1,
        validators=[MinValueValidator(0.0), MaxValueValidator(0.5)],
        help_text="Share of each trained round's batch picked uniformly at random from the "
        "pool (at least 2 items when above 0): the model's accuracy on them, once labeled, "
        "is an unbiased estimate of its accuracy on the pool.",
    )
    paused = models.BooleanField(
        default=False,
        help_text="Paused by a manager: no item is handed out and no round starts by itself "
        "(labels for items already on screen are still accepted; a manager may still start "
        "a round).",
    )
    keymap = models.JSONField(
        default=dict,
        blank=True,
        help_text="Keys of the labeling page: {label: key}, one printable character each. "
        "Labels not in it keep their default key (1-9, 0 by position) unless the map uses it.",
    )
    # acquisition "auto": the strategy bandit's state (sampler), kept between rounds.
    strategy_state = models.JSONField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(spent__gte=0), name="project_spent_nonnegative"),
            models.CheckConstraint(
                condition=Q(reserved__gte=0), name="project_reserved_nonnegative"
            ),
            models.CheckConstraint(
                condition=Q(budget__gte=F("spent") + F("reserved")),
                name="project_within_budget",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self):
        from django.core.exceptions import ValidationError

        if self.out_of_scope_label and self.out_of_scope_label not in (self.labels or []):
            raise ValidationError({"out_of_scope_label": "It must be one of the labels."})

    @property
    def remaining(self) -> Decimal:
        return self.budget - self.spent - self.reserved

    @property
    def low_water(self) -> int:
        if self.queue_low_water is not None:
            return self.queue_low_water
        return self.batch_size


class BudgetGroup(models.Model):
    """A share of the project budget reserved for the items whose `group` has this name."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="budget_groups")
    name = models.CharField(max_length=100)
    share = models.DecimalField(
        max_digits=5,
        decimal_places=4,
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
        help_text="A fraction of the project budget (0..1); the budget follows it. "
        "Leave empty to give an absolute budget.",
    )
    budget = models.DecimalField(**MONEY, validators=[MinValueValidator(0)])
    spent = models.DecimalField(**MONEY, default=Decimal(0))
    reserved = models.DecimalField(**MONEY, default=Decimal(0))

    class Meta:
        ordering = ["project", "name"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="budget_group_unique_name"),
            models.CheckConstraint(condition=Q(spent__gte=0), name="group_spent_nonnegative"),
            models.CheckConstraint(condition=Q(reserved__gte=0), name="group_reserved_nonnegative"),
            models.CheckConstraint(
                condition=Q(budget__gte=F("spent") + F("reserved")), name="group_within_budget"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project}: {self.name}"

    @property
    def remaining(self) -> Decimal:
        return self.budget - self.spent - self.reserved


class Membership(models.Model):
    class Role(models.TextChoices):
        ANNOTATOR = "annotator"
        MANAGER = "manager"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.ANNOTATOR)
    quota_total = models.PositiveIntegerField(
        null=True, blank=True, help_text="Most labels this member may give in the project."
    )
    quota_daily = models.PositiveIntegerField(
        null=True, blank=True, help_text="Most labels this member may give per day (UTC)."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="membership_unique_user")
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.role}) in {self.project}"


class Item(models.Model):
    class Status(models.TextChoices):
        UNLABELED = "unlabeled"
        QUEUED = "queued"
        LABELED = "labeled"
        SKIPPED = "skipped"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="items")
    # null, not "": the unique constraint must not count items without an external id.
    external_id = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    text = models.TextField(blank=True)
    image = models.TextField(blank=True, help_text="A data URI.")
    features = models.JSONField(null=True, blank=True, help_text="A given feature vector.")
    meta = models.JSONField(default=dict, blank=True)
    cost = models.DecimalField(**MONEY, default=Decimal(1))
    group = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.UNLABELED)
    # float32 bytes of the featurized vector; null until the featurize task has run.
    vector = models.BinaryField(null=True, blank=True, editable=False)
    # Why this item cannot be featurized (an image that does not decode...): rounds leave
    # it out, the dashboard counts it.
    featurize_error = models.TextField(blank=True, editable=False)
    # Set when a round queues the item: which round, with which function, at which score.
    queued_round = models.PositiveIntegerField(null=True, blank=True)
    acquisition = models.CharField(max_length=32, blank=True)
    score = models.FloatField(null=True, blank=True)
    # Position in its round's batch (0 = the round's best pick): the queue is served by
    # (queued_round, queue_rank), oldest round first, so reserved budget drains in order.
    queue_rank = models.PositiveIntegerField(null=True, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    # The model's opinion when a round queued it: {"labels": [[name, probability], ...]},
    # best first (at most 3). Shown to annotators when the project's show_predictions is on.
    prediction = models.JSONField(null=True, blank=True)
    # Annotators who passed on the item (annotation.services.queue.item_skip).
    skip_count = models.PositiveIntegerField(default=0)
    # The lease: who holds the item and until when. Changed only under SELECT ... FOR UPDATE.
    leased_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "external_id"],
                condition=Q(external_id__isnull=False),
                name="item_unique_external_id",
            ),
            models.CheckConstraint(condition=Q(cost__gt=0), name="item_cost_positive"),
        ]
        indexes = [
            models.Index(
                fields=["project", "status", "queued_round", "queue_rank"], name="item_queue_idx"
            ),
            # The free queue, in hand-out order: `next` reads the first unlocked row of it.
            models.Index(
                fields=["project", "queued_round", "queue_rank", "id"],
                condition=Q(status="queued", leased_to__isnull=True),
                name="item_free_queue_idx",
            ),
            # Items still to featurize (none, most of the time): the featurize batches and
            # the check for a lost featurize task.
            models.Index(
                fields=["project", "id"],
                condition=Q(vector__isnull=True),
                name="item_unfeaturized_idx",
            ),
            # Leased items (a few per annotator): held-item lookup and lease expiry.
            models.Index(
                fields=["project", "leased_to", "lease_expires_at"],
                condition=Q(status="queued", leased_to__isnull=False),
                name="item_leased_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.external_id or f"item {self.pk}"


class Assignment(models.Model):
    """One hand-out of an item to an annotator: the lease history.

    The partial unique constraint makes the database refuse a second active assignment of
    the same item, whatever the code above it does.
    """

    class Status(models.TextChoices):
        ACTIVE = "active"
        SUBMITTED = "submitted"
        SKIPPED = "skipped"
        EXPIRED = "expired"
        RELEASED = "released"  # given back unlabeled (the labeling page was closed)

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="assignments")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["item"],
                condition=Q(status="active"),
                name="assignment_one_active_per_item",
            )
        ]
        indexes = [
            # Who skipped what: `next` never hands an item back to an annotator who skipped it.
            models.Index(
                fields=["item", "user"],
                condition=Q(status="skipped"),
                name="assignment_skipped_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.item} to {self.user} ({self.status})"


class Annotation(models.Model):
    item = models.OneToOneField(Item, on_delete=models.CASCADE, related_name="annotation")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="annotations"
    )
    label = models.CharField(max_length=200)
    cost = models.DecimalField(**MONEY)
    # The model's top suggestion when it was shown to the annotator (show_predictions):
    # its probability, and whether the label given agrees with it. Null: none was shown.
    suggestion_probability = models.FloatField(null=True, blank=True)
    suggestion_agreed = models.BooleanField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.item}: {self.label}"


class Round(models.Model):
    """One acquisition round: train (or cold-start), score the pool in shards, queue a batch."""

    class Status(models.TextChoices):
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="rounds")
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    strategy = models.CharField(max_length=32)
    cold_start = models.BooleanField(default=False)
    labeled_count = models.PositiveIntegerField(default=0)
    budget_spent = models.DecimalField(**MONEY, default=Decimal(0))
    queued_count = models.PositiveIntegerField(default=0)
    queued_cost = models.DecimalField(**MONEY, default=Decimal(0))
    accuracy = models.FloatField(
        null=True, blank=True, help_text="Out-of-bag accuracy of the ensemble on the labeled set."
    )
    shard_count = models.PositiveIntegerField(default=0)
    audit_count = models.PositiveIntegerField(
        default=0, help_text="Items of the batch picked uniformly at random (the audit slice)."
    )
    strategy_reason = models.TextField(
        blank=True, help_text="Why the round used its strategy (acquisition auto)."
    )
    group_stats = models.JSONField(
        null=True,
        blank=True,
        help_text="Adaptive groups: per group its labels, error, power-law fit, predicted "
        "gain per unit of cost and the batch slots it got.",
    )
    pool_size = models.PositiveIntegerField(default=0)
    # The trained ensemble (sampler.ensemble.MLPEnsemble.to_bytes), read by the shard tasks
    # and by the next round's `lftl`.
    model = models.BinaryField(null=True, blank=True, editable=False)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    # Moved on by every step of the round: a running round whose heartbeat is older than
    # ANNOTATION_ROUND_STALE_SECONDS lost its task (a broker restart) and is replaced.
    heartbeat_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    seconds = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["project", "number"]
        constraints = [
            models.UniqueConstraint(fields=["project", "number"], name="round_unique_number"),
            models.UniqueConstraint(
                fields=["project"],
                condition=Q(status="running"),
                name="round_one_running_per_project",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project} round {self.number}"


class RoundShard(models.Model):
    """The result of scoring one slice of the pool (ids in [start_id, stop_id))."""

    round = models.ForeignKey(Round, on_delete=models.CASCADE, related_name="shards")
    index = models.PositiveIntegerField()
    start_id = models.BigIntegerField()
    stop_id = models.BigIntegerField()
    scored = models.PositiveIntegerField(default=0)
    candidates = models.JSONField(null=True, blank=True, help_text="[[item id, score, cost], ...]")
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["round", "index"]
        constraints = [
            models.UniqueConstraint(fields=["round", "index"], name="shard_unique_index")
        ]

    def __str__(self) -> str:
        return f"{self.round} shard {self.index}"


class Webhook(models.Model):
    """A URL a project's events are POSTed to, signed with the hook's own secret
    (annotation.services.webhooks)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="webhooks")
    url = models.URLField(max_length=2000)
    events = models.JSONField(help_text="Event names this hook receives.")
    secret = models.CharField(max_length=64, editable=False)
    active = models.BooleanField(default=True)
    # labels.created is batched: set when a batch is scheduled, cleared when it is sent;
    # the batch holds the labels with ids above labels_after.
    labels_scheduled = models.BooleanField(default=False, editable=False)
    labels_after = models.BigIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.project}: {self.url}"


class WebhookDelivery(models.Model):
    """One event sent (or being sent) to one hook: the delivery log."""

    class Status(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        FAILED = "failed"

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=40)
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    response_status = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["webhook", "-id"], name="webhook_delivery_log_idx")]

    def __str__(self) -> str:
        return f"{self.event} to {self.webhook_id} ({self.status})"
