"""Schemathesis against the OpenAPI schema: no request, valid or not, gets a 5xx.

Requests are generated from the schema for every route, both fitting it and
deliberately breaking it (wrong types, missing fields, values out of range).
Examples per route are few, so the run stays well under a minute.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

from api.app import create_app

pytestmark = pytest.mark.integration

EXAMPLES_PER_ROUTE = 20


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_request_gets_a_server_error(ctx, mode):
    schema = schemathesis.openapi.from_asgi("/schema/openapi.json", create_app(ctx))
    failures = []
    tried = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        tried += 1

        @given(case=operation.as_strategy(mode))
        @settings(
            max_examples=EXAMPLES_PER_ROUTE,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def call(case):
            case.call_and_validate(checks=[not_a_server_error])

        try:
            call()
        except Unsatisfiable:
            continue  # nothing to break: a route without parameters or body
        except Exception as exc:
            failures.append(f"{operation.label}: {exc}")

    assert tried >= 15
    assert not failures, "\n\n".join(failures)
