"""Cold start of every function as Lambda runs it: from the built artifact, in a fresh interpreter.

`.venv/bin/python -m bench.coldstart [FUNCTION ...] [--runs N]`

Each layer is built by its own recipe (layers/layer.mk, what `sam build` runs) for this machine's
architecture: `.aws-sam/build` holds arm64 wheels, which an x86 host cannot import. The runtime's
boto3 is installed beside it with bytecode, as the Lambda base image has it. Each measurement is a
new `python -I -S -B` whose path is only what Lambda's would be (the function's folder, its
layers, the runtime's packages, the standard library), so a module missing from a layer fails here
as it would on Lambda. It imports `app` and invokes `lambda_handler` once with the function's
sample event from events/ against a moto server in this process (the child's CPU excludes moto's).

Reported: CPU time (process_time) of the import, and of import plus first invocation, median of
`--runs` interpreters.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / ".aws-sam" / "bench"
# The runtime's packages: what the Lambda python3.11 image puts beside the layers. The version is
# pyproject's; the runtime's own is older but the same shape.
RUNTIME_PACKAGES = ("boto3==1.44.5",)
HTTP_TARGET_MS = 300.0
WORKER_TARGET_MS = 500.0

CHILD = r"""
import json, sys, time
start = time.process_time()
sys.path[:0] = {paths!r}
import app
imported = time.process_time()

class Context:
    function_name = {name!r}
    function_version = "$LATEST"
    memory_limit_in_mb = {memory}
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:" + {name!r}
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    log_group_name = "/aws/lambda/" + {name!r}
    log_stream_name = "bench"
    def get_remaining_time_in_millis(self):
        return 900_000

event = json.loads(sys.stdin.read())
error = None
try:
    answer = app.lambda_handler(event, Context())
except Exception as exc:  # the authorizer denies by raising; a sample may name nothing stored
    answer, error = None, type(exc).__name__
done = time.process_time()
status = answer.get("statusCode") if isinstance(answer, dict) else None
heavy = sorted(m for m in ("aws_xray_sdk", "httpx", "xlsxwriter", "fpdf", "PIL", "s3transfer") if m in sys.modules)
print(json.dumps({{"import_ms": (imported - start) * 1000, "total_ms": (done - start) * 1000,
                  "status": status, "error": error, "modules": len(sys.modules), "heavy": heavy}}))
"""


# The floor: what a team writes by hand for GET /v1/batches/{batch_id} with the same libraries (the
# shape of Powertools' REST API example): Logger, Metrics, a validating resolver, one pydantic model,
# one boto3 DynamoDB client and one GetItem. Measured like the functions, from the same layers, so the
# distance between it and a batchops function is what batchops' own code costs.
REFERENCE_APP = """
import os

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from pydantic import BaseModel

logger = Logger()
metrics = Metrics(namespace="Reference")
app = APIGatewayRestResolver(enable_validation=True)
dynamodb = boto3.client("dynamodb")


class Batch(BaseModel):
    id: str
    found: bool


@app.get("/v1/batches/<batch_id>")
def get_batch(batch_id: str) -> Batch:
    key = {"pk": {"S": "WS#ws-a#BATCH#" + batch_id}, "sk": {"S": "BATCH"}}
    found = dynamodb.get_item(TableName=os.environ["BATCHOPS_TABLE_NAME"], Key=key)
    return Batch(id=batch_id, found="Item" in found)


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event, context):
    return app.resolve(event, context)
