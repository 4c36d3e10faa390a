"""Run the template's Lambda handlers in this process, the way the Lambda runtime would.

Each handler module is loaded from its file on the first invoke (a cold start) under a unique module
name, because every function's module is called app.py. Each invocation runs in its own daemon
thread so a handler that overruns its Timeout can be abandoned (Python cannot kill a thread; the
caller gets the timeout, as with Lambda, and the stack still exits cleanly). Events and results make
a JSON round trip, so a handler sees a fresh copy and a result Lambda could not marshal fails here too.
"""

from __future__ import annotations

import contextlib
import decimal
import importlib.util
import json
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from batchops_local.template import Function, function_name_from_arn

# Lambda's synchronous invocation limits, as Lambda counts them (the response gets 100 bytes more).
MAX_PAYLOAD_BYTES = 6_291_456
MAX_RESPONSE_BYTES = 6_291_556

Handler = Callable[[Any, Any], Any]


class InvocationError(Exception):
    """An invocation failed. `error_type` is what Lambda reports as errorType."""

    def __init__(self, function_name: str, error_type: str, message: str) -> None:
        super().__init__(f"{function_name}: {error_type}: {message}")
        self.function_name = function_name
        self.error_type = error_type
        self.message = message


class HandlerError(InvocationError):
    """The handler raised; `error_type` is the exception's class name, as Lambda reports it."""


class InvocationTimeout(InvocationError):
    """The handler ran past its Timeout (or the caller's shorter limit)."""


class PayloadTooLarge(InvocationError):
    """The event is over Lambda's 6 MB invoke limit; Lambda rejects it before any handler runs."""


class LambdaContext:
    """The attributes and method of the Python runtime's context object that handlers use."""

    def __init__(self, fn: Function, started: float) -> None:
        self.function_name = fn.name
        self.function_version = "$LATEST"
        self.invoked_function_arn = fn.arn
        self.memory_limit_in_mb = fn.memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{fn.name}"
        self.log_stream_name = f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
        self.identity: Any = None
        self.client_context: Any = None
        self._deadline = started + fn.timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class _LambdaJSONEncoder(json.JSONEncoder):
    """The Python runtime serialises Decimal (what DynamoDB returns) as a JSON number."""

    def default(self, o: Any) -> Any:
        if isinstance(o, decimal.Decimal):
            return int(o) if o == o.to_integral_value() else float(o)
        return super().default(o)


def to_json(value: Any) -> str:
    return json.dumps(value, cls=_LambdaJSONEncoder)


