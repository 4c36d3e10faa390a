"""Every function that runs operations in-process (seed 003) may do what every operation route does.

An operation `{id, method, path, body, headers}` runs inside the function that dispatches it, through
the same route table (`batchops/api/dispatch.py`), so it acts with *that* function's IAM role, not
with the role of the function API Gateway would have called for the route. The dispatchers:

- BatchFunction: `POST /v1/batch`, sequential and parallel;
- TransactionStepFunction: `POST /v1/batch/transaction`, one Step Functions task per operation;
- BatchAsyncWorkerFunction: `POST /v1/batch/async`, the WorkQueue worker;
- BatchJobWorkerFunction / BatchUrgentJobWorkerFunction: `POST /v1/batches` jobs of type
  `operation`, medium and urgent priority (`services/batch_worker.py`);
- BatchDryRunFunction: `POST /v1/batch/dry-run` (validation only: it must not be refused either).

The local stack runs each function with its role as `sam deploy` expands it and logs every refusal
as `IAM AccessDenied: <Function> (role <Role>) may not <action> on <resource>...`. For every
dispatcher and every (method, path) that `GET /v1/batch/limits` allows, one operation with a valid
body does the route's real work, and that work is followed to its end (the run completes, the
tracked events become readable, the uploaded body is ingested, ...). A test per dispatcher and
route asserts the operation's own success status, the follow-through, and that no refusal was
logged for the dispatcher's role while it ran that route.

Speed: one request per dispatcher carries every route, the dispatchers run side by side. A route
the whole request refuses (422 naming the operation) is reported and the rest sent again; a
transaction is resumed after its first failure, so one failing route does not hide the others.
When a dispatcher's combined run logged a refusal, each route is run again alone to tell which
route it belongs to (only then: the passing run stays one request per dispatcher).
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from batchops.api.dispatch import operation_endpoints
from tests.e2e.conftest import KEY_BULK
from tests.e2e.harness import RunningStack, wait_for
from tests.job_endpoint import JobEndpoints, job_endpoints
from tests.support import log_entry

# Enterprise: no daily batch quota and a request budget that the polling below cannot spend.
KEY = KEY_BULK
DEADLINE = 90.0  # seconds any piece of queued work may take to finish
POLL = 0.25
# Batch and async job status reads are heavier (the batch's jobs are read too): polled less, so
# the polling does not slow the workers it waits for (moto answers in one process).
STATUS_POLL = 0.5
DENIAL = "IAM AccessDenied: "
# How a refusal line ends (enforcement.py, iam.Decision): what follows is another line's text.
_REASON_END = re.compile(r"^(.*?(?:no identity-based policy allows|in an identity-based policy|so it refuses it)).*$")

Route = tuple[str, str]  # (method, path template), as GET /v1/batch/limits and the route table name it
Result = tuple[int | None, Any]  # an operation's own status and body

# The routes an operation may call, from the route table at collection (so a new route gets its
# tests); `test_limits_allow_exactly_the_routes_tested` holds them equal to the stack's answer.
ROUTES: list[Route] = [(endpoint.method, endpoint.path) for endpoint in operation_endpoints()]


# ---------------------------------------------------------------- the stack's log


class StackLog:
    """The stack's stderr, read by byte offsets (it holds the whole session's output)."""

    def __init__(self, stack: RunningStack) -> None:
        self._path: Path = stack.stderr

    def mark(self) -> int:
        return self._path.stat().st_size

    def denials(self, start: int, functions: tuple[str, ...] | None = None) -> list[str]:
        with self._path.open("rb") as stream:
            stream.seek(start)
            text = stream.read().decode(errors="replace")
        # The stack's threads share stderr and a line can be written in pieces: another line may
        # sit on either side of a refusal, so it is looked for anywhere in a line.
        lines = [DENIAL + part for part in text.split(DENIAL)[1:]]
        lines = [_REASON_END.sub(r"\1", line.split("\n", 1)[0]) for line in lines]
        if functions is not None:
            lines = [line for line in lines if line[len(DENIAL) :].split(" ", 1)[0] in functions]
        return lines


# ---------------------------------------------------------------- what each route does


def client(stack: RunningStack) -> httpx.Client:
    return httpx.Client(base_url=stack.api, headers={"Authorization": f"Bearer {KEY}"}, timeout=60)


@dataclass
class Env:
    """What the recipes of one dispatcher share: its client, the job receiver, unique names."""

    http: httpx.Client
    receiver: JobEndpoints
    label: str
    _trigger_job: tuple[dict[str, Any], str] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def unique(self, prefix: str) -> str:
        return f"{prefix}-{self.label}-{uuid.uuid4().hex[:10]}"

    def new_job(self) -> tuple[dict[str, Any], str]:
        """A registered job (over HTTP) whose endpoint is the receiver; with its receiver path."""
        name = self.unique("job")
        path = f"/jobs/{name}"
        response = self.http.post("/v1/jobs", json={"name": name, "endpoint_url": self.receiver.url(path)})
        assert response.status_code == 201, f"setup: POST /v1/jobs answered {response.status_code} {response.text}"
        return response.json(), path

    def trigger_job(self) -> tuple[dict[str, Any], str]:
        """One job per dispatcher for the trigger routes (their payloads tell the calls apart)."""
        with self._lock:
            if self._trigger_job is None:
                self._trigger_job = self.new_job()
            return self._trigger_job

    def new_webhook(self) -> dict[str, Any]:
        response = self.http.post("/v1/webhooks", json=webhook_body(self))
        assert response.status_code == 201, f"setup: POST /v1/webhooks answered {response.status_code} {response.text}"
        hook: dict[str, Any] = response.json()["data"]
        return hook


@dataclass
class Work:
    """One route's operation (body and path parameters) and how to follow its work to the end."""

    body: Any
    check: Callable[[Any], None]  # called with the operation's answer body; raises AssertionError
    params: dict[str, str] = field(default_factory=dict)


