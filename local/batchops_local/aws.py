"""moto's server (on 127.0.0.1 unless told otherwise) and the process environment that points every AWS client at it.

The functions run in this process, so what they see in os.environ is what a boto3 client in them
uses: AWS_ENDPOINT_URL (honoured natively by botocore) sends every call to moto, fake credentials
and /dev/null config files keep a developer's real profile out of reach.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import urllib.request
from collections.abc import Mapping
from typing import Any

from batchops_local.enforcement import EnforcingApp

LOCALHOST = "127.0.0.1"
# Binding every interface: clients on this machine still connect through the loopback address.
ANY_ADDRESS = "0.0.0.0"  # noqa: S104 - only when asked (BATCHOPS_LOCAL_BIND), for sam local's containers
REGION = "us-east-1"

# moto's config API (POST /moto-api/config): run Step Functions for real, and use the
# Docker-free Lambda backend whose invoke the local stack replaces.
MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}


# Defaults a function's own Environment may override: X-Ray has no daemon here, so Powertools'
# Tracer would only log failed sends.
LOCAL_DEFAULTS = {"POWERTOOLS_TRACE_DISABLED": "true"}


def local_environment(endpoint: str, port: int) -> dict[str, str]:
    """The AWS wiring every function's sandbox (and boto3 in this process) gets, over the
    function's own Environment: everything goes to moto, nothing can reach real AWS."""
    no_proxy = ",".join(filter(None, [LOCALHOST, "localhost", os.environ.get("NO_PROXY", "")]))
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        # Step Functions' Lambda tasks call back into moto at localhost:$MOTO_PORT.
        "MOTO_PORT": str(port),
        # Lets job and webhook targets on 127.0.0.1 through the SSRF checks, locally only.
        "BATCHOPS_LOCAL_MODE": "true",
        "NO_PROXY": no_proxy,
        "no_proxy": no_proxy,
    }


def client_host(bind: str) -> str:
    """The address this machine's clients use for a server bound to `bind`."""
    return LOCALHOST if bind in (ANY_ADDRESS, "") else bind


def apply_environment(endpoint: str, port: int, stack_env: Mapping[str, str]) -> None:
    """Set this process's os.environ (the stack's own clients: pollers, key seeding): `stack_env`
    first, the local AWS wiring on top. Functions do not see it: each runs in its own sandbox."""
    for key in list(os.environ):
        # Anything that could send a client elsewhere than moto, or pick real credentials.
        if key.startswith("AWS_ENDPOINT_URL_") or key in (
            "AWS_PROFILE",
            "AWS_DEFAULT_PROFILE",
            "AWS_SESSION_TOKEN",
            "AWS_SECURITY_TOKEN",
            "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_ROLE_ARN",
        ):
            del os.environ[key]
    os.environ.update(stack_env)
    os.environ.update(local_environment(endpoint, port))


class MotoServer:
    """moto's server (what ThreadedMotoServer runs) on `bind` (127.0.0.1), in a daemon thread.

    ThreadedMotoServer binds inside its thread; on a port in use werkzeug calls sys.exit there
    and start() waits forever (port 5000 is taken by AirPlay on macOS). Binding the socket here
    turns that into an OSError the stack reports."""

    def __init__(self, port: int, bind: str = LOCALHOST) -> None:
        self.port = port
        self.bind = bind
        self.app = EnforcingApp()
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{client_host(self.bind)}:{self.port}"

    def start(self) -> None:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        # moto logs every request (werkzeug) and whole ASL tracebacks for failed states (FACTS.md).
        for name in ("werkzeug", "moto.stepfunctions"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                listener.bind((self.bind, self.port))
            except OSError as exc:
                raise OSError(f"cannot listen on {self.bind}:{self.port} for moto: {exc.strerror}") from exc
            listener.listen(128)
            self.port = int(listener.getsockname()[1])  # the real one when asked for port 0
            self.app.wrap(DomainDispatcherApplication(create_backend_app))
            # werkzeug duplicates the descriptor (fd=...), so closing ours below is safe.
            self._server = make_server(
                self.bind,
                self.port,
                self.app,
                threaded=True,
                request_handler=MotoRequestHandler,
                fd=listener.fileno(),
            )
        finally:
            listener.close()
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="moto", daemon=True
        )
        self._thread.start()
        self._configure()

    def _configure(self) -> None:
        request = urllib.request.Request(  # noqa: S310 - a fixed http://127.0.0.1 URL
            f"{self.endpoint}/moto-api/config",
            data=json.dumps(MOTO_CONFIG).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=10) as response:
            response.read()

    def stop(self) -> None:
        if self._server is None:
            return
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()
