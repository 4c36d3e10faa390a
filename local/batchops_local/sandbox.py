"""Lambda sandboxes: processes that each load one function's handler and run its invocations.

`functions.FunctionRegistry` starts one *zygote* per stack (`python -m batchops_local.sandbox`): it
imports the layer's libraries once, then forks a sandbox whenever the registry asks, so a cold start
costs a fork instead of seconds of imports (the forks share those modules copy-on-write). Each
request carries the function's spec and environment, and two descriptors: the socket its
invocations travel over and the pipe its output goes to.

A sandbox sets exactly the function's environment (its template Environment with Globals, the
Lambda runtime's variables, its role's credentials: nothing of the stack's) before importing the
handler from the function's code folder, first on `sys.path` (LAMBDA_TASK_ROOT), then its layers'
(/opt/python). Only modules without import-time side effects may be preloaded, which is the
layer's own rule. The sandbox then says it is ready, or why its init failed, and serves
invocations one at a time: a 4-byte length and a JSON document each way.

The zygote reports each sandbox's exit status as it reaps it, so the registry can report a crash
as Lambda does ("Runtime exited with error: exit status 3").
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import os
import select
import signal
import socket
import struct
import sys
import time
import traceback
from typing import Any

from batchops_local.runtime import MAX_RESPONSE_BYTES, LambdaContext, to_json

_LENGTH = struct.Struct(">I")


def send_frame(sock: socket.socket, document: Any, fds: list[int] | None = None) -> None:
    data = json.dumps(document).encode()
    header = _LENGTH.pack(len(data))
    if fds:
        # Descriptors ride on the header; the document follows on the same stream.
        socket.send_fds(sock, [header], fds)
        sock.sendall(data)
    else:
        sock.sendall(header + data)


def receive_frame(sock: socket.socket, max_fds: int = 0) -> Any:
    """The next document (with the descriptors sent along when `max_fds`), or None at the end."""
    fds: list[int] = []
    if max_fds:
        header, fds, _, _ = socket.recv_fds(sock, _LENGTH.size, max_fds)
        if len(header) < _LENGTH.size:
            rest = _receive_exactly(sock, _LENGTH.size - len(header)) if header else None
            if rest is None:
                return None
            header += rest
    else:
        found = _receive_exactly(sock, _LENGTH.size)
        if found is None:
            return None
        header = found
    (length,) = _LENGTH.unpack(header)
    data = _receive_exactly(sock, length)
    if data is None:
        return None
    document = json.loads(data)
    return (document, fds) if max_fds else document


def _receive_exactly(sock: socket.socket, count: int) -> bytes | None:
    chunks: list[bytes] = []
    while count:
        chunk = sock.recv(min(count, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        count -= len(chunk)
    return b"".join(chunks)


# --- one sandbox ---------------------------------------------------------------------------------


def _failure(exc: BaseException, error_type: str | None = None) -> dict[str, Any]:
    return {
        "ok": False,
        "errorType": error_type or type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_exception(exc),
    }


def _load(spec: dict[str, Any]) -> Any:
    module_name, _, attribute = str(spec["handler"]).rpartition(".")
    module = importlib.import_module(module_name)
    handler = getattr(module, attribute, None)
    if not callable(handler):
        raise ImportError(f"handler {spec['handler']!r}: {module.__file__} has no callable {attribute!r}")
    return handler


def _invoke(handler: Any, spec: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    context = LambdaContext(
        function_name=spec["function"],
        invoked_function_arn=spec["arn"],
        memory_limit_in_mb=int(spec["memory_mb"]),
        deadline=time.monotonic() + float(request["remaining_ms"]) / 1000,
        aws_request_id=str(request["request_id"]),
    )
    try:
        output = handler(json.loads(request["event"]), context)
    except Exception as exc:  # noqa: BLE001 - the runtime reports whatever the handler raised
        return _failure(exc)
    try:
        encoded = to_json(output)
    except (TypeError, ValueError) as exc:
        return _failure(exc, "Runtime.MarshalError") | {"errorMessage": f"Unable to marshal response: {exc}"}
    if len(encoded.encode()) > MAX_RESPONSE_BYTES:
        message = f"Response payload size exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes)."
        return {"ok": False, "errorType": "Runtime.MarshalError", "errorMessage": message, "stackTrace": []}
    return {"ok": True, "result": encoded}


def _serve(sock: socket.socket, spec: dict[str, Any], environment: dict[str, str]) -> int:
    """Become the function's sandbox; the exit status."""
    # Exactly the function's environment: a forked process starts with its parent's.
    os.environ.clear()
    os.environ.update(environment)
    os.chdir(spec["code_dir"])
    # LAMBDA_TASK_ROOT first, then the layers' folders (what /opt/python is on Lambda).
    sys.path[:0] = [spec["code_dir"], *spec["layers"]]
    try:
        handler = _load(spec)
    except Exception as exc:  # noqa: BLE001 - the registry reports a failed init as Lambda does
        send_frame(sock, _failure(exc))
        return 1
    send_frame(sock, {"ok": True, "ready": True})
    while True:
        request = receive_frame(sock)
        if request is None:
            return 0
        answer = _invoke(handler, spec, request)
        sys.stdout.flush()
        sys.stderr.flush()
        send_frame(sock, answer)


def _become_sandbox(control: socket.socket, spec: dict[str, Any], environment: dict[str, str], fds: list[int]) -> None:
    """In the forked child: never returns into the zygote's loop."""
    status = 1
    try:
        control.close()
        for signum in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_DFL)
        connection, output = fds
        # What the function prints, at the C level too, goes to the stack's log.
        os.dup2(output, 1)
        os.dup2(output, 2)
        os.close(output)
        sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
        sys.stderr.reconfigure(line_buffering=True)  # type: ignore[union-attr]
        status = _serve(socket.socket(fileno=connection), spec, environment)
    except BaseException:  # noqa: BLE001 - a sandbox's crash is its exit status, seen by the registry
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(status)


# --- the zygote ----------------------------------------------------------------------------------


def _reap(control: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        send_frame(control, {"exited": pid, "status": os.waitstatus_to_exitcode(status)})


def zygote(control_fd: int, preload: list[str]) -> int:
    control = socket.socket(fileno=control_fd)
    for module in preload:
        with contextlib.suppress(ImportError):
            importlib.import_module(module)
    # The preloaded modules' objects out of the collector's reach: a collection in a sandbox would
    # otherwise write to every one of them (their GC headers) and copy the zygote's pages into each
    # sandbox. Measured (smaps_rollup after a 20-job batch on template.yaml): a Batches job
    # worker's sandbox held 63 MiB of private memory without this, 46 MiB with it (PSS 65 -> 51).
    gc.freeze()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the stack's to handle
    try:
        while True:
            readable, _, _ = select.select([control], [], [], 0.2)
            if readable:
                received = receive_frame(control, max_fds=2)
                if received is None:
                    return 0
                request, fds = received
                pid = os.fork()
                if pid == 0:
                    _become_sandbox(control, request["spec"], request["environment"], fds)
                for fd in fds:
                    os.close(fd)
                send_frame(control, {"spawned": pid})
            _reap(control)
    except OSError:
        # The registry has gone (the stack stopped): so do we; sandboxes see their sockets close.
        return 0


if __name__ == "__main__":
    sys.exit(zygote(int(sys.argv[1]), json.loads(sys.argv[2])))