def tracked_event(message_id: str) -> dict[str, Any]:
    return {
        "event": "signup",
        "properties": {"plan": "pro"},
        "timestamp": "2025-10-29T22:00:00.778Z",
        "messageId": message_id,
    }


def tracked(http: httpx.Client, message_id: str) -> bool:
    response = http.get(f"/v1/track/events/{message_id}")
    assert response.status_code in (200, 404), response.text
    return response.status_code == 200


def wait_tracked(http: httpx.Client, message_ids: list[str]) -> None:
    for message_id in message_ids:
        wait_for(lambda m=message_id: tracked(http, m), DEADLINE, POLL, f"tracked event {message_id} to be stored")


def event_log_count(http: httpx.Client, batch_id: str) -> int:
    response = http.get(f"/v1/events/batch/{batch_id}")
    return int(response.json()["totalCount"]) if response.status_code == 200 else 0


def webhook_body(env: Env) -> dict[str, Any]:
    # batch.cancelled: none of this test's batches is cancelled, so nothing is ever delivered.
    return {"url": env.receiver.url(f"/webhooks/{env.unique('wh')}"), "events": ["batch.cancelled"]}


def webhook_ids(http: httpx.Client) -> set[str]:
    response = http.get("/v1/webhooks")
    assert response.status_code == 200, response.text
    return {hook["id"] for hook in response.json()["data"]}


RUN_WAITING = ("queued", "delayed", "executing")


def finished_run(http: httpx.Client, run_id: str) -> dict[str, Any]:
    run: dict[str, Any] = wait_for(
        lambda: (r := http.get(f"/v1/runs/{run_id}").json())["status"] not in RUN_WAITING and r,
        DEADLINE,
        POLL,
        f"run {run_id} to finish",
    )
    return run


def _create_event(env: Env) -> Work:
    batch_id = env.unique("evt")

    def check(body: Any) -> None:
        assert body["success"] is True, body
        wait_for(lambda: event_log_count(env.http, batch_id) == 1, DEADLINE, POLL, f"event-log batch {batch_id}")

    return Work(log_entry(batch_id, batchId=batch_id), check)


def _create_event_batch(env: Env) -> Work:
    batch_id = env.unique("evtb")

    def check(body: Any) -> None:
        assert (body["totalInserted"], body["batchId"]) == (2, batch_id), body
        wait_for(lambda: event_log_count(env.http, batch_id) == 2, DEADLINE, POLL, f"event-log batch {batch_id}")

    entries = [log_entry(f"{batch_id}-1"), log_entry(f"{batch_id}-2", "SUCCESS")]
    return Work({"events": entries, "batchId": batch_id}, check)


