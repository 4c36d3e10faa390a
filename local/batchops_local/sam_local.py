"""`make sam-local`: SAM's own emulator (`sam local start-api`) on template.yaml, with the local
stack behind it for what SAM does not emulate.

SAM CLI runs each function in a Docker container but has no DynamoDB, SQS, S3 or Step Functions,
and runs no SQS trigger. So this starts the local stack first (moto, the SQS pollers, Step
Functions, the schedules), bound where containers can reach it, writes the env file that points
every function at it (events/env.json with the host and port containers use), then runs
`sam local start-api` on the template built for this machine's architecture, until Ctrl-C.

Containers reach the host as `host.docker.internal`: Docker Desktop (macOS, Windows) defines it
and forwards it to the host's loopback; Linux's Docker does not, so SAM gets
`--add-host host.docker.internal:host-gateway` (the bridge's gateway, 172.17.0.1 by default),
and moto must then listen beyond 127.0.0.1 (0.0.0.0).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from batchops_local.aws import ANY_ADDRESS, LOCALHOST
from batchops_local.log import stderr_line
from batchops_local.stack import REPO_ROOT, LocalStack, Settings

# events/env.json names the endpoint as a user with Docker Desktop and `make run` would reach it.
ENV_JSON_ENDPOINT = "http://host.docker.internal:5000"
DOCKER_HOST_NAME = "host.docker.internal"


def lambda_architecture(machine: str | None = None) -> str:
    """template.yaml's Architecture for this host: its own, so no CPU emulation is needed."""
    machine = (machine or platform.machine()).lower()
    return "arm64" if machine in ("arm64", "aarch64") else "x86_64"


def container_wiring(system: str | None = None) -> tuple[str, list[str]]:
    """Where the stack listens and the extra `sam local` flags, so that a container reaches moto
    as host.docker.internal on this platform."""
    if (system or platform.system()) == "Linux":
        return ANY_ADDRESS, ["--add-host", f"{DOCKER_HOST_NAME}:host-gateway"]
    return LOCALHOST, []


def env_vars(template_env: Mapping[str, Mapping[str, str]], endpoint: str) -> dict[str, dict[str, str]]:
    """events/env.json with its endpoint (queue URLs included) replaced by `endpoint`."""
    return {
        function: {key: value.replace(ENV_JSON_ENDPOINT, endpoint) for key, value in variables.items()}
        for function, variables in template_env.items()
    }


def shared_flags(arch: str, env_file: Path, endpoint: str, wiring: Sequence[str]) -> list[str]:
    """What `sam local start-api` and `sam local invoke` both need: the template built for `arch`,
    the env file, the endpoint parameter (template.yaml declares AWS_ENDPOINT_URL only when it is
    set) and the host mapping."""
    template = REPO_ROOT / ".aws-sam" / ("build" if arch == "arm64" else f"build-{arch}") / "template.yaml"
    return [
        "--template-file",
        str(template.relative_to(REPO_ROOT)),
        "--env-vars",
        str(env_file.relative_to(REPO_ROOT) if env_file.is_relative_to(REPO_ROOT) else env_file),
        "--parameter-overrides",
        f"Architecture={arch} LocalEndpointUrl={endpoint}",
        *wiring,
    ]


def start_api_command(sam: str, shared: Sequence[str], port: int, extra: Sequence[str]) -> list[str]:
    return [
        sam,
        "local",
        "start-api",
        *shared,
        "--host",
        LOCALHOST,
        "--port",
        str(port),
        # One container per function, kept between requests (and restarted when its code changes):
        # a new container per request costs the runtime's start and the layer's imports each time.
        "--warm-containers",
        "LAZY",
        *extra,
    ]


