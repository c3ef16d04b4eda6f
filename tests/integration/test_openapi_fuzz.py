"""A bounded schemathesis run against a real server: no 5xx, and the OpenAPI document
tells the truth about status codes, content types and response bodies (each validated
against its declared schema). Sandboxed: the server has its own throwaway workspace and
no network, so destructive and model-pulling operations touch nothing real.

Every range a handler enforces (seeds, stop sequences, durations, sizes) is declared in
the schema, so generated data reaches the edges that used to end in a 500. Bounded: a
fixed number of examples per operation, no shrinking, one server.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, Phase, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.integration.conftest import LiveServer, start_server  # noqa: E402

EXAMPLES_PER_OPERATION = 6


@pytest.fixture(scope="module")
def fuzzed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = start_server(tmp_path_factory.mktemp("fuzz") / "ws")
    yield live
    live.stop()


def test_no_server_errors_and_a_truthful_schema(fuzzed_server: LiveServer) -> None:
    from hypothesis import given

    api = schemathesis.openapi.from_url(f"{fuzzed_server.url}/openapi.json")
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]
    failures: list[str] = []
    operations = 0
    for result in api.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def fuzz(case) -> None:  # noqa: ANN001
            response = case.call(timeout=120)
            try:
                case.validate_response(response, checks=checks)
            except Exception as exc:  # noqa: BLE001 - collected, reported together below
                failures.append(f"{case.operation.label}: {exc}"[:2000])

        fuzz()
    assert operations > 40, "the whole API was fuzzed"
    assert not failures, "\n\n".join(failures[:20])