def _create_job(env: Env) -> Work:
    name = env.unique("job")

    def check(body: Any) -> None:
        got = env.http.get(f"/v1/jobs/{body['id']}")
        assert got.status_code == 200 and got.json()["name"] == name, got.text

    return Work({"name": name, "endpoint_url": env.receiver.url(f"/jobs/{name}")}, check)


def _update_job(env: Env) -> Work:
    job, _ = env.new_job()

    def check(body: Any) -> None:
        got = env.http.get(f"/v1/jobs/{job['id']}").json()
        assert (got["timeout_secs"], got["version"]) == (45, 2), got

    return Work({"timeout_secs": 45}, check, {"jobID": job["id"]})


def _delete_job(env: Env) -> Work:
    job, _ = env.new_job()

    def check(body: Any) -> None:
        got = env.http.get(f"/v1/jobs/{job['id']}")
        assert got.status_code == 404, f"the deleted job still answers {got.status_code} {got.text}"

    return Work(None, check, {"jobID": job["id"]})


def _trigger(env: Env) -> Work:
    job, path = env.trigger_job()
    tag = env.unique("run")

    def check(body: Any) -> None:
        run = finished_run(env.http, body["id"])
        assert run["status"] == "completed", run
        assert [c for c in env.receiver.calls_to(path) if c.body["payload"] == {"tag": tag}], "the endpoint got no call"

    # Strait's priority 0-10: a high one goes through the urgent run queue (models/jobs.py).
    return Work({"payload": {"tag": tag}, "priority": 9}, check, {"jobID": job["id"]})


def _trigger_bulk(env: Env) -> Work:
    job, path = env.trigger_job()
    tag = env.unique("bulk")

    def check(body: Any) -> None:
        runs = [finished_run(env.http, created["id"]) for created in body["results"]]
        assert [r["status"] for r in runs] == ["completed", "completed"], runs
        batch = env.http.get(f"/v1/batch-operations/{body['batch_id']}").json()
        assert (batch["item_count"], batch["created_count"]) == (2, 2) and batch["finished_at"], batch
        calls = [c.body["payload"]["n"] for c in env.receiver.calls_to(path) if c.body["payload"].get("tag") == tag]
        assert sorted(calls) == [0, 1], calls

    # One run of each priority band: both run queues.
    items = [{"payload": {"tag": tag, "n": n}, "priority": priority} for n, priority in enumerate((0, 9))]
    return Work({"items": items}, check, {"jobID": job["id"]})


def _bulk_track(env: Env) -> Work:
    ids = [env.unique("bt") for _ in range(2)]

    def check(body: Any) -> None:
        assert body["messageIds"] == ids, body
        wait_tracked(env.http, ids)

    # The route's body is a JSON array of events (seed 004), as a direct call sends it.
    return Work([tracked_event(message_id) for message_id in ids], check)


def _track(env: Env) -> Work:
    message_id = env.unique("tr")

    def check(body: Any) -> None:
        assert body == {"status": "ok", "messageId": message_id}, body
        assert tracked(env.http, message_id), "the event is not stored"

    return Work(tracked_event(message_id), check)


def _create_upload(env: Env) -> Work:
    ids = [env.unique("up") for _ in range(2)]

    def check(form: Any) -> None:
        # The form acts with its signer's rights: the dispatcher's role must let S3 take the body.
        raw = json.dumps([tracked_event(message_id) for message_id in ids]).encode()
        sent = httpx.post(form["url"], data=form["fields"], files={form["fileField"]: ("events.json", raw)}, timeout=60)
        assert sent.status_code in (200, 201, 204), f"S3 refused the presigned form: {sent.status_code} {sent.text}"
        upload_id = form["uploadId"]
        done = wait_for(
            lambda: (
                (s := env.http.get(f"/v1/bulk-track/uploads/{upload_id}").json())["status"] in ("completed", "failed")
                and s
            ),
            DEADLINE,
            POLL,
            f"upload {upload_id} to be ingested",
        )
        assert (done["status"], done["accepted"], done["rejected"]) == ("completed", 2, 0), done
        wait_tracked(env.http, ids)

    return Work(None, check)


