"""Every Redis key and channel name Streamsite uses, built here and nowhere else.

All keys of one partition share the hash tag `{et:<store id>:<p>}` (the store id is the
event type's random `EventType.store_id`, not its name), so every multi-key step on a
partition is one Lua script on one slot and works unchanged on Redis Cluster; a
subscription's own keys share `{sub:<id>}`. docs/architecture.md#redis-layout draws them.

    ss:{et:<id>:<p>}:log                   the partition's log (a stream; entry fields in
                                           events/core/entries.py)
    ss:{et:<id>:<p>}:eid:<eid>             publish de-duplication marker (SET NX EX)
    ss:{et:<id>:<p>}:latest                a compacted type's hash {compaction key: the id of
                                           its latest entry} (events/store/compaction.py)
    ss:{et:<id>:<p>}:compaction            a compacted log's hash {scanned: the last entry
                                           compaction examined, trimmed: the newest id
                                           retention removed, sweep: HSCAN cursor of latest}
    ss:{et:<id>:<p>}:lease:<sub>           hash {session, token, sent}: the owner of an
                                           ordered subscription's partition, its fencing
                                           token, the last offset sent to it
    ss:{et:<id>:<p>}:epoch:<sub>           the fencing counter (never deleted: a token is
                                           never used twice, also across resets)
    ss:{et:<id>:<p>}:committed:<sub>       the last committed offset (the database keeps it
                                           too)
    ss:{et:<id>:<p>}:batches:<sub>         list [consumer, last offset of each batch sent
                                           and not committed]: the lease holder's record
    ss:{et:<id>:<p>}:charged:<sub>         hash {consumer: last offset charged a failed
                                           delivery}
    ss:{et:<id>:<p>}:sent:<sub>            shared mode: hash {offset: "<session> <batch>"}
                                           sent and not acked
    ss:{et:<id>:<p>}:dead:<sub>            dead letters set aside, until the job stores them
    ss:{et:<id>:<p>}:skipped:<sub>         counter: events skipped instead (policy "skip")
    ss:{et:<id>:<p>}:generation:<sub>      moved by every reset; background writes check it
    ss:{sub:<id>}:sessions                 ZSET session -> expiry (ms, Redis's clock)
    ss:{sub:<id>}:direct                   hash session -> JSON [[type, p], ...] it streams
    ss:{sub:<id>}:resetting                set while a cursor reset runs
    ss:{sub:<id>}:closes                   list: the last sessions' ends, newest first
                                           (events/store/closes.py)
    ss:ctl:<sub>                           pub/sub: the subscription's control messages
                                           (events/store/control.py)
    ss:job:<name>                          a background job's lease
    ss:stats:lag, ss:stats:at              the stats job's snapshot of lag, and when
    ss:stats:published:<store id>          ZSET: an hour of samples of an event type's
                                           published count (events/store/history.py)
    ss:stats:lag-history:<sub>             ZSET: an hour of samples of a subscription's lag
    ss:stats:sampled, …:sampled:<sub>      short gates: one sample a second, however many
                                           dashboards poll
    ss:meta:...                            versions of cached rows (events/catalog/snapshots.py)
    ss:meta:store-epoch                    names Redis's data set, for readers' positions
                                           (events/store/tails.py)
"""

from __future__ import annotations

from dataclasses import dataclass

PREFIX = "ss:"
CONTROL_PREFIX = "ss:ctl:"
CONTROL_PATTERN = CONTROL_PREFIX + "*"
LAG_SNAPSHOT_KEY = "ss:stats:lag"
LAG_AT_KEY = "ss:stats:at"
AUTH_EPOCH_KEY = "ss:meta:auth-epoch"
STORE_EPOCH_KEY = "ss:meta:store-epoch"  # names Redis's data set: new when it lost its data


def partition_tag(store_id: str, partition: int) -> str:
    """The hash tag of a partition."""
    return f"{{et:{store_id}:{partition}}}"


def log_key(store_id: str, partition: int) -> str:
    return f"ss:{partition_tag(store_id, partition)}:log"


def eid_key(store_id: str, partition: int, eid: str) -> str:
    return f"ss:{partition_tag(store_id, partition)}:eid:{eid}"


def latest_key(store_id: str, partition: int) -> str:
    """A compacted partition's hash: compaction key -> the id of its latest entry."""
    return f"ss:{partition_tag(store_id, partition)}:latest"


def compaction_key(store_id: str, partition: int) -> str:
    """A compacted partition's progress: how far compaction got, where retention trimmed to
    (compaction's deletions are no trimming), where the sweep of `latest` stands.
    """
    return f"ss:{partition_tag(store_id, partition)}:compaction"


def compaction_key_of_log(log: str) -> str:
    """The `compaction_key` of the partition whose log key is `log`."""
    return log.removesuffix(":log") + ":compaction"


def lease_key(store_id: str, partition: int, subscription: str) -> str:
    return f"ss:{partition_tag(store_id, partition)}:lease:{subscription}"


def epoch_key(store_id: str, partition: int, subscription: str) -> str:
    return f"ss:{partition_tag(store_id, partition)}:epoch:{subscription}"


