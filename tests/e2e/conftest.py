"""The local stack over real HTTP: started once per session on free ports, stopped at the end."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
START_DEADLINE_S = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LocalStack:
    process: subprocess.Popen[str]
    api_url: str
    aws_url: str
    keys: dict[str, str]
    output: list[str] = field(default_factory=list)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(2)  # SIGINT, as Ctrl-C
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_stack(*, api_keys: str | None, template: Path = ROOT / "template.yaml") -> LocalStack:
    api_port, aws_port = free_port(), free_port()
    env = {**os.environ, "BATCHOPS_LOCAL_PORT": str(api_port), "BATCHOPS_LOCAL_AWS_PORT": str(aws_port)}
    env.pop("BATCHOPS_LOCAL_API_KEYS", None)
    if api_keys is not None:
        env["BATCHOPS_LOCAL_API_KEYS"] = api_keys
    process = subprocess.Popen(
        [sys.executable, "-m", "batchops_local", "--template", str(template)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )
    stack = LocalStack(process, f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{aws_port}", {})
    ready = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            stack.output.append(line.rstrip("\n"))
            if line.strip().startswith("key:"):
                # "key: <workspace> (<plan>) <key>"
                _, workspace, _plan, key = line.split()
                stack.keys[workspace] = key
            if line.strip() == "ready":
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + START_DEADLINE_S
    while not ready.is_set():
        if process.poll() is not None or time.monotonic() > deadline:
            stack.stop()
            raise RuntimeError("local stack did not start:\n" + "\n".join(stack.output))
        ready.wait(0.1)
    return stack


KEY_A = "bo_e2e_workspace_a_key_0000000001"
KEY_B = "bo_e2e_workspace_b_key_0000000002"


@pytest.fixture(scope="session")
def stack() -> Iterator[LocalStack]:
    running = start_stack(api_keys=f"ws-a:pro:{KEY_A},ws-b:free:{KEY_B}")
    yield running
    running.stop()
