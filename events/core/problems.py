"""RFC 9457 problem details: every error the API gives is `application/problem+json`.
`Problem` is raised anywhere below a view; `events/api/http.py` renders it.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any


class Problem(Exception):
    """Raised anywhere below a view to answer with a problem; nothing is changed by it."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title or HTTPStatus(status).phrase
        self.headers = headers or {}
        self.extra = extra

    def body(self) -> dict[str, Any]:
        """The problem document: `type`, `title`, `status`, `detail` and any extra members."""
        return problem_body(self.status, self.detail, title=self.title, **self.extra)


def problem_body(
    status: int, detail: str, *, title: str | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "type": f"https://httpstatuses.io/{status}",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        **extra,
    }