class FunctionRegistry:
    """Every function of the template, by name, invoked in-process."""

    def __init__(self, functions: Iterable[Function], log: Callable[[str], None] | None = None) -> None:
        self._functions: dict[str, Function] = {fn.name: fn for fn in functions}
        self._handlers: dict[str, Handler] = {}
        # One lock for all cold starts: module-level code (boto3 clients, Powertools setup) then
        # runs one function at a time, as it would in separate Lambda sandboxes.
        self._load_lock = threading.Lock()
        # A Lambda sandbox serves one invocation at a time, and handlers rely on it (Powertools'
        # resolver keeps the current event on itself): one lock per function, like one sandbox.
        self._sandboxes: dict[str, threading.Lock] = {name: threading.Lock() for name in self._functions}
        self._log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        for fn in self._functions.values():
            for folder in fn.layer_dirs:  # a layer is on sys.path in Lambda (/opt/python)
                if str(folder) not in sys.path:
                    sys.path.append(str(folder))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and function_name_from_arn(name) in self._functions

    def get(self, name_or_arn: str) -> Function:
        try:
            return self._functions[function_name_from_arn(name_or_arn)]
        except KeyError:
            raise KeyError(f"no function {name_or_arn!r} in the template") from None

    def invoke(self, name_or_arn: str, event: Any, *, timeout: float | None = None, log_traceback: bool = True) -> Any:
        """Invoke synchronously and return the handler's JSON-decoded result.

        Raises HandlerError when the handler raises (or its result cannot be marshalled) and
        InvocationTimeout when it runs longer than min(Timeout, timeout). `log_traceback=False`
        logs a failure in one line (an authorizer's "Unauthorized" is routine, not a crash)."""
        fn = self.get(name_or_arn)
        payload = to_json(event)
        if len(payload.encode()) > MAX_PAYLOAD_BYTES:
            raise PayloadTooLarge(
                fn.name,
                "RequestEntityTooLargeException",
                f"Request must be smaller than {MAX_PAYLOAD_BYTES} bytes for the InvokeFunction operation",
            )
        limit = fn.timeout if timeout is None else min(timeout, fn.timeout)
        started = time.monotonic()
        context = LambdaContext(fn, started)
        result: Future[Any] = Future()
        worker = threading.Thread(
            target=self._run,
            args=(fn, payload, context, result, log_traceback),
            name=f"lambda:{fn.name}",
            daemon=True,
        )
        worker.start()
        try:
            return result.result(timeout=limit)
        except FutureTimeout:
            self._log(f"[{fn.name}] {context.aws_request_id} Task timed out after {limit:.2f} seconds")
            raise InvocationTimeout(fn.name, "Sandbox.Timedout", f"Task timed out after {limit:.2f} seconds") from None

    def _run(
        self, fn: Function, payload: str, context: LambdaContext, result: Future[Any], log_traceback: bool
    ) -> None:
        try:
            handler = self._handler(fn)
            with self._sandboxes[fn.name]:
                output = handler(json.loads(payload), context)
            try:
                encoded = to_json(output)
            except (TypeError, ValueError) as exc:
                raise _MarshalError(f"Unable to marshal response: {exc}") from exc
            if len(encoded.encode()) > MAX_RESPONSE_BYTES:
                limit = MAX_RESPONSE_BYTES
                raise _MarshalError(f"Response payload size exceeded maximum allowed payload size ({limit} bytes).")
            result.set_result(json.loads(encoded))
        except BaseException as exc:  # noqa: BLE001 - a Lambda sandbox reports every failure
            error_type = exc.error_type if isinstance(exc, _MarshalError) else type(exc).__name__
            line = f"[{fn.name}] {context.aws_request_id} {error_type}: {exc}"
            if log_traceback:
                line += "\n" + "".join(traceback.format_exception(exc)).rstrip()
            self._log(line)
            result.set_exception(HandlerError(fn.name, error_type, str(exc)))

    def _handler(self, fn: Function) -> Handler:
        handler = self._handlers.get(fn.name)
        if handler is not None:
            return handler
        with self._load_lock:
            if fn.name not in self._handlers:
                self._handlers[fn.name] = _load_handler(fn)
            return self._handlers[fn.name]


class _MarshalError(Exception):
    error_type = "Runtime.MarshalError"


def _load_handler(fn: Function) -> Handler:
    module_path, _, attribute = fn.handler.rpartition(".")
    source = fn.code_dir / (module_path.replace(".", "/") + ".py")
    module = _load_module(f"batchops_local_fn.{fn.logical_id}.{module_path}", source)
    handler = getattr(module, attribute, None)
    if not callable(handler):
        raise ImportError(f"handler {fn.handler!r}: {source} has no callable {attribute!r}")
    return handler  # type: ignore[no-any-return]


def _load_module(name: str, source: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, source)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {source}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look modules up by name
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]  # the next invoke retries the cold start, as a new sandbox would
        raise
    return module


def install_lambda_bridge(registry: FunctionRegistry) -> None:
    """Route moto's Lambda Invoke (Step Functions tasks, `aws lambda invoke`) to the registry.

    moto runs Lambda in Docker unless config `lambda.use_docker` is false, which selects
    LambdaSimpleBackend; replacing its `invoke` is the documented hook (FACTS.md)."""
    from moto.awslambda_simple.models import LambdaSimpleBackend

    def invoke(
        self: Any,
        function_name: str,
        qualifier: str | None,
        body: Any,
        headers: Mapping[str, str],
        response_headers: dict[str, str],
    ) -> bytes:
        # Raises moto's ResourceNotFound for a function the template does not have.
        name = self.get_function(function_name, qualifier).function_name
        raw = body.decode() if isinstance(body, bytes) else (body or "")
        event = json.loads(raw) if raw.strip() else {}
        if headers.get("X-Amz-Invocation-Type") == "Event":
            threading.Thread(target=_invoke_quietly, args=(registry, name, event), daemon=True).start()
            return b""
        try:
            return to_json(registry.invoke(name, event)).encode()
        except InvocationError as exc:
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps({"errorType": exc.error_type, "errorMessage": exc.message}).encode()

    setattr(LambdaSimpleBackend, "invoke", invoke)  # noqa: B010 - mypy rejects assigning to a method


def _invoke_quietly(registry: FunctionRegistry, name: str, event: Any) -> None:
    # Already logged by the registry; an async invoke has no caller to tell.
    with contextlib.suppress(InvocationError):
        registry.invoke(name, event)
