"""The values that the app injects into route handlers."""

from __future__ import annotations

from litestar.di import NamedDependency

from vidqueue.context import Context

ContextDep = NamedDependency[Context]
"""The process's `Context` (Redis, records, queue, storage)."""

UserDep = NamedDependency[str]
"""The id of the calling user."""
