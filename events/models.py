"""The durable half of Streamsite: event types, subscriptions, committed cursors, dead
letters and the clients that call the API.

Live state (the partitions' logs, offsets, leases, sessions) is in Redis; its layout is in
events/store/keys.py.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

from events.core import defaults

# Nakadi's event type name: dot-separated words of letters, digits, '-' and '_'.
EVENT_TYPE_NAME_RE = r"^[a-zA-Z][-0-9a-zA-Z_]*(\.[0-9a-zA-Z][-0-9a-zA-Z_]*)*\Z"
TOKEN_PREFIX = "ss_"


def new_store_id() -> str:
    """A random id for an event type's Redis keys (see EventType.store_id)."""
    return secrets.token_hex(8)


class EventType(models.Model):
    """A named stream of events with a schema, split into `partition_count` partitions."""

    class Category(models.TextChoices):
        UNDEFINED = "undefined"
        DATA = "data"
        BUSINESS = "business"

    class PartitionStrategy(models.TextChoices):
        RANDOM = "random"
        HASH = "hash"
        USER_DEFINED = "user_defined"

    class CompatibilityMode(models.TextChoices):
        COMPATIBLE = "compatible"
        FORWARD = "forward"
        NONE = "none"

    class CleanupPolicy(models.TextChoices):  # events.core.metadata.CLEANUP_POLICIES
        DELETE = "delete"
        COMPACT = "compact"
        COMPACT_AND_DELETE = "compact_and_delete"

    name = models.CharField(
        max_length=255, unique=True, validators=[RegexValidator(EVENT_TYPE_NAME_RE)]
    )
    owning_application = models.CharField(max_length=255)
    category = models.CharField(max_length=16, choices=Category.choices)
    enrichment_strategies = models.JSONField(default=list, blank=True)
    partition_strategy = models.CharField(
        max_length=16, choices=PartitionStrategy.choices, default=PartitionStrategy.RANDOM
    )
    partition_key_fields = models.JSONField(default=list, blank=True)
    partition_count = models.PositiveIntegerField(default=1)
    # Redis keys use this, not the name: a type deleted and created again under the same
    # name must not meet the old one's logs or eid markers (they outlive a delete).
    store_id = models.CharField(
        max_length=32, unique=True, default=new_store_id, editable=False, db_column="stream_id"
    )
    schema = models.TextField(help_text="The JSON schema, as a JSON string.")
    schema_version = models.CharField(max_length=32, default="1.0.0")
    schema_created_at = models.DateTimeField(default=timezone.now)
    compatibility_mode = models.CharField(
        max_length=16, choices=CompatibilityMode.choices, default=CompatibilityMode.FORWARD
    )
    default_statistic = models.JSONField(null=True, blank=True)
    retention_time_ms = models.BigIntegerField(help_text="Events older than this are trimmed.")
    retention_max_events = models.BigIntegerField(
        null=True, blank=True, help_text="Per partition; the oldest beyond this are trimmed."
    )
    cleanup_policy = models.CharField(
        max_length=18,
        choices=CleanupPolicy.choices,
        default=CleanupPolicy.DELETE,
        help_text="compact: keep the latest event of each partition_compaction_key; "
        "compact_and_delete: that, within the retention time.",
    )
    ordering_key_fields = models.JSONField(default=list, blank=True)
    audience = models.CharField(max_length=64, blank=True, default="")
    authorization = models.JSONField(null=True, blank=True)
    # Nakadi's descriptive fields, kept as sent (events/core/annotations.py).
    annotations = models.JSONField(default=dict, blank=True)
    labels = models.JSONField(default=dict, blank=True)
    event_owner_selector = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class EventTypeSchema(models.Model):
    """One version of an event type's schema: the history that GET …/schemas shows."""

    event_type = models.ForeignKey(EventType, on_delete=models.CASCADE, related_name="schemas")
    version = models.CharField(max_length=32)
    schema = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["event_type", "version"], name="unique_schema_version")
        ]

    def __str__(self) -> str:
        return f"{self.event_type.name} {self.version}"


class Client(models.Model):
    """An application that calls the API, with its tokens and grants."""

    name = models.CharField(max_length=255, unique=True)
    is_admin = models.BooleanField(
        default=False, help_text="Administer everything: event types, clients' data, all grants."
    )
    description = models.TextField(blank=True)
    # A browser signed in as this user acts with this client's grants (README, "Browsers").
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="api_client",
        help_text="A signed-in user who acts as this client in the browser (session auth).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def issue_token(self, label: str = "") -> str:
        """Create a new API token and return it: the only time its plain text exists."""
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        ApiToken.objects.create(
            client=self, label=label, digest=token_digest(secret), hint=secret[:10]
        )
        return secret


class Grant(models.Model):
    """Permission for a client to do `action` on event types whose name matches `pattern`."""

    class Action(models.TextChoices):
        PUBLISH = "publish", "publish to event types"
        READ = "read", "read event types"
        CONSUME = "consume", "consume subscriptions"

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="grants")
    action = models.CharField(max_length=16, choices=Action.choices)
    pattern = models.CharField(
        max_length=255, help_text="An event type name, or a glob such as orders.* or *."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["client", "action", "pattern"], name="unique_grant")
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.pattern}"