def _create_webhook(env: Env) -> Work:
    def check(body: Any) -> None:
        hook_id = body["data"]["id"]
        try:
            assert hook_id in webhook_ids(env.http), f"webhook {hook_id} is not listed"
        finally:
            env.http.delete(f"/v1/webhooks/{hook_id}")  # a workspace has at most 20

    return Work(webhook_body(env), check)


def _delete_webhook(env: Env) -> Work:
    hook = env.new_webhook()

    def check(body: Any) -> None:
        assert hook["id"] not in webhook_ids(env.http), f"webhook {hook['id']} is still listed"

    return Work(None, check, {"webhook_id": hook["id"]})


RECIPES: dict[Route, Callable[[Env], Work]] = {
    ("POST", "/v1/events"): _create_event,
    ("POST", "/v1/events/batch"): _create_event_batch,
    ("POST", "/v1/jobs"): _create_job,
    ("PATCH", "/v1/jobs/{jobID}"): _update_job,
    ("DELETE", "/v1/jobs/{jobID}"): _delete_job,
    ("POST", "/v1/jobs/{jobID}/trigger"): _trigger,
    ("POST", "/v1/jobs/{jobID}/trigger-bulk"): _trigger_bulk,
    ("POST", "/v1/jobs/{jobID}/trigger/bulk"): _trigger_bulk,
    ("POST", "/v1/bulk-track"): _bulk_track,
    ("POST", "/v1/track"): _track,
    ("POST", "/v1/bulk-track/uploads"): _create_upload,
    ("POST", "/v1/webhooks"): _create_webhook,
    ("DELETE", "/v1/webhooks/{webhook_id}"): _delete_webhook,
}


def operation(op_id: str, route: Route, work: Work, env: Env) -> dict[str, Any]:
    method, template = route
    path = re.sub(r"\{(\w+)\}", lambda m: work.params[m.group(1)], template)
    op: dict[str, Any] = {"id": op_id, "method": method, "path": path}
    if work.body is not None:
        op["body"] = work.body
    if method == "POST":
        # Idempotent routes keep the first answer in the idempotency table, with the dispatcher's role.
        op["headers"] = {"Idempotency-Key": env.unique("idem")}
    return op


# ---------------------------------------------------------------- the dispatchers


class Refused(Exception):
    """The whole request was refused, naming no operation."""


def _refused_indexes(response: httpx.Response) -> set[int]:
    if response.status_code != 422 or not response.headers.get("content-type", "").startswith("application/json"):
        return set()
    found: set[int] = set()
    for detail in response.json().get("details") or []:
        if isinstance(detail.get("index"), int):
            found.add(detail["index"])
        match = re.match(r"^(?:operations|jobs)\.(\d+)\b", str(detail.get("field") or ""))
        if match:
            found.add(int(match.group(1)))
    return found


def without_refused(
    ops: list[dict[str, Any]],
    submit: Callable[[list[dict[str, Any]]], httpx.Response],
    collect: Callable[[httpx.Response], dict[str, Result]],
) -> dict[str, Result]:
    """Submit; when the request is refused for some operations, report those and submit the rest."""
    results: dict[str, Result] = {}
    pending = list(ops)
    while pending:
        response = submit(pending)
        bad = _refused_indexes(response)
        if not bad:
            if response.status_code >= 300:
                raise Refused(f"the request was refused: {response.status_code} {response.text[:2000]}")
            results.update(collect(response))
            break
        for index in bad:
            refusal = {"refused_with_the_whole_request": response.json()}
            results[pending[index]["id"]] = (response.status_code, refusal)
        pending = [op for n, op in enumerate(pending) if n not in bad]
    return results


def _by_id(results: list[dict[str, Any]]) -> dict[str, Result]:
    return {r["id"]: (r["status"], r.get("body")) for r in results}


def _sync(parallel: bool) -> Callable[[httpx.Client, list[dict[str, Any]]], dict[str, Result]]:
    def send(http: httpx.Client, ops: list[dict[str, Any]]) -> dict[str, Result]:
        return without_refused(
            ops,
            lambda kept: http.post(
                "/v1/batch", json={"operations": kept, "parallel": parallel, "continueOnError": True}
            ),
            lambda response: _by_id(response.json()["results"]),
        )

    return send


