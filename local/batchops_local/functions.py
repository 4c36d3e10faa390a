"""Run the template's Lambda functions the way Lambda does: each in sandboxes of its own.

A sandbox is a process (`sandbox.py`) started on a function's first invocation (a cold start) and
reused for the next ones. It sees only what Lambda would give it: the function's template
Environment (with Globals), the runtime's variables (AWS_LAMBDA_FUNCTION_NAME, LAMBDA_TASK_ROOT,
...), the local AWS wiring, and its role's credentials, so a missing variable or permission fails
here as it would on AWS (`iam.py`, `enforcement.py`). One sandbox serves one invocation at a time;
a function gets up to `concurrency` sandboxes at once (the stack's BATCHOPS_LOCAL_CONCURRENCY, or
its ReservedConcurrentExecutions when lower), each started only when every other one is busy, so
module state and concurrency bugs behave as with Lambda's execution environments. A handler that
overruns its Timeout gets its sandbox killed, as Lambda does, and the next invocation cold-starts a
new one. Events and results
travel as JSON, so a handler sees a fresh copy and a result Lambda could not marshal fails here too.

Sandboxes are forked from a zygote that has imported the `preload` modules once. Measured here: a
batchops function spent 0.9 s importing the layer and 0.4 s more importing X-Ray on its first
invocation; with 50 functions that made each first request slow enough to time clients out, and a
fork takes about 10 ms.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from batchops_local.iam import Role
from batchops_local.log import stderr_line
from batchops_local.runtime import MAX_PAYLOAD_BYTES, to_json
from batchops_local.sandbox import receive_frame, send_frame
from batchops_local.template import Function, function_name_from_arn

# Lambda gives a function's init phase 10 s; a developer's machine, with other work going on, can
# need longer, and a slow init is not what is being tested.
INIT_SECONDS = 60.0
# What a process needs from the host to run at all; nothing AWS- or batchops-related passes.
_HOST_VARIABLES = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "PYTHONPATH", "SYSTEMROOT")


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


class Invoker(Protocol):
    """What the gateway, the pollers, the schedules and the Step Functions bridge invoke through."""

    def invoke(self, name_or_arn: str, event: Any) -> Any: ...


class _Zygote:
    """The process sandboxes are forked from (`sandbox.zygote`), started on first use."""

    def __init__(self, preload: Sequence[str], log: Callable[[str], None]) -> None:
        self._log = log
        self._control, child = socket.socketpair()
        host = {key: os.environ[key] for key in _HOST_VARIABLES if key in os.environ}
        try:
            self.process = subprocess.Popen(  # noqa: S603 - our own runtime module
                [sys.executable, "-m", "batchops_local.sandbox", str(child.fileno()), json.dumps(list(preload))],
                env=host,  # what the preloaded modules might read at import: nothing of the stack's
                pass_fds=(child.fileno(),),
                stdin=subprocess.DEVNULL,
            )
        finally:
            child.close()
        self._spawn_lock = threading.Lock()
        self._spawned: queue.Queue[int] = queue.Queue()
        self._exits: dict[int, int] = {}
        self._exited = threading.Condition()
        self._gone = False
        threading.Thread(target=self._read, name="zygote", daemon=True).start()

    def _read(self) -> None:
        # The only thread that reads the control socket, and the one that closes it: a socket
        # closed under a blocked reader frees its descriptor number, and the next socketpair
        # (another sandbox, another registry) gets it, so the old reader would read its messages.
        while True:
            try:
                message = receive_frame(self._control)
            except OSError:
                message = None
            if message is None:
                self._control.close()
                self._spawned.put(-1)
                with self._exited:
                    self._gone = True  # no more exit statuses will come
                    self._exited.notify_all()
                return
            if "spawned" in message:
                self._spawned.put(int(message["spawned"]))
            else:
                with self._exited:
                    self._exits[int(message["exited"])] = int(message["status"])
                    self._exited.notify_all()

    def spawn(self, spec: Mapping[str, Any], environment: Mapping[str, str]) -> tuple[int, socket.socket, int]:
        """A new sandbox: its pid, the socket to it, and the read end of its output."""
        ours, theirs = socket.socketpair()
        output_read, output_write = os.pipe()
        try:
            with self._spawn_lock:
                send_frame(
                    self._control, {"spec": spec, "environment": dict(environment)}, [theirs.fileno(), output_write]
                )
                pid = self._spawned.get(timeout=INIT_SECONDS)
        finally:
            theirs.close()
            os.close(output_write)
        if pid < 0:
            ours.close()
            os.close(output_read)
            raise OSError("the sandbox zygote has stopped")
        return pid, ours, output_read

    def exit_status(self, pid: int, timeout: float = 5.0) -> int | None:
        with self._exited:
            self._exited.wait_for(lambda: pid in self._exits or self._gone, timeout)
            # Kept, not popped: the stack stopping and an invocation losing its sandbox both ask
            # (the second asker waited its whole timeout for a status already taken).
            return self._exits.get(pid)

    def close(self) -> None:
        # Shut down, not close: the reader thread sees the end and closes the socket itself.
        with contextlib.suppress(OSError):
            self._control.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        if self.process.poll() is None:
            self.process.kill()


class _Sandbox:
    def __init__(
        self, zygote: _Zygote, fn: Function, environment: Mapping[str, str], log: Callable[[str], None]
    ) -> None:
        self.fn = fn
        self._zygote = zygote
        spec = {
            "function": fn.name,
            "arn": fn.arn,
            "handler": fn.handler,
            "memory_mb": fn.memory_mb,
            "code_dir": str(fn.code_dir),
            "layers": [str(folder) for folder in fn.layer_dirs],
        }
        self.pid, self.socket, output = zygote.spawn(spec, environment)
        self._status: int | None = None
        threading.Thread(target=_forward, args=(output, fn.name, log), name=f"logs:{fn.name}", daemon=True).start()

    def ready(self) -> dict[str, Any] | None:
        """None once the handler is loaded; the init failure otherwise."""
        try:
            self.socket.settimeout(INIT_SECONDS)
            answer = receive_frame(self.socket)
        except (TimeoutError, OSError) as exc:
            return {"errorType": "Runtime.InitError", "errorMessage": f"init did not finish: {exc}"}
        if answer is None:
            message = f"Runtime exited during init: exit status {self.exit_status()}"
            return {"errorType": "Runtime.ExitError", "errorMessage": message}
        return None if answer.get("ready") else dict(answer)

    def call(self, request: dict[str, Any], limit: float) -> Any:
        """The sandbox's answer, or None if it died; raises TimeoutError after `limit` seconds."""
        self.socket.settimeout(limit)
        send_frame(self.socket, request)
        return receive_frame(self.socket)

    def exit_status(self) -> int | None:
        """How the sandbox's process ended (waits for the zygote to reap it)."""
        if self._status is None:
            self._status = self._zygote.exit_status(self.pid)
        return self._status

    def kill(self) -> None:
        """Stop the sandbox and wait until it is gone (the zygote has reaped it)."""
        self.signal_kill()
        self.exit_status()

    def signal_kill(self) -> None:
        """Stop the sandbox, without waiting for the zygote to reap it."""
        # An invocation may be waiting on the socket in another thread (the stack stopping):
        # shutting it down first wakes that thread before the descriptor is freed for reuse.
        with contextlib.suppress(OSError):
            self.socket.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self.socket.close()
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)