"""
REFERENCE = "Reference (hand-written, same libraries)"


@dataclass(frozen=True)
class ColdStart:
    function: str
    kind: str  # "http" or "worker"
    import_ms: float
    total_ms: float
    status: int | None
    error: str | None
    heavy: tuple[str, ...]

    @property
    def target_ms(self) -> float:
        return HTTP_TARGET_MS if self.kind == "http" else WORKER_TARGET_MS


@dataclass(frozen=True)
class LayerSize:
    name: str
    zipped_bytes: int
    unzipped_bytes: int


def _host_arch() -> str:
    return {"arm64": "aarch64", "amd64": "x86_64"}.get(platform.machine().lower(), platform.machine())


def _document() -> dict[str, Any]:
    from cfnlint.decode import cfn_yaml

    document: dict[str, Any] = cfn_yaml.load(str(ROOT / "template.yaml"))
    return document


def layer_sources() -> dict[str, str]:
    """The template's own layers (logical id -> ContentUri)."""
    resources = _document()["Resources"]
    return {
        name: str(res["Properties"]["ContentUri"])
        for name, res in resources.items()
        if res["Type"] == "AWS::Serverless::LayerVersion"
    }


def layers_of(logical_id: str) -> list[str]:
    """A function's layers in order, as SAM merges them: Globals' first, then its own."""
    document = _document()
    refs = (document.get("Globals", {}).get("Function", {}).get("Layers") or []) + (
        document["Resources"][logical_id]["Properties"].get("Layers") or []
    )
    return [str(ref["Ref"]) for ref in refs if isinstance(ref, dict) and "Ref" in ref]


def build_layers(arch: str | None = None) -> dict[str, Path]:
    """Every layer of the template, built by layers/layer.mk; returns logical id -> its python/."""
    built: dict[str, Path] = {}
    for logical_id, uri in layer_sources().items():
        out = BUILD / (arch or _host_arch()) / logical_id
        subprocess.run(
            ["make", "--no-print-directory", "--silent", "-C", str(ROOT / uri), f"build-{logical_id}"],
            env={**os.environ, "ARTIFACTS_DIR": str(out), "LAYER_ARCH": arch or _host_arch()},
            check=True,
            stdout=subprocess.DEVNULL,
        )
        built[logical_id] = out / "python"
    return built


