"""`sam local start-api` on template.yaml, on a real Docker engine, as the README tells users to run
it (`make sam-local`: python -m batchops_local.sam_local), with the offline stand-in for SAM's
python3.11 image (local/sam_image) and --skip-pull-image, since CI cannot pull.

One request per surface goes through SAM's emulated API Gateway and our authorizer into function
containers, which reach the local stack's moto through host.docker.internal; the records are then
read from moto, and the SQS pollers behind SAM (the tracking worker) must have done their part.

Never skipped: without Docker the test fails and says why. Cost, measured on 2 cores with the image
and the build cached: 19 s to start (checks, the stack, then SAM), 36 s of requests (a function's
first request takes ~4 s: SAM builds its image with the layers for each new container), 9.5 s for
the invoke, 3 s to stop; 68.5 s in all.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from tests.e2e.harness import REPO, free_port, wait_for

KEY = "bo_e2e_workspace_sam_local_key_0009"
ARCH = "arm64" if os.uname().machine in ("arm64", "aarch64") else "x86_64"
START_DEADLINE_SECONDS = 120.0
# A function's first request: SAM builds its image (layers included) and starts the container.
REQUEST_TIMEOUT_SECONDS = 60.0


def _run(command: list[str], what: str, env: dict[str, str] | None = None) -> None:
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        pytest.fail(f"{what} failed ({' '.join(command)}, exit {done.returncode}):\n{done.stdout}\n{done.stderr}")


@dataclass
class SamLocal:
    api: str
    aws: str
    invoke: str  # the `sam local invoke` command line it printed, up to <LogicalId>
    process: subprocess.Popen[bytes]
    stderr: Path

    def dynamodb_items(self) -> list[dict[str, Any]]:
        client = boto3.client(
            "dynamodb",
            endpoint_url=self.aws,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"TableName": "DomainTable"}
        while True:
            page = client.scan(**kwargs)
            items.extend(page["Items"])
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def records(self, needle: str) -> list[tuple[str, str]]:
        """(pk, sk) of the DomainTable items that mention `needle`."""
        return [(i["pk"]["S"], i["sk"]["S"]) for i in self.dynamodb_items() if needle in json.dumps(i)]


@pytest.fixture(scope="module")
def sam_local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SamLocal]:
    # What `make test` has done already (then each is a cached no-op, ~1 s): a Docker engine
    # (installed and started if missing, as root), the stand-in image, the build for this host.
    _run(["local/sam_image/engine.sh"], "A Docker engine (local/sam_image/engine.sh)")
    _run(
        ["local/sam_image/build.sh"],
        "The stand-in base image (local/sam_image/build.sh)",
        {**os.environ, "PYTHON": sys.executable},
    )
    _run(["make", "--no-print-directory", "build", f"ARCH={ARCH}"], f"make build ARCH={ARCH}")
    workdir = tmp_path_factory.mktemp("sam-local")
    stdout, stderr = workdir / "stdout.log", workdir / "stderr.log"
    port = free_port()
    command = [sys.executable, "-m", "batchops_local.sam_local", "--port", str(port), "--aws-port", "0"]
    command += ["--arch", ARCH, "--env-file", str(workdir / "env.json"), "--", "--skip-pull-image"]
    env = {**os.environ, "BATCHOPS_LOCAL_API_KEYS": f"ws-sam:pro:{KEY}"}
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(command, stdout=out, stderr=err, env=env, cwd=REPO)
    api = f"http://127.0.0.1:{port}"

    def answering() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"sam_local exited with {process.returncode}:\n{stderr.read_text()}")
        try:
            return httpx.get(f"{api}/v1/health", timeout=30).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_for(answering, timeout=START_DEADLINE_SECONDS, interval=0.5, what="sam local start-api's /v1/health")
        banner = stdout.read_text().splitlines()
        aws = next(line.split()[1] for line in banner if line.startswith("  AWS: "))
        invoke = next(line.split(": ", 1)[1] for line in banner if line.startswith("  invoke: "))
        yield SamLocal(api, aws, invoke.split(" <LogicalId>")[0], process, stderr)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    left = subprocess.run(
        ["docker", "ps", "-aq", "--filter", "label=sam.cli.container.type=lambda"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    assert process.returncode == 0, f"sam_local exited with {process.returncode}:\n{stderr.read_text()}"
    assert not left, f"SAM left its function containers running: {left}"


def _body(event_file: str) -> Any:
    """The request body of a sample event (events/), as users send it with `sam local invoke`."""
    return json.loads(json.loads((REPO / "events" / event_file).read_text())["body"])


def _call(sam: SamLocal, method: str, path: str, body: Any = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {KEY}"}
    return httpx.request(method, f"{sam.api}{path}", json=body, headers=headers, timeout=REQUEST_TIMEOUT_SECONDS)


def test_every_surface_answers_through_sam_local_start_api(sam_local: SamLocal) -> None:
    started = time.monotonic()
    logs = sam_local.stderr.read_text

    # Event log: a batch written, then read back (the third entry has no correlationId).
    written = _call(sam_local, "POST", "/v1/events/batch", _body("create_event_batch.json"))
    assert written.status_code == 201, (written.text, logs())
    batch = written.json()
    assert (batch["totalReceived"], batch["totalInserted"], batch["errors"][0]["index"]) == (3, 2, 2)
    read = _call(sam_local, "GET", f"/v1/events/batch/{batch['batchId']}")
    assert read.status_code == 200, (read.text, logs())
    assert batch["executionIds"][0] in read.text and batch["executionIds"][1] in read.text
    assert len(sam_local.records(batch["batchId"])) == 2

    # Operations: two operations in one request, each answered.
    operations = _call(sam_local, "POST", "/v1/batch", _body("batch.json"))
    assert operations.status_code == 200, (operations.text, logs())
    assert operations.json()["summary"] == {"total": 2, "succeeded": 2, "failed": 0, "skipped": 0}
    for result in operations.json()["results"]:
        for execution_id in result["body"]["executionIds"]:
            assert sam_local.records(f"#EXEC#{execution_id}"), execution_id

    # Jobs: a job, then a trigger queues a run on RunQueue.
    job = _call(sam_local, "POST", "/v1/jobs", _body("create_job.json"))
    assert job.status_code == 201, (job.text, logs())
    run = _call(sam_local, "POST", f"/v1/jobs/{job.json()['id']}/trigger", _body("trigger_job.json"))
    assert run.status_code == 201, (run.text, logs())
    assert run.json()["status"] == "queued" and run.json()["idempotency_hit"] is False
    assert ("WS#ws-sam#RUN#" + run.json()["id"], "RUN") in sam_local.records(run.json()["id"])

    # Tracking: accepted on TrackingQueue, stored by the tracking worker that the local stack's
    # poller runs (SAM runs no SQS trigger).
    tracked = _call(sam_local, "POST", "/v1/bulk-track", _body("bulk_track.json"))
    assert tracked.status_code == 200, (tracked.text, logs())
    message_id = _body("bulk_track.json")[0]["messageId"]
    assert tracked.json()["messageIds"][0] == message_id and tracked.json()["errors"][0]["index"] == 2
    wait_for(
        lambda: (f"WS#ws-sam#TEVT#{message_id}", "EVENT") in sam_local.records(message_id),
        timeout=30,
        interval=0.5,
        what="the tracking worker to store the tracked event",
    )

    # Batches: a batch of one job, queued with its job record.
    created = _call(sam_local, "POST", "/v1/batches", _body("create_batch.json"))
    assert created.status_code == 201, (created.text, logs())
    data = created.json()["data"]
    assert (data["status"], data["jobs"]["total"]) == ("queued", 1)
    assert {sk for _, sk in sam_local.records(data["batch_id"])} >= {"BATCH", "JOB#0000"}
    print(f"requests through sam local: {time.monotonic() - started:.1f} s")


def test_sam_local_invoke_runs_a_sample_event_against_the_same_stack(sam_local: SamLocal) -> None:
    """The `sam local invoke` line sam_local prints (README), with a sample event of events/."""
    command = [*shlex.split(sam_local.invoke), "CreateEventBatchFunction", "-e", "events/create_event_batch.json"]
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "SAM_CLI_TELEMETRY": "0"}
    env["AWS_DEFAULT_REGION"] = "us-east-1"
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.returncode == 0, (done.stdout, done.stderr)
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["statusCode"] == 201, answer
    execution_ids = json.loads(answer["body"])["executionIds"]
    # The sample event's authorizer context is workspace dev's.
    assert ("WS#dev#EXEC#" + execution_ids[0], "ENTRY") in sam_local.records(execution_ids[0])


def test_readme_shows_the_invoke_line_sam_local_prints() -> None:
    """The README's `sam local invoke` example is the line sam_local prints on Linux x86_64 with
    the default port, so the section cannot drift from what runs above."""
    from batchops_local.sam_local import container_wiring, shared_flags

    _, wiring = container_wiring("Linux")
    flags = shared_flags("x86_64", REPO / ".aws-sam" / "sam-local-env.json", "http://host.docker.internal:5000", wiring)
    line = shlex.join([".venv-sam/bin/sam", "local", "invoke", *flags])
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("### With Docker: `sam local`", 1)[1].split("\n## ", 1)[0]
    assert f"{line} CreateEventBatchFunction -e events/create_event_batch.json" in section
    assert "make sam-local " in section and "make sam-local OFFLINE=1" in section