class ApiToken(models.Model):
    """A bearer token of a client, stored only as its SHA-256 digest.

    Tokens are 256 random bits, so a fast digest is enough: there is nothing to brute-force.
    """

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="tokens")
    label = models.CharField(max_length=255, blank=True)
    digest = models.CharField(max_length=64, unique=True, editable=False)
    hint = models.CharField(
        max_length=16, editable=False, help_text="The token's first characters."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    revoked = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"{self.hint}… ({self.client.name})"


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Subscription(models.Model):
    """A named reader of event types whose progress is kept as committed cursors.

    Identity, as in Nakadi: (owning_application, event types, consumer_group). `identity`
    holds a digest of it, so that creating the same subscription twice is race-free.
    """

    class ReadFrom(models.TextChoices):
        BEGIN = "begin"
        END = "end"
        CURSORS = "cursors"

    class Mode(models.TextChoices):
        ORDERED = "ordered", "ordered (Nakadi): partitions owned by sessions, cursor commits"
        SHARED = "shared", "shared: competing sessions, per-event acks"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owning_application = models.CharField(max_length=255)
    event_types = models.ManyToManyField(EventType, related_name="subscriptions")
    consumer_group = models.CharField(max_length=255, default="default")
    identity = models.CharField(max_length=64, unique=True, editable=False)
    read_from = models.CharField(max_length=16, choices=ReadFrom.choices, default=ReadFrom.END)
    initial_cursors = models.JSONField(default=list, blank=True)
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.ORDERED)
    commit_timeout = models.PositiveIntegerField(
        default=defaults.COMMIT_TIMEOUT,
        help_text="Seconds a session may keep sent events uncommitted.",
    )
    max_deliveries = models.PositiveIntegerField(
        default=defaults.MAX_DELIVERIES,
        help_text="Deliveries of one event before it is a dead letter or skipped.",
    )
    ack_timeout = models.PositiveIntegerField(
        default=defaults.ACK_TIMEOUT,
        help_text="Shared mode: seconds an event may stay unacknowledged before another "
        "session gets it.",
    )
    topics = models.JSONField(
        default=list,
        blank=True,
        help_text='Topic patterns (exact, or globs such as "orders.*"); when set, only '
        "events whose metadata.topic matches one are delivered.",
    )

    class UnprocessableEventPolicy(models.TextChoices):
        DEAD_LETTER = "dead_letter", "dead letter: set it aside, to replay or discard"
        SKIP = "skip", "skip: acknowledge it and count it, store nothing"

    unprocessable_event_policy = models.CharField(
        max_length=16,
        choices=UnprocessableEventPolicy.choices,
        default=UnprocessableEventPolicy.DEAD_LETTER,
        help_text="What becomes of an event delivered max_deliveries times without success.",
    )
    authorization = models.JSONField(
        null=True, blank=True, help_text="Nakadi's {admins, readers} section, kept as sent."
    )
    # Kept as sent; Nakadi's dead-letter annotations set max_deliveries and the policy
    # (events/core/annotations.py).
    annotations = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.owning_application}/{self.consumer_group} ({self.id})"


def subscription_identity(owning_application: str, event_types: list[str], group: str) -> str:
    """The digest of what makes two subscriptions the same one."""
    key = "\x1f".join([owning_application, group, *sorted(set(event_types))])
    return hashlib.sha256(key.encode()).hexdigest()


class CommittedCursor(models.Model):
    """The committed position of a subscription on one partition of an event type (the
    row; events.core.offsets.Cursor is the value a client sends and receives).
    """

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="cursors")
    event_type = models.ForeignKey(EventType, on_delete=models.CASCADE, related_name="cursors")
    partition = models.PositiveIntegerField()
    offset = models.CharField(max_length=64, help_text="The last committed entry id, or BEGIN.")
    committed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "cursor"  # as the admin has always shown it
        ordering = ["event_type", "partition"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "event_type", "partition"], name="unique_cursor"
            )
        ]

    def __str__(self) -> str:
        return f"{self.event_type.name}/{self.partition}@{self.offset}"


class DeadLetter(models.Model):
    """An event that a subscription could not get processed: delivered more than
    `max_deliveries` times, it was set aside (and acked) so that its partition moves on.
    """

    class Status(models.TextChoices):
        DEAD = "dead"
        REPLAYED = "replayed", "replayed (delivered again)"

    subscription = models.ForeignKey(
        Subscription, on_delete=models.CASCADE, related_name="dead_letters"
    )
    event_type = models.ForeignKey(EventType, on_delete=models.CASCADE, related_name="dead_letters")
    partition = models.PositiveIntegerField()
    offset = models.CharField(max_length=64)
    body = models.TextField(help_text="The event, as it was published (JSON).")
    deliveries = models.PositiveIntegerField()
    reason = models.CharField(max_length=255)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DEAD)
    created_at = models.DateTimeField(default=timezone.now)
    replayed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # The job that moves dead letters from Redis may run twice on one: one row.
            models.UniqueConstraint(
                fields=["subscription", "event_type", "partition", "offset"],
                name="unique_dead_letter",
            )
        ]
        indexes = [models.Index(fields=["subscription", "status", "created_at"])]

    def __str__(self) -> str:
        return f"{self.event_type.name}/{self.partition}@{self.offset}"
