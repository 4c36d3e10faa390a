"""Every function starts from the built layers alone, as on Lambda, and loads nothing its first
request does not use.

bench/coldstart.py builds each layer with its own recipe (layers/layer.mk, what `sam build`
runs) for this machine, then imports each function and invokes it once with its events/ sample
in a bare interpreter whose path holds only the function, its layers and the runtime's boto3. A
dependency missing from a layer's --no-deps list fails here as it would on Lambda. Timings are
the bench's business (bench/RESULTS.md); this asserts what can be asserted exactly.
"""

from __future__ import annotations

import pytest

from bench import coldstart

# Libraries only a later step of some path needs: never on a first request's way.
NEVER_AT_FIRST_REQUEST = {"aws_xray_sdk", "xlsxwriter", "fpdf", "PIL"}
# The samples name a job no table holds; the step reports that as the error Step Functions sees.
EXPECTED_ERRORS = {"TransactionStepFunction": "NotFoundError"}


@pytest.fixture(scope="module")
def started() -> list[coldstart.ColdStart]:
    return coldstart.measure(runs=1)


def test_every_function_starts_and_answers_from_the_built_layers(started: list[coldstart.ColdStart]) -> None:
    from batchops_local.template import load_template

    functions = {s.function for s in started} - {coldstart.REFERENCE}
    assert functions == set(load_template(coldstart.ROOT / "template.yaml").functions)
    failed = {
        s.function: (s.status, s.error)
        for s in started
        if (s.status is not None and s.status >= 500) or s.error != EXPECTED_ERRORS.get(s.function)
    }
    assert failed == {}


def test_no_first_request_loads_tracing_or_export_libraries(started: list[coldstart.ColdStart]) -> None:
    loaded = {s.function: sorted(set(s.heavy) & NEVER_AT_FIRST_REQUEST) for s in started}
    assert {k: v for k, v in loaded.items() if v} == {}
    # HTTP functions never call out: httpx is the workers' (run, job and webhook calls).
    assert [s.function for s in started if s.kind == "http" and "httpx" in s.heavy] == []