def build_runtime() -> Path:
    target = BUILD / _host_arch() / "runtime"
    marker = target / ".installed"
    if not marker.exists() or marker.read_text() != " ".join(RUNTIME_PACKAGES):
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--upgrade",
                "--root-user-action=ignore",
                "--target",
                str(target),
                *RUNTIME_PACKAGES,
            ],
            check=True,
        )
        subprocess.run(
            [sys.executable, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash", str(target)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        marker.write_text(" ".join(RUNTIME_PACKAGES))
    return target


def layer_sizes(layers: dict[str, Path]) -> list[LayerSize]:
    """Each layer as Lambda receives it: the zip of its python/ folder (deflate, as sam packages)."""
    sizes = []
    for name, folder in layers.items():
        archive = folder.parent / f"{name}.zip"
        with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(folder.rglob("*")):
                zf.write(path, path.relative_to(folder.parent))
        unzipped = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        sizes.append(LayerSize(name, archive.stat().st_size, unzipped))
        archive.unlink()
    return sizes


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def moto_with_resources() -> Iterator[str]:
    """moto's server with the template's tables, queues and buckets (no IAM: roles are tested
    elsewhere; this measures CPU)."""
    import logging

    from moto.server import ThreadedMotoServer

    from batchops_local.resources import create_all
    from batchops_local.template import load_template

    os.environ.update(
        {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}
    )
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        create_all(load_template(ROOT / "template.yaml"), endpoint, functions=False)
        yield endpoint
    finally:
        server.stop()


def _environment(function: Any, endpoint: str, queue_urls: dict[str, str]) -> dict[str, str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_SESSION_TOKEN": "bench",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_LAMBDA_FUNCTION_NAME": function.name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
        "LAMBDA_TASK_ROOT": str(function.code_dir),
        "TZ": ":UTC",
    }
    for variable, value in function.environment.items():
        env[variable] = queue_urls.get(value, value) if variable.endswith("_QUEUE_URL") else value
    # Powertools logs every cold start's first lines; keep them out of the measurement's stdout.
    env["POWERTOOLS_LOG_LEVEL"] = "CRITICAL"
    return env


def _event(function: Any) -> dict[str, Any]:
    from tests.support import api_event, fixture_event

    folder = function.code_dir.name
    return api_event(folder) if function.api_events else fixture_event(folder)


def measure(
    names: Sequence[str] | None = None, runs: int = 3, layers: dict[str, Path] | None = None
) -> list[ColdStart]:
    import boto3

    from batchops_local.template import load_template

    template = load_template(ROOT / "template.yaml")
    layers = layers or build_layers()
    runtime = build_runtime()
    chosen = [template.functions[n] for n in names] if names else list(template.functions.values())
    reference_dir = BUILD / "reference"
    reference_dir.mkdir(parents=True, exist_ok=True)
    (reference_dir / "app.py").write_text(REFERENCE_APP)
    reference = dataclasses.replace(template.functions["GetBatchFunction"], code_dir=reference_dir)
    chosen.append(reference)
    results = []
    with moto_with_resources() as endpoint:
        sqs = boto3.session.Session(region_name="us-east-1").client("sqs", endpoint_url=endpoint)
        queue_urls = {q["QueueUrl"].rsplit("/", 1)[-1]: q["QueueUrl"] for q in _list_queues(sqs)}
        for function in chosen:
            paths = [str(function.code_dir)]
            # Lambda extracts later layers over earlier ones into /opt: the last wins.
            paths += [str(layers[layer]) for layer in reversed(layers_of(function.logical_id)) if layer in layers]
            paths.append(str(runtime))
            script = CHILD.format(paths=paths, name=function.name, memory=function.memory_mb)
            event = json.dumps(_event(template.functions[function.logical_id]))
            samples = []
            for _ in range(runs):
                out = subprocess.run(
                    [sys.executable, "-I", "-S", "-B", "-c", script],
                    input=event,
                    capture_output=True,
                    text=True,
                    env=_environment(function, endpoint, queue_urls),
                    cwd="/",
                    check=False,
                )
                if out.returncode != 0:
                    raise RuntimeError(f"{function.logical_id} failed to start:\n{out.stderr[-3000:]}")
                samples.append(json.loads(out.stdout.strip().splitlines()[-1]))
            last = samples[-1]
            results.append(
                ColdStart(
                    function=REFERENCE if function is reference else function.logical_id,
                    # The authorizer runs before every HTTP function's first request: held to theirs.
                    kind="http" if function.api_events or function.logical_id == "AuthorizerFunction" else "worker",
                    import_ms=statistics.median(s["import_ms"] for s in samples),
                    total_ms=statistics.median(s["total_ms"] for s in samples),
                    status=last["status"],
                    error=last["error"],
                    heavy=tuple(last["heavy"]),
                )
            )
    return results


def _list_queues(sqs: Any) -> list[dict[str, str]]:
    return [{"QueueUrl": url} for url in sqs.list_queues(MaxResults=1000).get("QueueUrls", [])]


def report(results: Sequence[ColdStart], sizes: Sequence[LayerSize]) -> list[str]:
    lines = [
        "| function | kind | import (ms) | import + first invocation (ms) | target (ms) | first answer "
        "| heavy modules loaded |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for r in sorted(results, key=lambda r: (r.kind, r.function)):
        answer = str(r.status) if r.status is not None else (r.error or "-")
        mark = "" if r.total_ms <= r.target_ms else " **over**"
        lines.append(
            f"| {r.function} | {r.kind} | {r.import_ms:.0f} | {r.total_ms:.0f}{mark} | {r.target_ms:.0f} | {answer} "
            f"| {', '.join(r.heavy) or '-'} |"
        )
    lines += ["", "| layer | zipped (MiB) | unzipped (MiB) |", "|---|---:|---:|"]
    for s in sizes:
        lines.append(f"| {s.name} | {s.zipped_bytes / 2**20:.1f} | {s.unzipped_bytes / 2**20:.1f} |")
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.coldstart", description=__doc__.splitlines()[0])
    parser.add_argument("functions", nargs="*", help="logical ids (default: every function)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    layers = build_layers()
    results = measure(args.functions or None, runs=args.runs, layers=layers)
    print("\n".join(report(results, layer_sizes(build_layers("aarch64")))))


if __name__ == "__main__":
    main()
