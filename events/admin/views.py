"""What the admin's own views (replay, reset cursors, create token) share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest

REDIS_ERRORS = (redis.RedisError, OSError)  # Redis refused, or is not reachable at all


def permitted_object(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    object_id: str,
    permitted: Callable[[HttpRequest, Any], bool],
) -> Any:
    """The object a custom admin view acts on: 404 if there is none, 403 unless
    `permitted(request, obj)` (one of the admin's `has_…_permission` methods).
    """
    obj = model_admin.get_object(request, unquote(object_id))
    if obj is None:
        raise Http404(f"There is no {model_admin.opts.verbose_name} with id {object_id!r}.")
    if not permitted(request, obj):
        raise PermissionDenied
    return obj