def committed_key(store_id: str, partition: int, subscription: str) -> str:
    return f"ss:{partition_tag(store_id, partition)}:committed:{subscription}"


def dead_key(store_id: str, partition: int, subscription: str) -> str:
    """Stream of dead letters set aside on a partition, until the job stores them."""
    return f"ss:{partition_tag(store_id, partition)}:dead:{subscription}"


def skipped_key(store_id: str, partition: int, subscription: str) -> str:
    """How many events the subscription skipped on the partition (its unprocessable-event
    policy "skip"): acked and counted instead of set aside as dead letters; /metrics reads it.
    """
    return f"ss:{partition_tag(store_id, partition)}:skipped:{subscription}"


def batches_key(store_id: str, partition: int, subscription: str) -> str:
    """The lease holder's consumer, then the last offset of each batch it sent on the
    partition that its client has not committed yet, in order.
    """
    return f"ss:{partition_tag(store_id, partition)}:batches:{subscription}"


def charged_key(store_id: str, partition: int, subscription: str) -> str:
    """For each consumer whose time as the partition's owner ended with batches sent and not
    committed, the last offset of the first of them: its claim charges a delivery up to it.
    """
    return f"ss:{partition_tag(store_id, partition)}:charged:{subscription}"


def sent_key(store_id: str, partition: int, subscription: str) -> str:
    """Shared mode, where sends are not in offset order: a hash of the offsets sent and not
    yet acked, each to "<session> <batch number>" ("<session> ~" once a claim found that
    session's client stopped in an earlier batch).
    """
    return f"ss:{partition_tag(store_id, partition)}:sent:{subscription}"


def generation_key(store_id: str, partition: int, subscription: str) -> str:
    """A counter that every reset (and delete) of the subscription's delivery state on the
    partition moves: a background job that read it before compares it before writing.
    """
    return f"ss:{partition_tag(store_id, partition)}:generation:{subscription}"


@dataclass(frozen=True)
class PartitionKeys:
    """The keys of one (partition, subscription)."""

    store_id: str
    partition: int
    subscription: str

    @property
    def log(self) -> str:
        return log_key(self.store_id, self.partition)

    @property
    def lease(self) -> str:
        return lease_key(self.store_id, self.partition, self.subscription)

    @property
    def committed(self) -> str:
        return committed_key(self.store_id, self.partition, self.subscription)

    @property
    def dead(self) -> str:
        return dead_key(self.store_id, self.partition, self.subscription)

    @property
    def skipped(self) -> str:
        return skipped_key(self.store_id, self.partition, self.subscription)

    @property
    def batches(self) -> str:
        return batches_key(self.store_id, self.partition, self.subscription)

    @property
    def charged(self) -> str:
        return charged_key(self.store_id, self.partition, self.subscription)

    @property
    def sent(self) -> str:
        return sent_key(self.store_id, self.partition, self.subscription)

    @property
    def generation(self) -> str:
        return generation_key(self.store_id, self.partition, self.subscription)

    def delivery_state(self) -> list[str]:
        """What a reset forgets: everything but the log, the epoch, the dead letters and
        the count of skipped events.
        """
        return [self.lease, self.committed, self.batches, self.charged, self.sent]


def sessions_key(subscription: str) -> str:
    return f"ss:{{sub:{subscription}}}:sessions"


def direct_key(subscription: str) -> str:
    """Hash: session id -> JSON list of the [event type, partition] it asked for directly."""
    return f"ss:{{sub:{subscription}}}:direct"


def resetting_key(subscription: str) -> str:
    """Set while a cursor reset runs: new sessions wait (409), as in Nakadi."""
    return f"ss:{{sub:{subscription}}}:resetting"


def closes_key(subscription: str) -> str:
    """List: how the subscription's last sessions ended, newest first (events/store/closes.py)."""
    return f"ss:{{sub:{subscription}}}:closes"


def control_channel(subscription: str) -> str:
    """Pub/sub channel of a subscription's sessions (events/store/control.py)."""
    return f"{CONTROL_PREFIX}{subscription}"


def job_lease_key(name: str) -> str:
    """A background job's lease (events/store/job_leases.py)."""
    return f"ss:job:{name}"


def published_history_key(store_id: str) -> str:
    """ZSET of samples of an event type's published count, scored by time (ms)."""
    return f"ss:stats:published:{store_id}"


def lag_history_key(subscription: str) -> str:
    """ZSET of samples of a subscription's unconsumed events per partition, by time (ms)."""
    return f"ss:stats:lag-history:{subscription}"


def sampled_key(subscription: str | None = None) -> str:
    """Set for a moment after a sample is taken (of every event type's count, or of one
    subscription's lag), so that many pollers take one sample a second.
    """
    return f"ss:stats:sampled:{subscription}" if subscription else "ss:stats:sampled"


def event_type_version_key(name: str) -> str:
    """The version of an event type's cached row, moved by every change."""
    return f"ss:meta:event-type-version:{name}"


def subscription_version_key(subscription_id: str) -> str:
    """The version of a subscription's cached plan, moved by every change."""
    return f"ss:meta:subscription-version:{subscription_id}"