def _dry_run(http: httpx.Client, ops: list[dict[str, Any]]) -> dict[str, Result]:
    return without_refused(
        ops,
        lambda kept: http.post("/v1/batch/dry-run", json={"operations": kept}),
        lambda response: _by_id(response.json()["results"]),
    )


def _skipped(result: Result | None) -> bool:
    return (
        result is not None and result[0] == 424 and isinstance(result[1], dict) and result[1].get("code") == "SKIPPED"
    )


def _transaction(http: httpx.Client, ops: list[dict[str, Any]]) -> dict[str, Result]:
    """Fail-fast skips what follows a failure: those operations go again in the next transaction."""
    results: dict[str, Result] = {}
    pending = list(ops)
    while pending:
        got = without_refused(
            pending,
            lambda kept: http.post("/v1/batch/transaction", json={"operations": kept}),
            lambda response: _by_id(response.json()["results"]),
        )
        again = [op for op in pending if _skipped(got.get(op["id"]))]
        results.update({k: v for k, v in got.items() if not _skipped(v)})
        if len(again) == len(pending):
            results.update({op["id"]: got[op["id"]] for op in again})
            break
        pending = again
    return results


def _async(http: httpx.Client, ops: list[dict[str, Any]]) -> dict[str, Result]:
    def collect(response: httpx.Response) -> dict[str, Result]:
        job_id = response.json()["data"]["jobId"]
        job = wait_for(
            lambda: (
                (d := http.get(f"/v1/batch/async/{job_id}").json()["data"])["status"] in ("COMPLETED", "FAILED") and d
            ),
            DEADLINE,
            STATUS_POLL,
            f"async job {job_id} to finish",
        )
        if job["status"] != "COMPLETED":
            raise Refused(f"async job {job_id} ended {job['status']}: {job.get('error')}")
        return _by_id(job["results"])

    return without_refused(ops, lambda kept: http.post("/v1/batch/async", json={"operations": kept}), collect)


def _batches(priority: str) -> Callable[[httpx.Client, list[dict[str, Any]]], dict[str, Result]]:
    def submit(http: httpx.Client, kept: list[dict[str, Any]]) -> httpx.Response:
        jobs = [{"id": op["id"], "type": "operation", "config": {k: op[k] for k in op if k != "id"}} for op in kept]
        body = {"name": f"operation-roles-{priority}", "priority": priority, "jobs": jobs}
        return http.post("/v1/batches", json={**body, "options": {"max_parallel": min(len(jobs), 20)}})

    def collect(http: httpx.Client, response: httpx.Response) -> dict[str, Result]:
        batch_id = response.json()["data"]["batch_id"]
        wait_for(
            lambda: (
                http.get(f"/v1/batches/{batch_id}").json()["data"]["status"]
                in ("completed", "failed", "cancelled", "timed_out")
            ),
            DEADLINE,
            STATUS_POLL,
            f"batch {batch_id} to finish",
        )
        answer = http.get(f"/v1/batches/{batch_id}/results", params={"include_raw": "true"})
        assert answer.status_code == 200, answer.text
        results: dict[str, Result] = {}
        for job in answer.json()["data"]["job_results"]:
            raw = job.get("raw") or {}
            if raw.get("http_status") is None:
                results[job["id"]] = (None, {"job_status": job["status"], "error": job.get("error")})
                continue
            try:
                body = json.loads(raw["body"]) if raw.get("body") else None
            except ValueError:
                body = raw["body"]
            results[job["id"]] = (raw["http_status"], body)
        return results

    def send(http: httpx.Client, ops: list[dict[str, Any]]) -> dict[str, Result]:
        return without_refused(ops, lambda kept: submit(http, kept), lambda response: collect(http, response))

    return send


@dataclass(frozen=True)
class Dispatcher:
    name: str  # the function whose role runs the operations (and the mode)
    label: str  # short, for unique names
    functions: tuple[str, ...]  # whose refusals count against it
    send: Callable[[httpx.Client, list[dict[str, Any]]], dict[str, Result]]
    does_work: bool = True  # False: validation only (a dry run), nothing to follow

    def succeeded(self, result: Result) -> bool:
        status, body = result
        if not self.does_work:
            return status == 200 and isinstance(body, dict) and body.get("valid") is True
        return status is not None and 200 <= status < 300