def parse_args(argv: Sequence[str] | None, environ: Mapping[str, str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m batchops_local.sam_local",
        description="sam local start-api on template.yaml, with the local stack (moto, SQS pollers, "
        "Step Functions) behind it. Arguments after -- go to sam local start-api.",
    )
    parser.add_argument("--port", type=int, default=int(environ.get("BATCHOPS_SAM_PORT", "3000")))
    parser.add_argument("--aws-port", type=int, default=int(environ.get("BATCHOPS_LOCAL_AWS_PORT", "5000")))
    parser.add_argument("--arch", choices=("arm64", "x86_64"), default=lambda_architecture())
    parser.add_argument("--api-keys", default=environ.get("BATCHOPS_LOCAL_API_KEYS"))
    parser.add_argument("--sam", default=environ.get("BATCHOPS_LOCAL_SAM", str(REPO_ROOT / ".venv-sam/bin/sam")))
    parser.add_argument("--env-file", type=Path, default=REPO_ROOT / ".aws-sam" / "sam-local-env.json")
    parser.add_argument("sam_args", nargs="*", help="passed to sam local start-api (after --)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv, os.environ)
    bind, wiring = container_wiring()
    # The stack's own API is not the one served here: it takes a free port, out of SAM's way.
    settings = Settings(
        port=0,
        aws_port=args.aws_port,
        template=REPO_ROOT / "template.yaml",
        api_keys=args.api_keys,
        schedule_scale=1.0,
        bind=bind,
    )
    stack = LocalStack(settings, out=sys.stderr)
    try:
        stack.start()
    except Exception as exc:  # noqa: BLE001 - reported in one line, as `make run` does
        stderr_line(f"batchops sam local: cannot start the local stack: {exc}")
        stack.stop()
        return 2
    assert stack.moto is not None
    endpoint = f"http://{DOCKER_HOST_NAME}:{stack.moto.port}"
    template_env: dict[str, Any] = json.loads((REPO_ROOT / "events" / "env.json").read_text())
    args.env_file.parent.mkdir(parents=True, exist_ok=True)
    args.env_file.write_text(json.dumps(env_vars(template_env, endpoint), indent=2) + "\n")
    shared = shared_flags(args.arch, args.env_file, endpoint, wiring)
    command = start_api_command(args.sam, shared, args.port, args.sam_args)
    sam_path = os.path.relpath(args.sam, REPO_ROOT)
    # What a function's own event runs with, in another terminal while this runs.
    invoke = shlex.join([sam_path, "local", "invoke", *shared, *args.sam_args])
    keys = "".join(f"  key: {k.workspace} ({k.plan}) {k.key}\n" for k in stack.keys)
    sys.stdout.write(
        f"batchops sam local\n  API: http://{LOCALHOST}:{args.port} (sam local start-api)\n"
        f"  AWS: {stack.moto.endpoint} (moto; containers: {endpoint})\n{keys}"
        f"  env: {args.env_file}\n  run: {shlex.join(command)}\n"
        f"  invoke: {invoke} <LogicalId> -e events/<file>.json\n"
    )
    sys.stdout.flush()
    # SAM's credentials and region reach the containers (not env.json): moto takes any.
    sam_env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "SAM_CLI_TELEMETRY": "0",
    }
    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        sam_env.pop(key, None)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # Before SAM starts: a child keeps a signal this process ignores (SIGINT, when started in the
    # background by a shell), and SAM then could not be stopped by it.
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    sam = subprocess.Popen(command, env=sam_env, cwd=REPO_ROOT)  # noqa: S603 - our own command line
    while not stop.wait(0.2) and sam.poll() is None:
        pass
    if sam.poll() is None:
        # On SIGTERM SAM removes its warm containers and exits (in 2-5 s here).
        sam.terminate()
        try:
            sam.wait(timeout=30)
        except subprocess.TimeoutExpired:
            sam.kill()
            sam.wait()
    stack.stop()
    return 0 if stop.is_set() else (sam.returncode or 1)


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # As `python -m batchops_local` does: moto's state is torn down with the process, at once.
    os._exit(code)
