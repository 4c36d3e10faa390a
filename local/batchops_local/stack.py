"""Wire the local stack: moto, resources, functions, gateway, pollers, schedules; then wait.

Start order matters: moto first (its port goes into queue URLs), the gateway socket early (a port
in use fails before any work), os.environ before any handler or boto3 client reads it, resources
before the first invoke, the banner last so "ready" means ready.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TextIO

from batchops_local.aws import (
    LOCAL_DEFAULTS,
    LOCALHOST,
    MotoServer,
    apply_environment,
    client_host,
    local_environment,
)
from batchops_local.enforcement import Enforcer, table_keys
from batchops_local.functions import FunctionRegistry, install_lambda_bridge
from batchops_local.gateway import GatewayApp, GatewayServer
from batchops_local.iam import load_roles
from batchops_local.keys import TABLE_VARIABLE, SeededKey, parse_key_specs, seed_api_keys
from batchops_local.log import stderr_line
from batchops_local.moto_dynamodb import install as install_moto_dynamodb
from batchops_local.resources import create_all
from batchops_local.schedule import ScheduleTimer, start_schedules
from batchops_local.sqs import SqsPoller, start_pollers
from batchops_local.template import Template, TemplateError, load_template

REPO_ROOT = Path(__file__).resolve().parents[2]
# What the template's functions import on their first invocation, imported once by the zygote the
# sandboxes fork from (none has import-time side effects: the layer's rule). Measured: a function's
# first invocation spent 0.9 s on these imports and 0.4 s on X-Ray's SDK (imported by Powertools'
# Tracer even with tracing off); forked from the zygote it starts in about 10 ms.
PRELOAD = (
    "boto3",
    "botocore.session",
    "aws_xray_sdk.core",
    "batchops.api.authorizer",
    "batchops.api.handler",
    "batchops.api.routes",
    "batchops.api.workers",
    "batchops.api.batches",
    "batchops.api.event_log",
    "batchops.api.jobs",
    "batchops.api.operations",
    "batchops.api.runs",
    "batchops.api.system",
    "batchops.api.tracking",
)


# Sandboxes one function may run at once (BATCHOPS_LOCAL_CONCURRENCY, --concurrency): 5 is the
# default max_parallel of a Batches batch, so a default batch shows its whole window locally.
# Sandboxes start only when invocations overlap, and each costs little beside the zygote's pages it
# shares (RSS/PSS measured in docs/scaling.md).
DEFAULT_CONCURRENCY = 5

_stderr = stderr_line


@dataclass(frozen=True)
class Settings:
    port: int
    aws_port: int
    template: Path
    api_keys: str | None
    schedule_scale: float
    sweep_seconds: float = 5.0
    concurrency: int = DEFAULT_CONCURRENCY
    bind: str = LOCALHOST


def parse_settings(argv: Sequence[str] | None, environ: Mapping[str, str]) -> Settings:
    parser = argparse.ArgumentParser(
        prog="python -m batchops_local",
        description="batchops local stack: API Gateway, Lambda, SQS, Step Functions and DynamoDB "
        "on 127.0.0.1, without Docker (moto).",
    )
    parser.add_argument("--port", type=int, default=int(environ.get("BATCHOPS_LOCAL_PORT", "3000")))
    parser.add_argument("--aws-port", type=int, default=int(environ.get("BATCHOPS_LOCAL_AWS_PORT", "5000")))
    parser.add_argument("--template", type=Path, default=REPO_ROOT / "template.yaml")
    parser.add_argument("--api-keys", default=environ.get("BATCHOPS_LOCAL_API_KEYS"))
    parser.add_argument(
        "--schedule-scale", type=float, default=float(environ.get("BATCHOPS_LOCAL_SCHEDULE_SCALE", "1.0"))
    )
    parser.add_argument("--sweep-seconds", type=float, default=float(environ.get("BATCHOPS_LOCAL_SWEEP_SECONDS", "5")))
    parser.add_argument(
        "--concurrency",
        type=int,
        default=int(environ.get("BATCHOPS_LOCAL_CONCURRENCY", str(DEFAULT_CONCURRENCY))),
        help="sandboxes (concurrent invocations) per function, at most; ReservedConcurrentExecutions lowers it",
    )
    parser.add_argument(
        "--bind",
        default=environ.get("BATCHOPS_LOCAL_BIND", LOCALHOST),
        help="the address the API and moto listen on; 0.0.0.0 lets sam local's containers reach moto",
    )
    args = parser.parse_args(argv)
    if args.concurrency < 1:
        parser.error("the concurrency must be at least 1")
    if args.schedule_scale <= 0:
        parser.error("the schedule scale must be positive")
    if args.sweep_seconds <= 0:
        parser.error("the sweep interval must be positive")
    return Settings(
        args.port,
        args.aws_port,
        args.template,
        args.api_keys,
        args.schedule_scale,
        args.sweep_seconds,
        args.concurrency,
        args.bind,
    )


class LocalStack:
    def __init__(self, settings: Settings, out: TextIO = sys.stdout) -> None:
        self.settings = settings
        self.out = out
        self.moto: MotoServer | None = None
        self.gateway: GatewayServer | None = None
        self.pollers: list[SqsPoller] = []
        self.timers: list[ScheduleTimer] = []
        self.keys: list[SeededKey] = []
        self.template: Template | None = None
        self.registry: FunctionRegistry | None = None

    def start(self) -> None:
        specs = parse_key_specs(self.settings.api_keys)
        install_moto_dynamodb()
        self.moto = MotoServer(self.settings.aws_port, self.settings.bind)
        self.moto.start()
        endpoint = self.moto.endpoint
        template = self.template = load_template(self.settings.template, endpoint)
        # Each function's role as `sam deploy` creates it; every call a function signs is judged
        # against it from here on (the stack's own calls are not a function's).
        roles = load_roles(self.settings.template, endpoint)
        self.moto.app.enforcer = Enforcer(roles.values(), table_keys(template.tables.values()), _stderr)
        registry = self.registry = FunctionRegistry(
            template.functions.values(),
            log=_stderr,
            environment={**LOCAL_DEFAULTS, **local_environment(endpoint, self.moto.port)},
            roles=roles,
            concurrency=self.settings.concurrency,
            preload=PRELOAD,
        )
        self.gateway = GatewayServer(
            GatewayApp(template, registry, log=_stderr), self.settings.port, self.settings.bind
        )
        # The stack seeds API keys with batchops' own service, on the table the functions use.
        tables = template.values_of(TABLE_VARIABLE)
        seed_env = {TABLE_VARIABLE: tables[0]} if tables else {}
        apply_environment(endpoint, self.moto.port, seed_env)
        _prewarm_boto3()
        create_all(template, endpoint)
        install_lambda_bridge(registry)
        self.keys = seed_api_keys(seed_env, specs)
        self.gateway.start()
        self.pollers = start_pollers(template.functions, template.queues, registry, endpoint, _stderr, roles)
        self.timers = start_schedules(
            template.functions, registry, self.settings.schedule_scale, _stderr, self.settings.sweep_seconds
        )
        self._banner()

    def _banner(self) -> None:
        assert self.gateway is not None and self.moto is not None
        lines = [
            "batchops local stack",
            f"  API: http://{client_host(self.settings.bind)}:{self.gateway.port}",
            f"  AWS: {self.moto.endpoint} (moto; use with aws --endpoint-url)",
            *(f"  key: {k.workspace} ({k.plan}) {k.key}" for k in self.keys),
            "ready",
        ]
        self.out.write("\n".join(lines) + "\n")
        self.out.flush()

    def stop(self) -> None:
        if self.gateway is not None:
            self.gateway.stop()
        workers: list[SqsPoller | ScheduleTimer] = [*self.pollers, *self.timers]
        for worker in workers:
            worker.stop()
        for worker in workers:
            worker.join(timeout=3)
        if self.registry is not None:
            self.registry.close()
        if self.moto is not None:
            self.moto.stop()


def _prewarm_boto3() -> None:
    """Create one client from boto3's default session here, in the main thread: handlers create
    theirs from it in many threads at once, and the session's first client is not thread-safe."""
    import boto3

    boto3.client("dynamodb")


def main(argv: Sequence[str] | None = None) -> int:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    settings = parse_settings(argv, os.environ)
    stack = LocalStack(settings)
    started = time.monotonic()
    try:
        stack.start()
    except (TemplateError, OSError, ValueError) as exc:
        _stderr(f"batchops local stack: cannot start: {exc}")
        stack.stop()
        return 2
    except Exception:  # noqa: BLE001 - anything else at start-up is a bug worth its traceback
        _stderr(f"batchops local stack: cannot start:\n{traceback.format_exc().rstrip()}")
        stack.stop()
        return 2
    _stderr(f"started in {time.monotonic() - started:.2f}s; Ctrl-C stops")
    while not stop.wait(0.1):
        pass
    _stderr("stopping")
    stack.stop()
    return 0
