"""Start-up on fixed ports from the environment, a clean exit on Ctrl-C (SIGINT), a port in use."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from tests.e2e.harness import FIXTURE_TEMPLATE, free_port, start_stack


def test_ports_from_environment_and_clean_exit_on_sigint(tmp_path: Path) -> None:
    api_port, aws_port = free_port(), free_port()
    stack = start_stack(
        tmp_path,
        {"BATCHOPS_LOCAL_PORT": str(api_port), "BATCHOPS_LOCAL_AWS_PORT": str(aws_port)},
        template=FIXTURE_TEMPLATE,
    )
    try:
        assert stack.api == f"http://127.0.0.1:{api_port}"
        assert stack.aws == f"http://127.0.0.1:{aws_port}"
        assert stack.keys == {}  # the fixture template has no BATCHOPS_TABLE_NAME
        assert httpx.get(f"{stack.api}/public").status_code == 200
    finally:
        code = stack.stop(signal.SIGINT, timeout=10)
    assert code == 0, stack.logs()
    assert "Traceback" not in stack.logs()
    for port in (api_port, aws_port):
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still open after exit"


def test_a_port_in_use_fails_fast_with_a_clear_message(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "batchops_local",
                "--template",
                str(FIXTURE_TEMPLATE),
                "--port",
                str(port),
            ],
            env={**os.environ, "BATCHOPS_LOCAL_AWS_PORT": "0"},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port} for the API" in done.stderr
    assert "ready" not in done.stdout