DISPATCHERS = [
    Dispatcher("BatchFunction(sequential)", "seq", ("BatchFunction",), _sync(parallel=False)),
    Dispatcher("BatchFunction(parallel)", "par", ("BatchFunction",), _sync(parallel=True)),
    Dispatcher("TransactionStepFunction", "txn", ("TransactionStepFunction",), _transaction),
    Dispatcher("BatchAsyncWorkerFunction", "async", ("BatchAsyncWorkerFunction",), _async),
    Dispatcher("BatchJobWorkerFunction", "jobs", ("BatchJobWorkerFunction",), _batches("medium")),
    Dispatcher("BatchUrgentJobWorkerFunction", "urgent", ("BatchUrgentJobWorkerFunction",), _batches("urgent")),
    Dispatcher("BatchDryRunFunction", "dry", ("BatchDryRunFunction",), _dry_run, does_work=False),
]


# ---------------------------------------------------------------- running them all


@dataclass
class Outcome:
    result: Result | None = None
    problems: list[str] = field(default_factory=list)
    denials: list[str] = field(default_factory=list)


@dataclass
class Run:
    routes: list[Route]  # what the stack's limits allow, method by method
    limits: dict[str, Any]
    outcomes: dict[str, dict[Route, Outcome]]  # by dispatcher name
    all_denials: list[str]  # every refusal logged while this module ran, whatever the function


def allowed_routes(http: httpx.Client, limits: dict[str, Any]) -> list[Route]:
    """Every (method, path) the limits allow that a route serves: a dry run tells 405 from the rest."""
    candidates = [(method, path) for path in limits["allowedPaths"] for method in limits["allowedMethods"]]
    ops = [
        {"id": f"c{n}", "method": method, "path": re.sub(r"\{\w+\}", "x", path)}
        for n, (method, path) in enumerate(candidates)
    ]
    response = http.post("/v1/batch/dry-run", json={"operations": ops})
    assert response.status_code == 200, response.text
    statuses = [r["status"] for r in response.json()["results"]]
    return [route for route, status in zip(candidates, statuses, strict=True) if status != 405]


def dispatch(
    dispatcher: Dispatcher, routes: list[Route], env: Env, log: StackLog
) -> tuple[dict[Route, Outcome], dict[Route, Work]]:
    outcomes = {route: Outcome() for route in routes}
    works: dict[Route, Work] = {}
    ops: dict[Route, dict[str, Any]] = {}
    for n, route in enumerate(routes):
        recipe = RECIPES.get(route)
        if recipe is None:
            outcomes[route].problems.append("no recipe for this route: add one to RECIPES in this file")
            continue
        works[route] = recipe(env)
        ops[route] = operation(f"op{n}", route, works[route], env)
    start = log.mark()
    try:
        results = dispatcher.send(env.http, list(ops.values()))
    except (Refused, AssertionError, httpx.HTTPError) as error:
        for route in ops:
            outcomes[route].problems.append(f"the dispatch failed: {error}")
        results = {}
    denied = log.denials(start, dispatcher.functions)
    for route, op in ops.items():
        outcomes[route].result = results.get(op["id"])
    if denied:
        attribute(dispatcher, denied, list(ops), outcomes, env, log)
    return outcomes, works


def attribute(
    dispatcher: Dispatcher,
    denied: list[str],
    routes: list[Route],
    outcomes: dict[Route, Outcome],
    env: Env,
    log: StackLog,
) -> None:
    """Refusals logged while all routes ran at once: run each route alone to see whose they are."""
    if len(routes) == 1:
        outcomes[routes[0]].denials += denied
        return
    found = False
    for route in routes:
        work = RECIPES[route](env)
        start = log.mark()
        with contextlib.suppress(Refused, AssertionError, httpx.HTTPError):  # the combined run reported it
            dispatcher.send(env.http, [operation("alone", route, work, env)])
        alone = log.denials(start, dispatcher.functions)
        outcomes[route].denials += alone
        found = found or bool(alone)
    if not found:
        for route in routes:
            outcomes[route].denials += [f"{line} (with all routes at once; no route alone did it)" for line in denied]


