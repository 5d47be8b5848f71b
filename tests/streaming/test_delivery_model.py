"""Model-based tests of delivery counting (issue 10): seeded random walks of publish, read
ahead, send, commit or ack, client disconnect, drain, server crash (also mid-write), lease
lapse, claim by a new session and the reclaim job, over one and two sessions of an ordered
or a shared subscription, against the real redis-server. `tests/streaming/delivery_world.py` checks
Redis against a plain-Python model after every step.

A walk that fails is shrunk (steps are dropped while it still fails) and reported as a
`replay(...)` call with the few steps left: that call becomes a plain test at the end of
this module. `make test` walks a fixed set of seeds (the same every run, a few thousand
steps); `make test-slow` walks many more, new ones each run (their seeds are printed).
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from typing import Any

import pytest

from events.core.stream_params import StreamParams
from events.streaming import ordered_session, shared_session
from tests.streaming.delivery_world import TTL_MS, World

Step = tuple[str, tuple[Any, ...]]
Config = dict[str, int]

# Each step's weight in a walk; the world skips one that has no session to act on.
WEIGHTS = {
    "publish": 4,
    "join": 3,
    "work": 8,
    "read": 2,
    "flush": 2,
    "commit": 5,
    "ack": 5,
    "leave": 3,
    "crash": 2,
    "lapse": 1,
    "leases_lapse": 2,
    "time_passes": 2,
    "reclaim": 2,
}
ORDERED_ONLY = {"commit", "lapse", "leases_lapse"}
SHARED_ONLY = {"ack", "time_passes"}


def walk(seed: int, shared: bool, length: int) -> tuple[Config, list[Step]]:
    """A subscription's settings and `length` steps, drawn from `seed`."""
    rnd = random.Random(seed)
    config = {
        "partitions": rnd.randint(1, 2),
        "batch_limit": rnd.randint(1, 3),
        "window": rnd.randint(1, 6),
        "max_deliveries": rnd.randint(1, 3),
    }
    skip = ORDERED_ONLY if shared else SHARED_ONLY
    names = [name for name in WEIGHTS if name not in skip]
    chosen = rnd.choices(names, [WEIGHTS[name] for name in names], k=length)
    return config, [(name, _arguments(rnd, name)) for name in chosen]


def _arguments(rnd: random.Random, name: str) -> tuple[Any, ...]:
    session = rnd.randint(0, 1)
    if name == "publish":
        return (rnd.randint(0, 1), rnd.randint(1, 4))
    if name == "work":
        return (session, rnd.randint(1, 3), rnd.random() < 0.5)
    if name == "commit":
        return (session, rnd.randint(0, 1), rnd.randint(0, 5))
    if name == "ack":
        return (session, [rnd.randint(0, 20) for _ in range(rnd.randint(1, 4))])
    if name in ("leave", "crash"):
        return (session, rnd.random() < 0.5)
    if name in ("read", "flush", "lapse"):
        return (session,)
    return ()


def replay(shared: bool, config: Config, steps: Sequence[Step]) -> None:
    """Run steps on a new world, which checks the model after each; then every event must
    reach its end (committed, acked or dead) once a last consumer takes everything.
    """
    params = StreamParams(
        batch_limit=config["batch_limit"], max_uncommitted_events=config["window"]
    )
    world = World(shared, config["partitions"], params, config["max_deliveries"])
    try:
        world.join()
        for name, args in steps:
            _apply(world, name, args)
        world.settle()
    finally:
        world.close()


def _apply(world: World, name: str, args: tuple[Any, ...]) -> None:
    if name == "publish":
        world.publish(args[0] % len(world.plan.partitions), args[1])
    elif name == "join":
        if len(world.live) < 2:
            world.join()
    elif name in ("leases_lapse", "time_passes", "reclaim"):
        getattr(world, name)()
    elif world.live:
        session = world.live[args[0] % len(world.live)]
        if name == "work":  # turns of the session's loop: heartbeat, read, send full batches
            for _ in range(args[1]):
                if args[2]:
                    world.tick(session)
                world.read(session)
                world.send(session, flush=False)
        elif name == "read":
            world.read(session)
        elif name == "flush":  # a flush timeout passes: what it holds goes out
            world.send(session, flush=True)
        elif name == "commit":
            world.commit(session, args[1] % len(world.plan.partitions), args[2])
        elif name == "ack":
            world.ack(session, args[1])
        elif name == "leave":
            world.leave(session, drain=args[1])
        elif name == "crash":
            world.crash(session, mid_write=args[1])
        elif name == "lapse":
            world.lapse(session)


def check_walk(shared: bool, seed: int, length: int) -> None:
    """Walk; on a failure, shrink the walk and fail with the plain test it becomes."""
    config, steps = walk(seed, shared, length)
    try:
        replay(shared, config, steps)
    except Exception as error:
        steps = shrink(shared, config, steps, type(error))
        raise AssertionError(
            f"seed {seed} fails ({type(error).__name__}: {error}); shrunk to:\n"
            f"    replay({shared}, {config}, {steps})"
        ) from error


