"""Start and drive the local stack (`python -m batchops_local`), on template.yaml or a test template.

The stack runs as a subprocess, as `make run` starts it; its output goes to files (a pipe nobody
reads would fill up and block it). Ports are 0, so the OS picks free ones and the stack prints them.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
TEMPLATE = REPO / "template.yaml"
FIXTURE_TEMPLATE = HERE / "local_stack" / "fixtures" / "template.yaml"
START_DEADLINE_SECONDS = 60.0
# rate(5 minutes) becomes 0.6 s.
SCHEDULE_SCALE = "0.002"


@dataclass
class RunningStack:
    api: str
    aws: str
    keys: dict[str, str]  # workspace -> key, as printed
    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path

    def client(self, service: str) -> Any:
        session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
        )
        return session.client(service, endpoint_url=self.aws)

    def logs(self) -> str:
        return self.stderr.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise
        return self.process.returncode


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_stack(workdir: Path, env: dict[str, str] | None = None, template: Path = TEMPLATE) -> RunningStack:
    workdir.mkdir(parents=True, exist_ok=True)
    stdout, stderr = workdir / "stdout.log", workdir / "stderr.log"
    full_env = {
        **os.environ,
        "BATCHOPS_LOCAL_PORT": "0",
        "BATCHOPS_LOCAL_AWS_PORT": "0",
        "BATCHOPS_LOCAL_SCHEDULE_SCALE": SCHEDULE_SCALE,
        **(env or {}),
    }
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "batchops_local", "--template", str(template)],
            stdout=out,
            stderr=err,
            env=full_env,
            cwd=REPO,
        )
    deadline = time.monotonic() + START_DEADLINE_SECONDS
    while True:
        lines = stdout.read_text().splitlines()
        if "ready" in lines:
            break
        if process.poll() is not None:
            raise AssertionError(f"the stack exited with {process.returncode}:\n{stderr.read_text()}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"the stack was not ready in {START_DEADLINE_SECONDS} s:\n{stderr.read_text()}")
        time.sleep(0.05)  # poll interval while waiting for the banner
    api = next(line.split("API: ", 1)[1] for line in lines if line.startswith("  API: "))
    aws = next(line.split("AWS: ", 1)[1].split(" ", 1)[0] for line in lines if line.startswith("  AWS: "))
    # "  key: <workspace> (<plan>) <key>"
    keys = {line.split()[1]: line.split()[3] for line in lines if line.startswith("  key: ")}
    assert lines[0] == "batchops local stack"
    return RunningStack(api, aws, keys, process, stdout, stderr)


def wait_for(check: Any, timeout: float = 20.0, interval: float = 0.1, what: str = "condition") -> Any:
    """Poll `check()` until it returns something truthy, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def template_copy(workdir: Path, edit: Any) -> Path:
    """template.yaml changed by `edit(text) -> text`, in `workdir` beside links to the folders its
    CodeUri/ContentUri/DefinitionUri name, so a stack can run it as it runs the real one."""
    workdir.mkdir(parents=True, exist_ok=True)
    for folder in ("functions", "layers", "statemachines"):
        (workdir / folder).symlink_to(REPO / folder, target_is_directory=True)
    original = TEMPLATE.read_text()
    changed = edit(original)
    assert changed != original, "the edit changed nothing"
    path = workdir / "template.yaml"
    path.write_text(changed)
    return path
