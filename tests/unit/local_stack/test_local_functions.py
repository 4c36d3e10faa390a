"""The in-process Lambda runtime: cold starts, context, JSON marshalling, errors, timeouts."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from batchops_local.functions import FunctionRegistry, HandlerError, InvocationTimeout, PayloadTooLarge
from batchops_local.template import Function

HANDLERS = Path(__file__).parent / "fixtures" / "functions" / "handlers"
LAYER = Path(__file__).parent / "fixtures" / "layer"


def fn(name: str, handler: str, timeout: float = 2.0, layers: tuple[Path, ...] = ()) -> Function:
    return Function(name, HANDLERS, handler, timeout, 256, {}, layers)


@pytest.fixture()
def logs() -> list[str]:
    return []


@pytest.fixture()
def registry(logs: list[str]) -> FunctionRegistry:
    return FunctionRegistry(
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
        ],
        log=logs.append,
    )


def test_invoke_by_name_or_arn(registry: FunctionRegistry) -> None:
    result = registry.invoke("Echo", {"a": 1})
    assert result["statusCode"] == 200
    arn = "arn:aws:lambda:us-east-1:123456789012:function:Echo"
    assert registry.invoke(arn, {})["statusCode"] == 200
    assert arn in registry
    assert "Nope" not in registry
    with pytest.raises(KeyError):
        registry.invoke("Nope", {})


def test_each_function_gets_its_own_module() -> None:
    # Every function's file is app.py; each logical id loads its own copy, lazily.
    registry = FunctionRegistry([fn("LazyOne", "app.echo"), fn("LazyTwo", "app.mutate")], log=lambda line: None)
    assert "batchops_local_fn.LazyOne.app" not in sys.modules
    registry.invoke("LazyOne", {})
    assert "batchops_local_fn.LazyTwo.app" not in sys.modules
    registry.invoke("LazyTwo", {})
    one = sys.modules["batchops_local_fn.LazyOne.app"]
    two = sys.modules["batchops_local_fn.LazyTwo.app"]
    assert one is not two
    assert Path(one.__file__) == HANDLERS / "app.py"  # type: ignore[arg-type]


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


def test_layer_folder_is_importable(registry: FunctionRegistry) -> None:
    assert registry.invoke("Layered", {}) == "from the layer"


def test_oversized_event_is_rejected(registry: FunctionRegistry) -> None:
    with pytest.raises(PayloadTooLarge) as info:
        registry.invoke("Echo", {"blob": "x" * (6 * 1024 * 1024)})
    assert info.value.error_type == "RequestEntityTooLargeException"


def test_one_invocation_at_a_time_per_function_like_one_sandbox(registry: FunctionRegistry) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        peaks = list(pool.map(lambda _: registry.invoke("Exclusive", {"hold": 0.05}), range(4)))
    assert max(peaks) == 1