def shrink(
    shared: bool, config: Config, steps: list[Step], kind: type[BaseException], budget: float = 60
) -> list[Step]:
    """Drop runs of steps, then single steps, while the walk still fails the same way."""
    deadline = time.monotonic() + budget
    size = max(len(steps) // 2, 1)
    while size >= 1 and time.monotonic() < deadline:
        start = 0
        while start < len(steps) and time.monotonic() < deadline:
            candidate = steps[:start] + steps[start + size :]
            try:
                replay(shared, config, candidate)
            except kind:
                steps = candidate
                continue
            except Exception:
                pass
            start += size
        size //= 2
    return steps


@pytest.fixture
def lasting_sessions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sessions and leases that outlive the test's steps: only the steps make them lapse."""
    monkeypatch.setattr(ordered_session, "SESSION_TTL_MS", TTL_MS)
    monkeypatch.setattr(shared_session, "SESSION_TTL_MS", TTL_MS)


WALKS, STEPS = 60, 60  # in `make test`: 3,600 steps per kind of subscription


@pytest.mark.usefixtures("db", "lasting_sessions")
@pytest.mark.parametrize("shared", [False, True], ids=["ordered", "shared"])
def test_delivery_counts_follow_the_model(shared: bool) -> None:
    for seed in range(WALKS):
        check_walk(shared, seed, STEPS)


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.usefixtures("db", "lasting_sessions")
@pytest.mark.parametrize("shared", [False, True], ids=["ordered", "shared"])
def test_delivery_counts_follow_the_model_at_length(shared: bool) -> None:
    first = random.SystemRandom().randrange(2**32)
    print(f"walking seeds from {first}")
    for seed in range(first, first + 500):
        check_walk(shared, seed, 120)


# -- plain tests: walks that once failed, and the neighbours issue 10 names ----------------


@pytest.fixture
def world_of(db, lasting_sessions):
    """A world with the given settings (closed at the end), ordered unless `shared`."""
    made: list[World] = []

    def make(
        partitions: int = 1,
        batch_limit: int = 1,
        window: int = 10,
        max_deliveries: int = 2,
        shared: bool = False,
    ) -> World:
        params = StreamParams(batch_limit=batch_limit, max_uncommitted_events=window)
        made.append(World(shared, partitions, params, max_deliveries))
        return made[-1]

    yield make
    for world in made:
        world.close()


def test_a_session_that_takes_its_partition_back_charges_its_own_first_batch(world_of):
    world = world_of()
    world.publish(0, 3)
    first = world.join()
    world.read(first)
    world.send(first, flush=False)  # three batches of one, all uncommitted
    world.lapse(first)  # it stalls; its lease lapses
    world.tick(first)  # and it takes the partition back: its time as owner closes
    world.read(first)  # the claim of its own entries
    world.send(first, flush=False)
    assert world.model.events["1-1"].charges == 1  # only its first batch
    assert [world.model.events[o].charges for o in ("1-2", "1-3")] == [0, 0]
    assert world.clients[first].batches[0][0] == ["1-1"]  # charged before: sent alone


def test_a_time_as_owner_that_sent_nothing_charges_nothing_again(world_of):
    world = world_of(max_deliveries=2)
    world.publish(0, 1)
    first = world.join()
    world.read(first)
    world.send(first, flush=False)
    world.lapse(first)
    world.tick(first)
    world.read(first)  # claims its event back (charged once), and sends nothing
    world.lapse(first)
    world.tick(first)
    world.read(first)  # a third time as owner: still one charge, not two
    assert world.model.events["1-1"].charges == 1
    assert world._dead() == {}


def test_a_drain_after_a_lapse_charges_nothing(world_of):
    replay(False, {"partitions": 2, "batch_limit": 3, "window": 1, "max_deliveries": 2}, [
        ("publish", (0, 2)), ("leave", (0, False)), ("join", ()), ("work", (1, 3, False)),
        ("lapse", (1,)), ("leave", (0, True)), ("join", ()), ("read", (1,)),
    ])  # fmt: skip


def test_shared_sends_are_charged_by_the_oldest_batch_of_each_partition(world_of):
    replay(True, {"partitions": 2, "batch_limit": 3, "window": 3, "max_deliveries": 2}, [
        ("publish", (0, 4)), ("work", (0, 3, False)), ("ack", (1, [0, 13, 3])),
        ("publish", (1, 4)), ("work", (0, 1, False)), ("time_passes", ()),
        ("work", (1, 3, True)),
    ])  # fmt: skip


def test_a_shared_client_that_leaves_is_charged_the_batch_sent_first_of_all_partitions(world_of):
    # Its timed-out events go out again, one a batch, on one partition, and a new event on
    # the other: "the batch it stopped in" is the first of these in the order it was sent,
    # whichever partition that is (the model once numbered batches partition by partition).
    replay(True, {"partitions": 2, "batch_limit": 3, "window": 3, "max_deliveries": 2}, [
        ("publish", (1, 2)), ("publish", (1, 2)), ("join", ()), ("crash", (0, False)),
        ("work", (1, 1, True)), ("time_passes", ()), ("ack", (1, [12, 18])),
        ("publish", (0, 1)), ("work", (0, 3, True)),
    ])  # fmt: skip


def test_a_shared_session_forgets_its_own_events_that_its_claim_dead_lettered(world_of):
    # Alone, it claims its own timed-out event and the claim dead-letters it: that event
    # no longer waits for an ack, so it is not "the batch its client stopped in" when the
    # client leaves later; the batch sent after it is.
    replay(True, {"partitions": 1, "batch_limit": 1, "window": 3, "max_deliveries": 1}, [
        ("publish", (1, 4)), ("join", ()), ("work", (1, 3, False)), ("work", (0, 2, False)),
        ("crash", (1, True)), ("time_passes", ()), ("work", (1, 2, True)),
    ])  # fmt: skip


def test_shared_batches_marked_just_before_a_crash_count_once(world_of):
    replay(True, {"partitions": 1, "batch_limit": 1, "window": 5, "max_deliveries": 3}, [
        ("publish", (1, 4)), ("publish", (0, 3)), ("leave", (0, True)), ("join", ()),
        ("work", (1, 3, True)), ("time_passes", ()), ("join", ()), ("work", (1, 3, True)),
        ("ack", (0, [12, 0, 11, 19])), ("crash", (1, True)), ("time_passes", ()),
        ("work", (1, 2, True)),
    ])  # fmt: skip


def test_a_drain_after_a_session_took_its_partition_back_charges_nothing_again(world_of):
    # Its earlier time as owner was charged when it took the partition back; the drain
    # must not leave that charge to be counted a second time by the next owner.
    replay(False, {"partitions": 2, "batch_limit": 3, "window": 1, "max_deliveries": 2}, [
        ("publish", (0, 2)), ("lapse", (1,)), ("leave", (0, False)), ("join", ()),
        ("work", (1, 3, False)), ("lapse", (1,)), ("work", (1, 2, True)), ("leave", (0, True)),
        ("join", ()), ("read", (1,)),
    ])  # fmt: skip


def test_a_drain_forgets_no_charge_of_a_partition_whose_lapse_the_session_saw(world_of):
    # The session saw its lease lapse and let the partition go: the drain that ends it
    # later is not about that partition, whose next owner charges what it left.
    replay(False, {"partitions": 1, "batch_limit": 1, "window": 3, "max_deliveries": 2}, [
        ("publish", (1, 2)), ("work", (1, 3, False)), ("join", ()), ("lapse", (0,)),
        ("work", (0, 2, True)), ("leave", (0, True)), ("work", (1, 2, True)),
    ])  # fmt: skip


def test_a_drain_keeps_the_charge_its_next_owner_already_took_over(world_of):
    # Its lease lapsed and another session took the partition (charging its first batch)
    # before the drain ended it: the charge stands.
    replay(False, {"partitions": 2, "batch_limit": 3, "window": 6, "max_deliveries": 2}, [
        ("work", (0, 3, False)), ("publish", (1, 4)), ("work", (0, 1, False)), ("lapse", (0,)),
        ("join", ()), ("leave", (0, True)), ("leave", (0, True)), ("join", ()),
        ("work", (1, 3, False)),
    ])  # fmt: skip


def test_a_session_that_handed_a_partition_over_leaves_its_next_owner_s_charge_alone(world_of):
    replay(False, {"partitions": 2, "batch_limit": 2, "window": 5, "max_deliveries": 3}, [
        ("join", ()), ("publish", (1, 3)), ("leave", (0, False)), ("work", (1, 3, True)),
        ("commit", (1, 1, 4)), ("join", ()), ("work", (0, 2, True)), ("publish", (1, 2)),
        ("work", (1, 3, True)), ("leave", (1, False)), ("leave", (0, False)), ("join", ()),
        ("work", (0, 2, False)),
    ])  # fmt: skip


def test_a_session_whose_lease_lapsed_leaves_the_next_owner_s_record_alone(world_of):
    replay(False, {"partitions": 2, "batch_limit": 1, "window": 1, "max_deliveries": 3}, [
        ("publish", (1, 2)), ("join", ()), ("lapse", (0,)), ("work", (1, 1, True)),
        ("leave", (1, False)),
    ])  # fmt: skip


def test_each_crash_mid_write_counts_as_a_send(world_of):
    replay(True, {"partitions": 1, "batch_limit": 3, "window": 6, "max_deliveries": 2}, [
        ("publish", (0, 1)), ("read", (1,)), ("crash", (0, True)), ("reclaim", ()),
        ("join", ()), ("read", (0,)), ("crash", (0, True)),
    ])  # fmt: skip