def _limit(fn: Function, concurrency: int) -> int:
    """The stack's setting, or the function's reservation when that is lower (as on Lambda, where a
    reservation is also the function's ceiling)."""
    if fn.reserved_concurrency is None:
        return concurrency
    return max(0, min(concurrency, fn.reserved_concurrency))


def _forward(output: int, name: str, log: Callable[[str], None]) -> None:
    """A sandbox's stdout and stderr (Powertools logs, prints, tracebacks), line by line."""
    with open(output, "rb") as stream:
        for raw in stream:
            log(f"[{name}] {raw.decode(errors='replace').rstrip()}")


class FunctionRegistry:
    """Every function of the template, by name, each invoked in sandboxes of its own.

    `environment` is the local wiring every sandbox gets (endpoint, region, local mode); `roles`
    gives each function its role's credentials (without a role a function keeps the wiring's
    credentials and nothing is enforced)."""

    def __init__(
        self,
        functions: Iterable[Function],
        log: Callable[[str], None] | None = None,
        *,
        environment: Mapping[str, str] | None = None,
        roles: Mapping[str, Role] | None = None,
        concurrency: int = 1,
        preload: Sequence[str] = (),
    ) -> None:
        self._functions: dict[str, Function] = {fn.name: fn for fn in functions}
        self._preload = tuple(preload)
        self._zygote: _Zygote | None = None
        self._log = log or stderr_line
        self._environment = dict(environment or {})
        self._roles = dict(roles or {})
        self._lock = threading.Lock()
        self._idle: dict[str, list[_Sandbox]] = {name: [] for name in self._functions}
        self._busy: set[_Sandbox] = set()
        self._limits = {name: _limit(fn, concurrency) for name, fn in self._functions.items()}
        self._slots = {name: threading.BoundedSemaphore(limit) for name, limit in self._limits.items() if limit}
        self._closed = False

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and function_name_from_arn(name) in self._functions

    def get(self, name_or_arn: str) -> Function:
        try:
            return self._functions[function_name_from_arn(name_or_arn)]
        except KeyError:
            raise KeyError(f"no function {name_or_arn!r} in the template") from None

    def concurrency_of(self, name_or_arn: str) -> int:
        """How many invocations of the function may run at once (each in a sandbox of its own)."""
        return self._limits[self.get(name_or_arn).name]

    def environment_of(self, fn: Function) -> dict[str, str]:
        """Exactly what the function's process sees in os.environ."""
        host = {key: os.environ[key] for key in _HOST_VARIABLES if key in os.environ}
        runtime = {
            "AWS_LAMBDA_FUNCTION_NAME": fn.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{fn.name}",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
            "LAMBDA_TASK_ROOT": str(fn.code_dir),
            "_HANDLER": fn.handler,
            "TZ": ":UTC",
        }
        role = self._roles.get(fn.name)
        credentials = role.environment() if role is not None else {}
        return {**host, **runtime, **fn.environment, **self._environment, **credentials}

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
        request_id = str(uuid.uuid4())
        if fn.name not in self._slots:
            # ReservedConcurrentExecutions: 0 is how a function is switched off; Lambda throttles.
            raise InvocationError(fn.name, "TooManyRequestsException", "Rate Exceeded.")
        with self._slots[fn.name]:
            sandbox, init_failure = self._take(fn)
            if init_failure is not None:
                self._discard(sandbox)
                return self._failed(fn, request_id, init_failure, log_traceback)
            request = {"event": payload, "request_id": request_id, "remaining_ms": int(limit * 1000)}
            try:
                answer = sandbox.call(request, limit)
            except TimeoutError:
                # Lambda ends a timed-out sandbox; the next invocation starts a new one.
                self._discard(sandbox)
                message = f"Task timed out after {limit:.2f} seconds"
                self._log(f"[{fn.name}] {request_id} {message}")
                raise InvocationTimeout(fn.name, "Sandbox.Timedout", message) from None
            except OSError as exc:
                self._log(f"[{fn.name}] {request_id} lost its sandbox: {exc}")
                answer = None
            if answer is None:
                self._discard(sandbox)
                status = sandbox.exit_status()
                message = f"RequestId: {request_id} Error: Runtime exited with error: exit status {status}"
                return self._failed(fn, request_id, {"errorType": "Runtime.ExitError", "errorMessage": message}, True)
            self._release(sandbox)
            if not answer.get("ok"):
                return self._failed(fn, request_id, answer, log_traceback)
            return json.loads(answer["result"])

    def _failed(self, fn: Function, request_id: str, answer: Mapping[str, Any], log_traceback: bool) -> Any:
        """Log the failure (with the handler's traceback) and raise it as Lambda reports it."""
        error_type, message = str(answer.get("errorType")), str(answer.get("errorMessage"))
        line = f"[{fn.name}] {request_id} {error_type}: {message}"
        if log_traceback and answer.get("stackTrace"):
            line += "\n" + "".join(answer["stackTrace"]).rstrip()
        self._log(line)
        raise HandlerError(fn.name, error_type, message)

    def _take(self, fn: Function) -> tuple[_Sandbox, dict[str, Any] | None]:
        """An idle sandbox, or a new one once its init is over (with the init's failure, if any)."""
        with self._lock:
            if self._closed:
                raise InvocationError(fn.name, "ServiceException", "the local stack is stopping")
            idle = self._idle[fn.name]
            if idle:
                sandbox = idle.pop()
                self._busy.add(sandbox)
                return sandbox, None
            if self._zygote is None:
                self._zygote = _Zygote(self._preload, self._log)
            sandbox = _Sandbox(self._zygote, fn, self.environment_of(fn), self._log)
            self._busy.add(sandbox)
        # The init runs outside the lock (other functions start meanwhile) and outside the
        # invocation's Timeout, as Lambda's init phase does.
        return sandbox, sandbox.ready()

    def _release(self, sandbox: _Sandbox) -> None:
        with self._lock:
            self._busy.discard(sandbox)
            if self._closed:
                sandbox.kill()
            else:
                self._idle[sandbox.fn.name].append(sandbox)

    def _discard(self, sandbox: _Sandbox) -> None:
        with self._lock:
            self._busy.discard(sandbox)
        sandbox.kill()

    def close(self) -> None:
        """Stop every sandbox (the stack is stopping)."""
        with self._lock:
            self._closed = True
            sandboxes = [*self._busy, *(s for idle in self._idle.values() for s in idle)]
            for idle in self._idle.values():
                idle.clear()
        # All at once, then reaped: one by one, each waited up to 5 s for its exit status when the
        # zygote had gone, and with several sandboxes per function stopping took minutes.
        for sandbox in sandboxes:
            sandbox.signal_kill()
        for sandbox in sandboxes:
            sandbox.exit_status()
        if self._zygote is not None:
            self._zygote.close()


def install_lambda_bridge(registry: Invoker) -> None:
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


def _invoke_quietly(registry: Invoker, name: str, event: Any) -> None:
    # Already logged by the registry; an async invoke has no caller to tell.
    with contextlib.suppress(InvocationError):
        registry.invoke(name, event)
