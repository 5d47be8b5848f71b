"""A subscription's defaults and bounds, in one place: the model, the API's checks, the
plan a session reads and Nakadi's stream parameters all take them from here.
"""

from __future__ import annotations

COMMIT_TIMEOUT = 60  # seconds a session may keep sent events uncommitted (Nakadi's default)
MAX_COMMIT_TIMEOUT = 60  # seconds: the longest commit_timeout, as Nakadi
MAX_DELIVERIES = 10  # failed deliveries of one event before it becomes a dead letter
MAX_DELIVERIES_LIMIT = 1000  # the most max_deliveries a subscription may ask for
ACK_TIMEOUT = 30  # shared mode: seconds an event may stay unacked before another session gets it
MAX_ACK_TIMEOUT = 3600  # seconds: the longest ack_timeout
