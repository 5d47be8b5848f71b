"""Job leases against the real redis-server: one run at a time, kept while a run lasts."""

from __future__ import annotations

import time

import pytest

from events.store import job_leases, keys
from events.store.connections import redis_client
from events.store.job_leases import exclusive


def test_a_second_run_is_refused_while_the_first_holds_the_lease():
    with exclusive("reclaim") as first:
        with exclusive("reclaim") as second:
            assert (first, second) == (True, False)
        with exclusive("stats") as other_job:
            assert other_job
    with exclusive("reclaim") as after:
        assert after


def test_a_run_longer_than_its_lease_keeps_it(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(job_leases, "LEASE_SECONDS", 0.3)
    with exclusive("retention") as taken:
        assert taken
        started = time.monotonic()
        while time.monotonic() - started < 1.2:  # four leases long: renewed, never lapsed
            with exclusive("retention") as overlapping:
                assert not overlapping
            time.sleep(0.05)
    assert not redis_client().exists(keys.job_lease_key("retention"))


def test_a_run_never_releases_a_lease_that_is_no_longer_its_own():
    with exclusive("dead_letters"):
        redis_client().set(keys.job_lease_key("dead_letters"), "another run's token")
    assert redis_client().get(keys.job_lease_key("dead_letters")) == b"another run's token"
