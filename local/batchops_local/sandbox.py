"""One Lambda sandbox: a process that loads one function's handler and runs its invocations.

Started by `functions.FunctionRegistry` with the function's own environment (its template
Environment with Globals, the Lambda runtime's variables and its role's credentials) and nothing
else of the stack's, as Lambda gives each function a sandbox of its own. The handler is loaded at
start (the init phase), from the function's code folder first on `sys.path` (LAMBDA_TASK_ROOT),
then its layers (/opt/python), and the sandbox says it is ready (or why its init failed). Then
invocations arrive one at a time over the socket the registry passes in: a 4-byte length and a
JSON document each way.

    python -m batchops_local.sandbox FD SPEC_JSON
"""

from __future__ import annotations

import importlib
import json
import socket
import struct
import sys
import time
import traceback
from typing import Any

from batchops_local.runtime import MAX_RESPONSE_BYTES, LambdaContext, to_json

_LENGTH = struct.Struct(">I")


def send_frame(sock: socket.socket, document: Any) -> None:
    data = json.dumps(document).encode()
    sock.sendall(_LENGTH.pack(len(data)) + data)


def receive_frame(sock: socket.socket) -> Any:
    """The next document, or None when the other end has closed."""
    header = _receive_exactly(sock, _LENGTH.size)
    if header is None:
        return None
    (length,) = _LENGTH.unpack(header)
    data = _receive_exactly(sock, length)
    if data is None:
        return None
    return json.loads(data)


def _receive_exactly(sock: socket.socket, count: int) -> bytes | None:
    chunks: list[bytes] = []
    while count:
        chunk = sock.recv(min(count, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        count -= len(chunk)
    return b"".join(chunks)


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


def main(argv: list[str]) -> int:
    sock = socket.socket(fileno=int(argv[1]))
    spec: dict[str, Any] = json.loads(argv[2])
    # LAMBDA_TASK_ROOT first, then the layers' folders (what /opt/python is on Lambda).
    sys.path[:0] = [spec["code_dir"], *spec["layers"]]
    try:
        handler = _load(spec)
    except Exception as exc:  # noqa: BLE001 - the registry reports a failed init like Lambda does
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


if __name__ == "__main__":
    sys.exit(main(sys.argv))