def follow(dispatcher: Dispatcher, outcomes: dict[Route, Outcome], works: dict[Route, Work], log: StackLog) -> None:
    """Follow each succeeded route's work to its end; refusals meanwhile are that route's."""
    for route, work in works.items():
        outcome = outcomes[route]
        if outcome.result is None or not dispatcher.succeeded(outcome.result) or not dispatcher.does_work:
            continue
        start = log.mark()
        try:
            work.check(outcome.result[1])
        except Exception as error:  # whatever went wrong, it is this route's finding
            outcome.problems.append(f"following its work: {type(error).__name__}: {error}")
        outcome.denials += log.denials(start, dispatcher.functions)


def run_group(
    group: list[Dispatcher], routes: list[Route], stack: RunningStack, receiver: JobEndpoints, log: StackLog
) -> dict[str, dict[Route, Outcome]]:
    """Dispatchers sharing a function run one after the other, so a refusal names its dispatcher."""
    done: dict[str, dict[Route, Outcome]] = {}
    pending: list[tuple[Dispatcher, dict[Route, Outcome], dict[Route, Work]]] = []
    with client(stack) as http:
        for dispatcher in group:
            env = Env(http, receiver, dispatcher.label)
            try:
                outcomes, works = dispatch(dispatcher, routes, env, log)
            except Exception as error:  # a setup request failed: every route of this dispatcher says so
                outcomes = {route: Outcome(problems=[f"setup failed: {error!r}"]) for route in routes}
                works = {}
            done[dispatcher.name] = outcomes
            pending.append((dispatcher, outcomes, works))
        # Checks after every dispatch of the group: queued work progresses in the meantime.
        for dispatcher, outcomes, works in pending:
            follow(dispatcher, outcomes, works, log)
    return done


@pytest.fixture(scope="module")
def receiver() -> Iterator[JobEndpoints]:
    with job_endpoints() as server:
        yield server


@pytest.fixture(scope="module")
def run(stack: RunningStack, receiver: JobEndpoints) -> Run:
    log = StackLog(stack)
    start = log.mark()
    with client(stack) as http:
        limits = http.get("/v1/batch/limits").json()
        routes = allowed_routes(http, limits)
    groups: dict[tuple[str, ...], list[Dispatcher]] = {}
    for dispatcher in DISPATCHERS:
        groups.setdefault(dispatcher.functions, []).append(dispatcher)
    outcomes: dict[str, dict[Route, Outcome]] = {}
    with ThreadPoolExecutor(max_workers=len(groups)) as pool:
        for done in pool.map(lambda group: run_group(group, routes, stack, receiver, log), groups.values()):
            outcomes.update(done)
    return Run(routes, limits, outcomes, log.denials(start))


# ---------------------------------------------------------------- the tests


def test_limits_allow_exactly_the_routes_tested(run: Run) -> None:
    assert sorted(run.routes) == sorted(ROUTES), "GET /v1/batch/limits and the route table disagree"
    assert set(run.limits["allowedPaths"]) == {path for _, path in ROUTES}


CASES = [(dispatcher.name, route) for dispatcher in DISPATCHERS for route in ROUTES]


@pytest.mark.parametrize(("dispatcher", "route"), CASES, ids=[f"{d}:{m} {p}" for d, (m, p) in CASES])
def test_operation_runs_with_the_dispatchers_role(run: Run, dispatcher: str, route: Route) -> None:
    outcome = run.outcomes[dispatcher].get(route)
    assert outcome is not None, f"{route} is not among the routes the stack allows: {run.routes}"
    problems = list(outcome.problems)
    if outcome.result is None:
        problems.insert(0, "the operation has no result")
    else:
        spec = next(d for d in DISPATCHERS if d.name == dispatcher)
        if not spec.succeeded(outcome.result):
            status, body = outcome.result
            problems.insert(0, f"the operation answered {status}: {json.dumps(body)[:1500]}")
    problems += [f"refused{f' ({n} times)' if n > 1 else ''}: {line}" for line, n in Counter(outcome.denials).items()]
    method, path = route
    assert not problems, f"{dispatcher} running {method} {path}:\n- " + "\n- ".join(problems)


def test_no_function_was_refused_while_operations_ran(run: Run) -> None:
    """Whatever the operations set going (run worker, tracking workers, webhooks): no refusal."""
    lines = [f"{line}{f' ({n} times)' if n > 1 else ''}" for line, n in Counter(run.all_denials).items()]
    assert not lines, "\n".join(lines)
