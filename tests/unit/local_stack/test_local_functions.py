"""The Lambda runtime: a sandbox process per function, its environment, context, JSON marshalling,
errors, timeouts."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from batchops_local.functions import FunctionRegistry, HandlerError, InvocationTimeout, PayloadTooLarge
from batchops_local.template import Function

HANDLERS = Path(__file__).parent / "fixtures" / "functions" / "handlers"
LAYER = Path(__file__).parent / "fixtures" / "layer"


def fn(
    name: str, handler: str, timeout: float = 2.0, layers: tuple[Path, ...] = (), env: dict[str, str] | None = None
) -> Function:
    return Function(name, HANDLERS, handler, timeout, 256, env or {}, layers)


@pytest.fixture()
def logs() -> list[str]:
    return []


@pytest.fixture()
def registry(logs: list[str]) -> Iterator[FunctionRegistry]:
    registry = FunctionRegistry(
        [
            fn("Echo", "app.echo"),
            fn("Ctx", "app.context_info", timeout=3),
            fn("Boom", "app.boom"),
            fn("Slow", "app.slow", timeout=0.3),
            fn("Decimals", "app.decimals"),
            fn("Unmarshallable", "app.unmarshallable"),
            fn("Mutate", "app.mutate"),
            fn("Layered", "app.uses_layer", layers=(LAYER,)),
            fn("Missing", "app.no_such_handler"),
            fn("Exclusive", "app.exclusive"),
            fn("Pid", "app.pid"),
            fn("OtherPid", "app.pid"),
            fn("SlowPid", "app.slow_pid", timeout=0.3),
            fn("Say", "app.say"),
            fn("Die", "app.die"),
        ],
        log=logs.append,
    )
    yield registry
    registry.close()


def test_invoke_by_name_or_arn(registry: FunctionRegistry) -> None:
    result = registry.invoke("Echo", {"a": 1})
    assert result["statusCode"] == 200
    arn = "arn:aws:lambda:us-east-1:123456789012:function:Echo"
    assert registry.invoke(arn, {})["statusCode"] == 200
    assert arn in registry
    assert "Nope" not in registry
    with pytest.raises(KeyError):
        registry.invoke("Nope", {})


def test_each_function_runs_in_a_sandbox_process_of_its_own(registry: FunctionRegistry) -> None:
    first = registry.invoke("Pid", {})
    assert first != os.getpid()
    # The sandbox stays warm: the second invocation is not a cold start.
    assert registry.invoke("Pid", {}) == first
    # Another function (even with the same code) has its own sandbox.
    assert registry.invoke("OtherPid", {}) not in (first, os.getpid())


def test_a_function_sees_only_its_own_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BATCHOPS_TABLE_NAME", "the-stacks-own")
    monkeypatch.setenv("AWS_PROFILE", "developer")
    registry = FunctionRegistry(
        [fn("A", "app.environ", env={"ONLY_A": "a"}), fn("B", "app.environ", env={"ONLY_B": "b"})],
        log=lambda line: None,
        environment={"AWS_ENDPOINT_URL": "http://127.0.0.1:1"},
    )
    try:
        seen_a, seen_b = registry.invoke("A", {}), registry.invoke("B", {})
    finally:
        registry.close()
    assert seen_a["ONLY_A"] == "a" and "ONLY_B" not in seen_a
    assert seen_b["ONLY_B"] == "b" and "ONLY_A" not in seen_b
    # Nothing of the stack's own environment leaks in; the runtime's variables are there.
    assert "BATCHOPS_TABLE_NAME" not in seen_a and "AWS_PROFILE" not in seen_a
    assert seen_a["AWS_ENDPOINT_URL"] == "http://127.0.0.1:1"
    assert seen_a["AWS_LAMBDA_FUNCTION_NAME"] == "A"
    assert seen_a["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert seen_a["LAMBDA_TASK_ROOT"] == str(HANDLERS)
    assert seen_a["_HANDLER"] == "app.environ"


def test_handler_output_reaches_the_log_with_the_function_name(registry: FunctionRegistry, logs: list[str]) -> None:
    assert registry.invoke("Say", {"line": "line-42"}) == "said"
    # A reader thread forwards the sandbox's output as it comes, apart from the answer.
    deadline = time.monotonic() + 5
    while "[Say] line-42" not in logs:
        assert time.monotonic() < deadline, logs
        time.sleep(0.01)


def test_a_sandbox_that_dies_is_replaced(registry: FunctionRegistry) -> None:
    with pytest.raises(HandlerError) as info:
        registry.invoke("Die", {})
    assert info.value.error_type == "Runtime.ExitError"
    assert "exit status 3" in info.value.message
    with pytest.raises(HandlerError):
        registry.invoke("Die", {})  # a new sandbox, which dies again


def test_context_object(registry: FunctionRegistry) -> None:
    info = registry.invoke("Ctx", {})
    assert info["function_name"] == "Ctx"
    assert info["function_version"] == "$LATEST"
    assert info["invoked_function_arn"] == "arn:aws:lambda:us-east-1:123456789012:function:Ctx"
    assert info["memory_limit_in_mb"] == 256
    assert info["log_group_name"] == "/aws/lambda/Ctx"
    assert "[$LATEST]" in info["log_stream_name"]
    assert 2000 < info["remaining"] <= 3000
    assert info["aws_request_id"] != registry.invoke("Ctx", {})["aws_request_id"]


def test_event_is_a_copy_and_results_are_json(registry: FunctionRegistry) -> None:
    event = {"a": [1, 2]}
    assert registry.invoke("Mutate", event) == {"a": [1, 2], "mutated": True}
    assert event == {"a": [1, 2]}
    # The Lambda runtime writes Decimal as a JSON number.
    assert registry.invoke("Decimals", {}) == {"n": 3, "f": 1.5}


def test_handler_exception(registry: FunctionRegistry, logs: list[str]) -> None:
    with pytest.raises(HandlerError) as info:
        registry.invoke("Boom", {})
    assert (info.value.error_type, info.value.message) == ("KeyError", "'missing'")
    assert any("KeyError" in line and "Traceback" in line for line in logs)


def test_unmarshallable_result(registry: FunctionRegistry) -> None:
    with pytest.raises(HandlerError) as info:
        registry.invoke("Unmarshallable", {})
    assert info.value.error_type == "Runtime.MarshalError"


def test_missing_handler_is_an_import_error(registry: FunctionRegistry) -> None:
    with pytest.raises(HandlerError) as info:
        registry.invoke("Missing", {})
    assert info.value.error_type == "ImportError"


def test_timeout(registry: FunctionRegistry, logs: list[str]) -> None:
    with pytest.raises(InvocationTimeout) as info:
        registry.invoke("Slow", {"sleep": 5})
    assert info.value.error_type == "Sandbox.Timedout"
    assert "Task timed out after 0.30 seconds" in logs[-1]
    # A caller's shorter limit wins over the function's Timeout.
    with pytest.raises(InvocationTimeout):
        registry.invoke("Slow", {"sleep": 5}, timeout=0.05)


def test_a_timed_out_sandbox_is_killed_and_replaced(registry: FunctionRegistry) -> None:
    before = registry.invoke("SlowPid", {"sleep": 0})
    with pytest.raises(InvocationTimeout):
        registry.invoke("SlowPid", {"sleep": 5})
    assert not _alive(before)
    assert registry.invoke("SlowPid", {"sleep": 0}) not in (before, os.getpid())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A killed child not yet reaped is a zombie: read its state.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(")")[-1].split()[0] != "Z"


def test_layer_folder_is_importable(registry: FunctionRegistry) -> None:
    assert registry.invoke("Layered", {}) == "from the layer"


def test_oversized_event_is_rejected(registry: FunctionRegistry) -> None:
    with pytest.raises(PayloadTooLarge) as info:
        registry.invoke("Echo", {"blob": "x" * (6 * 1024 * 1024)})
    assert info.value.error_type == "RequestEntityTooLargeException"


def test_close_stops_every_sandbox(logs: list[str]) -> None:
    registry = FunctionRegistry([fn("Pid", "app.pid")], log=logs.append)
    pid = registry.invoke("Pid", {})
    registry.close()
    assert not _alive(pid)


def test_one_invocation_at_a_time_per_function_like_one_sandbox(registry: FunctionRegistry) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        peaks = list(pool.map(lambda _: registry.invoke("Exclusive", {"hold": 0.05}), range(4)))
    assert max(peaks) == 1
