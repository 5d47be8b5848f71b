"""The client's errors: each names the problem the server returned, or the events that
failed (docs: client/README.md).
"""

from __future__ import annotations

from typing import Any


class StreamsiteError(Exception):
    """Anything the client gives up on."""


class ApiError(StreamsiteError):
    """The server answered with an error status; `problem` is its application/problem+json
    body (or `{"detail": <text>}` when the body was not one), `retry_after` its
    Retry-After in seconds, if any.
    """

    def __init__(self, status: int, problem: dict[str, Any], what: str = "") -> None:
        self.status = status
        self.problem = problem
        self.retry_after: float | None = None
        detail = problem.get("detail") or problem.get("title") or ""
        prefix = f"{what}: " if what else ""
        super().__init__(f"{prefix}{status} {detail}".rstrip())


class FailedEvent:
    """One event the server did not store: its index in what the caller gave, its eid and
    the server's `publishing_status`, `step` and `detail` (or the client's last error).
    """

    def __init__(self, index: int, eid: str, status: str, step: str, detail: str) -> None:
        self.index, self.eid, self.status, self.step, self.detail = index, eid, status, step, detail

    def __repr__(self) -> str:
        name = f"event {self.index}" + (f" (eid {self.eid})" if self.eid else "")
        return f"{name}: {self.status} at {self.step}: {self.detail}".rstrip(": ")

    __str__ = __repr__


class PublishError(StreamsiteError):
    """Some events were not stored: `failed` names them; `published` counts the events of
    the call that were stored before the failure was final.
    """

    def __init__(self, reason: str, failed: list[FailedEvent], published: int) -> None:
        self.failed = failed
        self.published = published
        shown = "; ".join(str(f) for f in failed[:10])
        more = f"; and {len(failed) - 10} more" if len(failed) > 10 else ""
        super().__init__(f"{reason}: {len(failed)} event(s) not stored: {shown}{more}")


class PublishRefused(PublishError):
    """422: the server refused the batch; never retried (the events would fail again)."""


class CommitRefused(ApiError):
    """422 on a commit: the stream no longer owns the partition, or is gone. What was not
    committed is delivered again to the partition's next owner.
    """


class StreamEnded(StreamsiteError):
    """The stream can go on no more: closed by the caller, or the subscription deleted."""

    def __init__(self, message: str, reason: str = "") -> None:
        self.reason = reason
        super().__init__(message)
