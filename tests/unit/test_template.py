"""template.yaml against the route table, the function code and the project's structural rules.

The template is read with cfn-lint's YAML decoder, so short-form intrinsics (`!Ref`, `!GetAtt`,
`!Sub`, ...) arrive as their long forms (`{"Ref": ...}`, `{"Fn::GetAtt": [...]}`).
"""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from cfnlint.decode.cfn_yaml import load

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "template.yaml"
EVENTS_DIR = ROOT / "events"

TEMPLATE: dict[str, Any] = load(str(TEMPLATE_PATH))
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
GLOBAL_FUNCTION: dict[str, Any] = TEMPLATE.get("Globals", {}).get("Function", {})

FUNCTION_TYPE = "AWS::Serverless::Function"
FUNCTIONS: dict[str, dict[str, Any]] = {
    logical_id: resource.get("Properties", {})
    for logical_id, resource in RESOURCES.items()
    if resource["Type"] == FUNCTION_TYPE
}
AUTHORIZER_FUNCTION = "AuthorizerFunction"
PUBLIC_FUNCTIONS = {"HealthFunction", "OpenApiFunction"}
API_LOGICAL_ID = "BatchopsApi"
TRANSACTION_STATE_MACHINE = "TransactionStateMachine"
TRANSACTION_STEP_FUNCTION = "TransactionStepFunction"
TRANSACTION_FUNCTION = "BatchTransactionFunction"
ASYNC_WORKER_FUNCTION = "BatchAsyncWorkerFunction"
STATE_MACHINE_TYPE = "AWS::Serverless::StateMachine"
STATE_MACHINES: dict[str, dict[str, Any]] = {
    logical_id: resource.get("Properties", {})
    for logical_id, resource in RESOURCES.items()
    if resource["Type"] == STATE_MACHINE_TYPE
}


# ---------------------------------------------------------------- helpers


def prop(function_id: str, name: str) -> Any:
    """A function property as deployed: its own value, else the Globals value."""
    own = FUNCTIONS[function_id]
    return own[name] if name in own else GLOBAL_FUNCTION.get(name)


def code_dir(function_id: str) -> Path:
    return ROOT / str(prop(function_id, "CodeUri")).rstrip("/")


def ref_target(value: Any) -> str | None:
    """Logical id named by a Ref or a GetAtt (long or dotted form)."""
    if isinstance(value, dict):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            if isinstance(target, str):
                return target.split(".", 1)[0]
            return str(target[0])
    return None


def canonical_path(path: str) -> str:
    """API Gateway writes a path parameter `{name}`, Powertools `<name>`: compare them as one."""
    return re.sub(r"<(\w+)>", r"{\1}", str(path))


def api_events() -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(function id, event name, event properties) for every `Type: Api` event."""
    for function_id, props in FUNCTIONS.items():
        for event_name, event in (props.get("Events") or {}).items():
            if event["Type"] == "Api":
                yield function_id, event_name, event["Properties"]


def event_is_public(event_props: dict[str, Any]) -> bool:
    return (event_props.get("Auth") or {}).get("Authorizer") == "NONE"


def template_routes() -> list[tuple[str, str]]:
    return [(str(e["Method"]).upper(), canonical_path(e["Path"])) for _, _, e in api_events()]


def routes_by_function() -> dict[str, set[tuple[str, str]]]:
    result: dict[str, set[tuple[str, str]]] = {}
    for function_id, _, e in api_events():
        result.setdefault(function_id, set()).add((str(e["Method"]).upper(), canonical_path(e["Path"])))
    return result


def load_route_table() -> list[Any]:
    from batchops.api.routes import route_table

    table = route_table() if callable(route_table) else route_table
    return list(table)


def import_function_module(function_id: str) -> ModuleType:
    path = code_dir(function_id) / "app.py"
    spec = importlib.util.spec_from_file_location(f"_template_test_app_{function_id}", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def queues() -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource.get("Properties", {})
        for logical_id, resource in RESOURCES.items()
        if resource["Type"] == "AWS::SQS::Queue"
    }


def dead_letter_queues() -> set[str]:
    targets = set()
    for props in queues().values():
        redrive = props.get("RedrivePolicy")
        if redrive:
            targets.add(ref_target(redrive["deadLetterTargetArn"]))
    return {t for t in targets if t}


def gateway_responses() -> dict[str, Any]:
    responses: dict[str, Any] = RESOURCES[API_LOGICAL_ID]["Properties"]["GatewayResponses"]
    return responses


def policy_names(function_id: str) -> list[str]:
    """Policy template names (e.g. DynamoDBReadPolicy), 'inline' for statement documents and the
    logical id of a managed policy of this template (RateLimitPolicy)."""
    names = []
    for policy in FUNCTIONS[function_id].get("Policies") or []:
        if isinstance(policy, dict) and "Statement" in policy:
            names.append("inline")
        elif isinstance(policy, dict) and "Ref" in policy:
            names.append(str(policy["Ref"]))
        elif isinstance(policy, dict):
            names.extend(policy.keys())
        else:
            names.append(str(policy))
    return names


def policy_template_targets(function_id: str) -> list[tuple[str, str | None]]:
    """(policy template, resource it is scoped to) for every SAM policy template of a function."""
    targets = []
    for policy in FUNCTIONS[function_id].get("Policies") or []:
        if isinstance(policy, dict) and "Statement" not in policy and "Ref" not in policy:
            for name, parameters in policy.items():
                (value,) = (parameters or {}).values()
                targets.append((str(name), ref_target(value)))
    return targets


def function_variables(function_id: str) -> dict[str, Any]:
    return (FUNCTIONS[function_id].get("Environment") or {}).get("Variables") or {}


def global_variables() -> dict[str, Any]:
    return (GLOBAL_FUNCTION.get("Environment") or {}).get("Variables") or {}


def transaction_definition_path() -> Path:
    return ROOT / str(STATE_MACHINES[TRANSACTION_STATE_MACHINE]["DefinitionUri"])


def transaction_definition() -> dict[str, Any]:
    definition: dict[str, Any] = json.loads(transaction_definition_path().read_text())
    return definition


@pytest.fixture
def lambda_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a function module may read at import: fake AWS credentials and the template's variables."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Batchops")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "batchops")
    monkeypatch.setenv("BATCHOPS_TABLE_NAME", "DomainTable")
    monkeypatch.setenv("BATCHOPS_IDEMPOTENCY_TABLE_NAME", "IdempotencyTable")
    monkeypatch.setenv("BATCHOPS_WORK_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/WorkQueue")
    monkeypatch.setenv(
        "BATCHOPS_TRANSACTION_STATE_MACHINE_ARN",
        "arn:aws:states:us-east-1:123456789012:stateMachine:TransactionStateMachine",
    )


# ---------------------------------------------------------------- routes


def test_template_declares_each_route_once() -> None:
    routes = template_routes()
    assert routes, "no Api events in template.yaml"
    assert len(routes) == len(set(routes)), f"duplicate routes: {sorted(routes)}"


def test_api_events_use_the_one_rest_api() -> None:
    for function_id, event_name, e in api_events():
        assert ref_target(e.get("RestApiId")) == API_LOGICAL_ID, (function_id, event_name)


def test_template_routes_equal_route_table() -> None:
    table = load_route_table()
    table_routes = [(endpoint.method.upper(), canonical_path(endpoint.path)) for endpoint in table]
    assert len(table_routes) == len(set(table_routes)), f"duplicate routes in the route table: {table_routes}"
    assert set(template_routes()) == set(table_routes)


def test_route_auth_flags_match_template() -> None:
    public_in_template = {
        (str(e["Method"]).upper(), canonical_path(e["Path"])) for _, _, e in api_events() if event_is_public(e)
    }
    for endpoint in load_route_table():
        key = (endpoint.method.upper(), canonical_path(endpoint.path))
        assert endpoint.auth is (key not in public_in_template), key


def test_only_health_and_openapi_skip_the_authorizer() -> None:
    auth = RESOURCES[API_LOGICAL_ID]["Properties"]["Auth"]
    assert auth["DefaultAuthorizer"] == "ApiKeyAuthorizer"
    assert auth["AddDefaultAuthorizerToCorsPreflight"] is False
    for function_id, event_name, e in api_events():
        if function_id in PUBLIC_FUNCTIONS:
            assert event_is_public(e), (function_id, event_name)
        else:
            # No override at all: the DefaultAuthorizer applies.
            assert "Authorizer" not in (e.get("Auth") or {}), (function_id, event_name)
    assert not (FUNCTIONS[AUTHORIZER_FUNCTION].get("Events") or {}), "the authorizer is not a route"


def test_authorizer_is_a_lambda_request_authorizer_on_the_authorization_header() -> None:
    authorizer = RESOURCES[API_LOGICAL_ID]["Properties"]["Auth"]["Authorizers"]["ApiKeyAuthorizer"]
    assert ref_target(authorizer["FunctionArn"]) == AUTHORIZER_FUNCTION
    assert authorizer["FunctionPayloadType"] == "REQUEST"
    assert list(authorizer["Identity"]["Headers"]) == ["Authorization"]
    assert authorizer["Identity"]["ReauthorizeEvery"] == {"Ref": "AuthorizerCacheTtl"}


# ---------------------------------------------------------------- function code


@pytest.mark.parametrize("function_id", sorted(FUNCTIONS))
def test_function_code_exists(function_id: str) -> None:
    assert prop(function_id, "Handler") == "app.lambda_handler"
    assert (code_dir(function_id) / "app.py").is_file(), code_dir(function_id)


@pytest.mark.parametrize("function_id", sorted(routes_by_function()))
def test_function_mounts_exactly_its_routes(function_id: str, lambda_env: None) -> None:
    handler = import_function_module(function_id).lambda_handler
    mounted = [(str(method).upper(), canonical_path(path)) for method, path in handler.routes]
    assert len(mounted) == len(set(mounted)), mounted
    assert set(mounted) == routes_by_function()[function_id]


def test_every_function_has_a_sample_event() -> None:
    for function_id in FUNCTIONS:
        name = code_dir(function_id).name
        assert (EVENTS_DIR / f"{name}.json").is_file(), f"events/{name}.json for {function_id}"


@pytest.mark.parametrize("function_id", sorted(routes_by_function()))
def test_sample_api_event_matches_a_route_of_its_function(function_id: str) -> None:
    event = json.loads((EVENTS_DIR / f"{code_dir(function_id).name}.json").read_text())
    route = (event["httpMethod"], event["resource"])
    assert route in routes_by_function()[function_id]
    assert event["requestContext"]["resourcePath"] == event["resource"]
    assert set(event["headers"]) == set(event["multiValueHeaders"])
    public = function_id in PUBLIC_FUNCTIONS
    assert ("authorizer" in event["requestContext"]) is not public
    if not public:
        assert event["requestContext"]["authorizer"]["workspace_id"]
        assert event["headers"]["Authorization"].startswith("Bearer ")
    if event["body"] is not None:
        assert not event["isBase64Encoded"]
        json.loads(event["body"])


def test_sample_authorizer_event_is_a_request_authorizer_event() -> None:
    event = json.loads((EVENTS_DIR / f"{code_dir(AUTHORIZER_FUNCTION).name}.json").read_text())
    assert event["type"] == "REQUEST"
    assert event["methodArn"].startswith("arn:aws:execute-api:")
    assert event["headers"]["Authorization"].startswith("Bearer bo_")


def test_sample_batch_has_one_item_without_correlation_id() -> None:
    body = json.loads(json.loads((EVENTS_DIR / "create_event_batch.json").read_text())["body"])
    assert len(body["events"]) == 3
    assert [i for i, e in enumerate(body["events"]) if "correlationId" not in e] == [2]


@pytest.mark.parametrize("name", ["batch", "batch_dry_run", "batch_transaction", "batch_async_submit"])
def test_sample_operations_requests_use_the_seed_shape(name: str) -> None:
    body = json.loads(json.loads((EVENTS_DIR / f"{name}.json").read_text())["body"])
    assert set(body) == {"operations", "continueOnError", "parallel"}
    assert [(o["id"], o["method"], o["path"]) for o in body["operations"]] == [
        ("create", "POST", "/v1/events"),
        ("batch", "POST", "/v1/events/batch"),
    ]


def test_sample_transaction_step_event_is_the_state_machine_payload() -> None:
    event = json.loads((EVENTS_DIR / f"{code_dir(TRANSACTION_STEP_FUNCTION).name}.json").read_text())
    payload = transaction_definition()["States"]["RunOperation"]["Parameters"]["Payload"]
    assert set(event) == {key.removesuffix(".$") for key in payload}
    assert event["index"] == 0


def test_sample_worker_event_is_an_sqs_event_from_the_work_queue() -> None:
    event = json.loads((EVENTS_DIR / f"{code_dir(ASYNC_WORKER_FUNCTION).name}.json").read_text())
    (record,) = event["Records"]
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"].endswith(":WorkQueue")
    assert json.loads(record["body"]) == {"workspaceId": "dev", "jobId": "job_example"}


# ---------------------------------------------------------------- environment


def all_environment_sources() -> Iterator[tuple[str, dict[str, Any]]]:
    yield "Globals", (GLOBAL_FUNCTION.get("Environment") or {}).get("Variables") or {}
    for function_id, props in FUNCTIONS.items():
        yield function_id, (props.get("Environment") or {}).get("Variables") or {}


def test_globals_environment() -> None:
    variables = GLOBAL_FUNCTION["Environment"]["Variables"]
    assert variables["BATCHOPS_TABLE_NAME"] == {"Ref": "DomainTable"}
    assert variables["BATCHOPS_IDEMPOTENCY_TABLE_NAME"] == {"Ref": "IdempotencyTable"}
    assert variables["BATCHOPS_WORK_QUEUE_URL"] == {"Ref": "WorkQueue"}
    assert variables["BATCHOPS_STAGE"] == {"Ref": "Stage"}
    assert variables["POWERTOOLS_SERVICE_NAME"] == "batchops"
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "Batchops"
    assert variables["POWERTOOLS_LOG_LEVEL"] == {"Ref": "LogLevel"}


def test_no_two_functions_disagree_on_a_variable() -> None:
    """The local stack runs every function in one process, with one environment."""
    seen: dict[str, tuple[str, str]] = {}
    for source, variables in all_environment_sources():
        for name, value in variables.items():
            rendered = json.dumps(value, sort_keys=True)
            if name in seen:
                assert seen[name][1] == rendered, f"{name}: {seen[name][0]} and {source} differ"
            else:
                seen[name] = (source, rendered)


def test_env_json_covers_every_function_with_declared_variables() -> None:
    env = json.loads((EVENTS_DIR / "env.json").read_text())
    assert set(env) == {"Parameters", *FUNCTIONS}
    # sam local only overrides variables the template declares for the function; any other
    # key would be silently ignored. "Parameters" applies to every function: Globals only.
    assert set(env["Parameters"]) <= set(global_variables()), set(env["Parameters"]) - set(global_variables())
    for function_id in FUNCTIONS:
        block, own = env[function_id], set(function_variables(function_id))
        declared = set(global_variables()) | own
        assert set(block) <= declared, (function_id, set(block) - declared)
        # The shared values, plus a local value for each variable only this function declares
        # (without one, sam local would pass the unresolved template value).
        assert own <= set(block), (function_id, own - set(block))
        assert {k: v for k, v in block.items() if k not in own} == env["Parameters"], function_id
    assert env[TRANSACTION_FUNCTION]["BATCHOPS_TRANSACTION_STATE_MACHINE_ARN"] == (
        "arn:aws:states:us-east-1:123456789012:stateMachine:TransactionStateMachine"
    )
    assert env["Parameters"]["BATCHOPS_TABLE_NAME"] == "DomainTable"
    assert env["Parameters"]["BATCHOPS_IDEMPOTENCY_TABLE_NAME"] == "IdempotencyTable"
    assert env["Parameters"]["BATCHOPS_WORK_QUEUE_URL"].endswith("/WorkQueue")


# ---------------------------------------------------------------- layer


TRACING_FOLLOWS_THE_PARAMETER = {"Fn::If": ["TracingActive", True, False]}
EXPORTING_FUNCTIONS = {"GetBatchResultsFunction"}


def test_layers_are_built_by_their_makefile_with_bytecode() -> None:
    """Each layer is built by layers/layer.mk (compiled bytecode, Lambda's platform, no boto3);
    only the function rendering result files gets the exports layer."""
    layers = {k: v for k, v in RESOURCES.items() if v["Type"] == "AWS::Serverless::LayerVersion"}
    assert set(layers) == {"CommonLayer", "ExportsLayer"}
    for logical_id, layer in layers.items():
        assert layer["Metadata"] == {"BuildMethod": "makefile"}, logical_id
        content = ROOT / str(layer["Properties"]["ContentUri"]).rstrip("/")
        assert (content / "requirements.txt").is_file()
        makefile = (content / "Makefile").read_text()
        assert f"build-{logical_id}:" in makefile and "include" in makefile and "layer.mk" in makefile
    assert (ROOT / "layers/common/batchops/__init__.py").is_file()
    recipe = (ROOT / "layers/layer.mk").read_text()
    assert "--invalidation-mode unchecked-hash" in recipe and "--no-deps" in recipe
    assert "--platform manylinux2014_$(LAYER_ARCH)" in recipe
    for function_id in FUNCTIONS:
        own = [ref_target(x) for x in FUNCTIONS[function_id].get("Layers") or []]
        merged = [ref_target(x) for x in GLOBAL_FUNCTION["Layers"]] + own  # SAM appends lists
        expected = ["CommonLayer", "ExportsLayer"] if function_id in EXPORTING_FUNCTIONS else ["CommonLayer"]
        assert merged == expected, function_id
        for layer_id in merged:
            layer = layers[str(layer_id)]
            assert prop(function_id, "Runtime") in layer["Properties"]["CompatibleRuntimes"]
            # One Architecture parameter sets both (x86_64 for `sam local` on x86 hosts).
            assert prop(function_id, "Architectures") == [{"Ref": "Architecture"}], function_id
            assert layer["Properties"]["CompatibleArchitectures"] == [{"Ref": "Architecture"}], layer_id


def test_tracing_is_one_parameter_off_by_default() -> None:
    """X-Ray costs every cold start the SDK's import, so it is opt-in, and every part follows."""
    assert TEMPLATE["Parameters"]["Tracing"]["Default"] == "PassThrough"
    assert TEMPLATE["Conditions"]["TracingActive"] == {"Fn::Equals": [{"Ref": "Tracing"}, "Active"]}
    assert GLOBAL_FUNCTION["Tracing"] == {"Ref": "Tracing"}
    assert GLOBAL_FUNCTION["Environment"]["Variables"]["POWERTOOLS_TRACE_DISABLED"] == {
        "Fn::If": ["TracingActive", "false", "true"]
    }


# ---------------------------------------------------------------- permissions


EXPECTED_POLICIES = {
    "AuthorizerFunction": ["DynamoDBReadPolicy", "inline"],
    "HealthFunction": [],
    "OpenApiFunction": [],
    "CreateEventFunction": ["RateLimitPolicy", "inline", "IdempotencyPolicy"],
    "CreateEventBatchFunction": ["RateLimitPolicy", "inline", "IdempotencyPolicy"],
    "GetEventBatchFunction": ["RateLimitPolicy", "DynamoDBReadPolicy"],
    "GetEventBatchSummaryFunction": ["RateLimitPolicy", "DynamoDBReadPolicy"],
    # Operations run in-process against any route: what those routes need.
    "BatchFunction": [
        "RateLimitPolicy",
        "DynamoDBCrudPolicy",
        "IdempotencyPolicy",
        "SQSSendMessagePolicy",
        "SQSSendMessagePolicy",
        "SQSSendMessagePolicy",
        "inline",
    ],
    "BatchDryRunFunction": ["RateLimitPolicy", "DynamoDBReadPolicy"],
    "BatchLimitsFunction": ["RateLimitPolicy"],
    "SweeperFunction": ["DynamoDBCrudPolicy", "SQSSendMessagePolicy", "SQSSendMessagePolicy"],
    "BatchTransactionFunction": [
        "RateLimitPolicy",
        "DynamoDBCrudPolicy",
        "StepFunctionsExecutionPolicy",
        "inline",
        "IdempotencyPolicy",
    ],
    "TransactionStepFunction": [
        "DynamoDBCrudPolicy",
        "IdempotencyPolicy",
        "SQSSendMessagePolicy",
        "SQSSendMessagePolicy",
        "SQSSendMessagePolicy",
        "inline",
    ],
    "BatchAsyncSubmitFunction": ["RateLimitPolicy", "DynamoDBCrudPolicy", "SQSSendMessagePolicy", "IdempotencyPolicy"],
    "BatchAsyncGetFunction": ["RateLimitPolicy", "DynamoDBReadPolicy"],
    "BatchAsyncListFunction": ["RateLimitPolicy", "DynamoDBReadPolicy"],
    "BatchAsyncWorkerFunction": [
        "DynamoDBCrudPolicy",
        "IdempotencyPolicy",
        "SQSSendMessagePolicy",
        "SQSSendMessagePolicy",
        "SQSSendMessagePolicy",
        "inline",
    ],
    # Jobs (seed 001). The job and its unique-name item are written in one TransactWriteItems.
    "CreateJobFunction": ["RateLimitPolicy", "IdempotencyPolicy", "DynamoDBCrudPolicy"],
    "ListJobsFunction": ["RateLimitPolicy", "DynamoDBReadPolicy"],
    "GetJobFunction": ["RateLimitPolicy", "DynamoDBReadPolicy"],
    "UpdateJobFunction": ["RateLimitPolicy", "DynamoDBCrudPolicy"],
    "DeleteJobFunction": ["RateLimitPolicy", "DynamoDBCrudPolicy"],
    # Runs: claims, runs and the batch item are written together; then the runs are queued.
    "TriggerJobFunction": [
        "RateLimitPolicy",
        "IdempotencyPolicy",
        "DynamoDBCrudPolicy",
        "SQSSendMessagePolicy",
        "SQSSendMessagePolicy",
    ],
    "TriggerJobBulkFunction": [
        "RateLimitPolicy",
        "IdempotencyPolicy",
        "DynamoDBCrudPolicy",
        "SQSSendMessagePolicy",
        "SQSSendMessagePolicy",
    ],
    "GetRunFunction": ["RateLimitPolicy", "DynamoDBReadPolicy"],
    "ListRunsFunction": ["RateLimitPolicy", "DynamoDBReadPolicy"],
    "ListBatchOperationsFunction": ["RateLimitPolicy", "DynamoDBReadPolicy"],
    "GetBatchOperationFunction": ["RateLimitPolicy", "DynamoDBReadPolicy"],
    # Conditional run updates, and ChangeMessageVisibility on RunQueue only.
    "RunWorkerFunction": ["DynamoDBCrudPolicy", "inline"],
    # Tracked events only: BatchWriteItem, and PutItem for the conditional puts of TransactWriteItems.
    "TrackingWorkerFunction": ["inline"],
    # Tracking (seed 004).
    "BulkTrackFunction": ["RateLimitPolicy", "IdempotencyPolicy", "SQSSendMessagePolicy"],
    "TrackFunction": ["RateLimitPolicy", "IdempotencyPolicy", "inline"],
    "GetTrackedEventFunction": ["RateLimitPolicy", "DynamoDBReadPolicy"],
    "CreateTrackingUploadFunction": ["RateLimitPolicy", "IdempotencyPolicy", "inline"],
    "GetTrackingUploadFunction": ["RateLimitPolicy", "DynamoDBReadPolicy", "inline"],
    "TrackingUploadWorkerFunction": ["inline", "SQSSendMessagePolicy"],
    # Batches (seed 002).
    "CreateBatchFunction": [
        "RateLimitPolicy",
        "IdempotencyPolicy",
        "DynamoDBCrudPolicy",
        "SQSSendMessagePolicy",
        "SQSSendMessagePolicy",
        "SQSSendMessagePolicy",
    ],
    "ListBatchesFunction": ["RateLimitPolicy", "DynamoDBReadPolicy"],
    "GetBatchFunction": ["RateLimitPolicy", "DynamoDBReadPolicy"],
    "GetBatchResultsFunction": ["RateLimitPolicy", "DynamoDBCrudPolicy", "inline"],
    "CancelBatchFunction": ["RateLimitPolicy", "DynamoDBCrudPolicy", "SQSSendMessagePolicy"],
    "RetryBatchFunction": [
        "RateLimitPolicy",
        "IdempotencyPolicy",
        "DynamoDBCrudPolicy",
        "SQSSendMessagePolicy",
        "SQSSendMessagePolicy",
        "SQSSendMessagePolicy",
    ],
    "CreateWebhookFunction": ["RateLimitPolicy", "IdempotencyPolicy", "DynamoDBCrudPolicy"],
    "ListWebhooksFunction": ["RateLimitPolicy", "DynamoDBReadPolicy"],
    "DeleteWebhookFunction": ["RateLimitPolicy", "DynamoDBCrudPolicy"],
    "ListWebhookDeliveriesFunction": ["RateLimitPolicy", "DynamoDBReadPolicy"],
    "BatchJobWorkerFunction": [
        "DynamoDBCrudPolicy",
        "IdempotencyPolicy",
        "SQSSendMessagePolicy",
        "SQSSendMessagePolicy",
        "SQSSendMessagePolicy",
        "inline",
        "SQSSendMessagePolicy",
        "SQSSendMessagePolicy",
        "inline",
    ],
    "BatchUrgentJobWorkerFunction": [
        "DynamoDBCrudPolicy",
        "IdempotencyPolicy",
        "SQSSendMessagePolicy",
        "SQSSendMessagePolicy",
        "SQSSendMessagePolicy",
        "inline",
        "SQSSendMessagePolicy",
        "SQSSendMessagePolicy",
        "inline",
    ],
    "WebhookDispatcherFunction": ["DynamoDBCrudPolicy", "inline", "inline"],
    "BatchSweeperFunction": [
        "DynamoDBCrudPolicy",
        "SQSSendMessagePolicy",
        "SQSSendMessagePolicy",
        "SQSSendMessagePolicy",
    ],
}

# What each SAM policy template is scoped to, in template order.
EXPECTED_POLICY_TARGETS = {
    "AuthorizerFunction": [("DynamoDBReadPolicy", "DomainTable")],
    "HealthFunction": [],
    "OpenApiFunction": [],
    "CreateEventFunction": [],
    "CreateEventBatchFunction": [],
    "GetEventBatchFunction": [("DynamoDBReadPolicy", "DomainTable")],
    "GetEventBatchSummaryFunction": [("DynamoDBReadPolicy", "DomainTable")],
    "BatchFunction": [
        ("DynamoDBCrudPolicy", "DomainTable"),
        ("SQSSendMessagePolicy", "RunQueue"),
        ("SQSSendMessagePolicy", "RunUrgentQueue"),
        ("SQSSendMessagePolicy", "TrackingQueue"),
    ],
    "BatchDryRunFunction": [("DynamoDBReadPolicy", "DomainTable")],
    "BatchLimitsFunction": [],
    "SweeperFunction": [
        ("DynamoDBCrudPolicy", "DomainTable"),
        ("SQSSendMessagePolicy", "RunQueue"),
        ("SQSSendMessagePolicy", "RunUrgentQueue"),
    ],
    "BatchTransactionFunction": [
        ("DynamoDBCrudPolicy", "DomainTable"),
        ("StepFunctionsExecutionPolicy", TRANSACTION_STATE_MACHINE),
    ],
    "TransactionStepFunction": [
        ("DynamoDBCrudPolicy", "DomainTable"),
        ("SQSSendMessagePolicy", "RunQueue"),
        ("SQSSendMessagePolicy", "RunUrgentQueue"),
        ("SQSSendMessagePolicy", "TrackingQueue"),
    ],
    "BatchAsyncSubmitFunction": [
        ("DynamoDBCrudPolicy", "DomainTable"),
        ("SQSSendMessagePolicy", "WorkQueue"),
    ],
    "BatchAsyncGetFunction": [("DynamoDBReadPolicy", "DomainTable")],
    "BatchAsyncListFunction": [("DynamoDBReadPolicy", "DomainTable")],
    "BatchAsyncWorkerFunction": [
        ("DynamoDBCrudPolicy", "DomainTable"),
        ("SQSSendMessagePolicy", "RunQueue"),
        ("SQSSendMessagePolicy", "RunUrgentQueue"),
        ("SQSSendMessagePolicy", "TrackingQueue"),
    ],
    "CreateJobFunction": [("DynamoDBCrudPolicy", "DomainTable")],
    "ListJobsFunction": [("DynamoDBReadPolicy", "DomainTable")],
    "GetJobFunction": [("DynamoDBReadPolicy", "DomainTable")],
    "UpdateJobFunction": [("DynamoDBCrudPolicy", "DomainTable")],
    "DeleteJobFunction": [("DynamoDBCrudPolicy", "DomainTable")],
    "TriggerJobFunction": [
        ("DynamoDBCrudPolicy", "DomainTable"),
        ("SQSSendMessagePolicy", "RunQueue"),
        ("SQSSendMessagePolicy", "RunUrgentQueue"),
    ],
    "TriggerJobBulkFunction": [
        ("DynamoDBCrudPolicy", "DomainTable"),
        ("SQSSendMessagePolicy", "RunQueue"),
        ("SQSSendMessagePolicy", "RunUrgentQueue"),
    ],
    "GetRunFunction": [("DynamoDBReadPolicy", "DomainTable")],
    "ListRunsFunction": [("DynamoDBReadPolicy", "DomainTable")],
    "ListBatchOperationsFunction": [("DynamoDBReadPolicy", "DomainTable")],
    "GetBatchOperationFunction": [("DynamoDBReadPolicy", "DomainTable")],
    "RunWorkerFunction": [("DynamoDBCrudPolicy", "DomainTable")],
    "TrackingWorkerFunction": [],
    "BulkTrackFunction": [("SQSSendMessagePolicy", "TrackingQueue")],
    "TrackFunction": [],
    "GetTrackedEventFunction": [("DynamoDBReadPolicy", "DomainTable")],
    "CreateTrackingUploadFunction": [],
    "GetTrackingUploadFunction": [("DynamoDBReadPolicy", "DomainTable")],
    "TrackingUploadWorkerFunction": [("SQSSendMessagePolicy", "TrackingQueue")],
    "CreateBatchFunction": [
        ("DynamoDBCrudPolicy", "DomainTable"),
        ("SQSSendMessagePolicy", "BatchJobQueue"),
        ("SQSSendMessagePolicy", "BatchUrgentJobQueue"),
        ("SQSSendMessagePolicy", "WebhookQueue"),
    ],
    "ListBatchesFunction": [("DynamoDBReadPolicy", "DomainTable")],
    "GetBatchFunction": [("DynamoDBReadPolicy", "DomainTable")],
    "GetBatchResultsFunction": [("DynamoDBCrudPolicy", "DomainTable")],
    "CancelBatchFunction": [("DynamoDBCrudPolicy", "DomainTable"), ("SQSSendMessagePolicy", "WebhookQueue")],
    "RetryBatchFunction": [
        ("DynamoDBCrudPolicy", "DomainTable"),
        ("SQSSendMessagePolicy", "BatchJobQueue"),
        ("SQSSendMessagePolicy", "BatchUrgentJobQueue"),
        ("SQSSendMessagePolicy", "WebhookQueue"),
    ],
    "CreateWebhookFunction": [("DynamoDBCrudPolicy", "DomainTable")],
    "ListWebhooksFunction": [("DynamoDBReadPolicy", "DomainTable")],
    "DeleteWebhookFunction": [("DynamoDBCrudPolicy", "DomainTable")],
    "ListWebhookDeliveriesFunction": [("DynamoDBReadPolicy", "DomainTable")],
    "BatchJobWorkerFunction": [
        ("DynamoDBCrudPolicy", "DomainTable"),
        ("SQSSendMessagePolicy", "RunQueue"),
        ("SQSSendMessagePolicy", "RunUrgentQueue"),
        ("SQSSendMessagePolicy", "TrackingQueue"),
        ("SQSSendMessagePolicy", "WebhookQueue"),
        ("SQSSendMessagePolicy", "BatchJobQueue"),
    ],
    "BatchUrgentJobWorkerFunction": [
        ("DynamoDBCrudPolicy", "DomainTable"),
        ("SQSSendMessagePolicy", "RunQueue"),
        ("SQSSendMessagePolicy", "RunUrgentQueue"),
        ("SQSSendMessagePolicy", "TrackingQueue"),
        ("SQSSendMessagePolicy", "WebhookQueue"),
        ("SQSSendMessagePolicy", "BatchUrgentJobQueue"),
    ],
    "WebhookDispatcherFunction": [("DynamoDBCrudPolicy", "DomainTable")],
    "BatchSweeperFunction": [
        ("DynamoDBCrudPolicy", "DomainTable"),
        ("SQSSendMessagePolicy", "BatchJobQueue"),
        ("SQSSendMessagePolicy", "BatchUrgentJobQueue"),
        ("SQSSendMessagePolicy", "WebhookQueue"),
    ],
}


def test_every_function_has_expected_policies() -> None:
    assert set(EXPECTED_POLICIES) == set(FUNCTIONS)
    assert set(EXPECTED_POLICY_TARGETS) == set(FUNCTIONS)


@pytest.mark.parametrize("function_id", sorted(set(EXPECTED_POLICIES) & set(FUNCTIONS)))
def test_functions_have_least_privilege(function_id: str) -> None:
    assert policy_names(function_id) == EXPECTED_POLICIES[function_id]
    assert policy_template_targets(function_id) == EXPECTED_POLICY_TARGETS[function_id]


def test_every_authenticated_route_may_spend_only_rate_limit_buckets() -> None:
    authenticated = {f for f, _, e in api_events() if not event_is_public(e)}
    with_policy = {f for f in FUNCTIONS if "RateLimitPolicy" in policy_names(f)}
    assert authenticated == with_policy
    policy = RESOURCES["RateLimitPolicy"]
    assert policy["Type"] == "AWS::IAM::ManagedPolicy"
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert (statement["Effect"], statement["Action"]) == ("Allow", "dynamodb:UpdateItem")
    assert ref_target(statement["Resource"]) == "DomainTable"
    # Only bucket items (keys.rate_bucket): a route cannot rewrite anything else with it.
    assert statement["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["WS#*#RATE#*"]}}


def test_every_creating_route_may_keep_idempotency_records_and_nothing_more() -> None:
    creating = {f for f, _, e in api_events() if e["Method"].upper() == "POST" and e["Path"] != "/v1/batch/dry-run"}
    # Operations carry their own Idempotency-Key wherever they run in-process.
    dispatchers = {
        TRANSACTION_STEP_FUNCTION,
        ASYNC_WORKER_FUNCTION,
        "BatchJobWorkerFunction",
        "BatchUrgentJobWorkerFunction",
    }
    with_policy = {f for f in FUNCTIONS if "IdempotencyPolicy" in policy_names(f)}
    assert with_policy == creating | dispatchers
    policy = RESOURCES["IdempotencyPolicy"]
    assert policy["Type"] == "AWS::IAM::ManagedPolicy"
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    # Powertools' DynamoDB persistence layer: get, conditional put, update and delete of a record.
    assert _actions(statement) == ["dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"]
    assert ref_target(statement["Resource"]) == "IdempotencyTable"


def _inline_statements(function_id: str) -> list[dict[str, Any]]:
    return [
        s
        for p in FUNCTIONS[function_id]["Policies"]
        if isinstance(p, dict) and "Statement" in p
        for s in p["Statement"]
    ]


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return sorted(action if isinstance(action, list) else [action])


def test_tracking_functions_touch_only_tracking_items() -> None:
    leading = "dynamodb:LeadingKeys"
    (worker,) = _inline_statements("TrackingWorkerFunction")
    assert _actions(worker) == ["dynamodb:BatchWriteItem", "dynamodb:PutItem"]
    assert worker["Condition"]["ForAllValues:StringLike"][leading] == ["WS#*#TEVT#*"]
    (track,) = _inline_statements("TrackFunction")
    assert _actions(track) == ["dynamodb:PutItem"]
    assert track["Condition"]["ForAllValues:StringLike"][leading] == ["WS#*#TEVT#*"]
    record, upload = _inline_statements("CreateTrackingUploadFunction")
    assert _actions(record) == ["dynamodb:PutItem"]
    assert record["Condition"]["ForAllValues:StringLike"][leading] == ["WS#*#TUPLOAD#*"]
    assert (_actions(upload), upload["Resource"]) == (
        ["s3:PutObject"],
        {"Fn::Sub": "${TrackingUploadBucket.Arn}/uploads/*"},
    )
    (result,) = _inline_statements("GetTrackingUploadFunction")
    assert (_actions(result), result["Resource"]) == (
        ["s3:GetObject"],
        {"Fn::Sub": "${TrackingUploadBucket.Arn}/results/*"},
    )
    table, read, write, visibility = _inline_statements("TrackingUploadWorkerFunction")
    assert _actions(table) == ["dynamodb:GetItem", "dynamodb:UpdateItem"]
    assert table["Condition"]["ForAllValues:StringLike"][leading] == ["WS#*#TUPLOAD#*", "WS#*#RATE#*"]
    assert _actions(read) == ["s3:DeleteObject", "s3:GetObject"] and read["Resource"]["Fn::Sub"].endswith("/uploads/*")
    assert _actions(write) == ["s3:PutObject"] and write["Resource"]["Fn::Sub"].endswith("/results/*")
    assert (_actions(visibility), ref_target(visibility["Resource"])) == (
        ["sqs:ChangeMessageVisibility"],
        "TrackingUploadQueue",
    )


def test_upload_bucket_is_private_encrypted_expiring_and_notifies_its_queue() -> None:
    bucket = RESOURCES["TrackingUploadBucket"]
    props = bucket["Properties"]
    assert bucket["DependsOn"] == "TrackingUploadQueuePolicy"
    assert all(props["PublicAccessBlockConfiguration"].values())
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    rules = {r["Prefix"]: r["ExpirationInDays"] for r in props["LifecycleConfiguration"]["Rules"]}
    assert rules == {"uploads/": 1, "results/": 7}
    (notification,) = props["NotificationConfiguration"]["QueueConfigurations"]
    assert ref_target(notification["Queue"]) == "TrackingUploadQueue"
    assert notification["Filter"]["S3Key"]["Rules"] == [{"Name": "prefix", "Value": "uploads/"}]
    (statement,) = RESOURCES["TrackingUploadQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"} and statement["Action"] == "sqs:SendMessage"
    assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}


def test_transaction_function_may_start_poll_and_stop_only_its_machine() -> None:
    policies = FUNCTIONS[TRANSACTION_FUNCTION]["Policies"]
    (execution,) = [p["StepFunctionsExecutionPolicy"] for p in policies if "StepFunctionsExecutionPolicy" in p]
    assert execution["StateMachineName"] == {"Fn::GetAtt": [TRANSACTION_STATE_MACHINE, "Name"]}
    (document,) = [p for p in policies if "Statement" in p]
    (statement,) = document["Statement"]
    assert statement["Effect"] == "Allow"
    assert sorted(statement["Action"]) == ["states:DescribeExecution", "states:StopExecution"]
    assert statement["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:execution:"
        "${TransactionStateMachine.Name}:*"
    }


def test_transaction_function_gets_the_machine_arn_and_no_one_else_does() -> None:
    assert function_variables(TRANSACTION_FUNCTION) == {
        "BATCHOPS_TRANSACTION_STATE_MACHINE_ARN": {"Ref": TRANSACTION_STATE_MACHINE}
    }
    # In Globals (or on the step function) it would be a circular dependency: the machine
    # substitutes the step function's ARN.
    assert "BATCHOPS_TRANSACTION_STATE_MACHINE_ARN" not in global_variables()
    assert TRANSACTION_STATE_MACHINE not in json.dumps(global_variables())
    assert not function_variables(TRANSACTION_STEP_FUNCTION)


def test_long_operation_functions_get_their_timeouts() -> None:
    # API Gateway cuts a REST integration at 29 s: the HTTP functions answer by their deadline
    # (BATCHOPS_HTTP_DEADLINE_MS, 28 s) and the Lambda timeout only leaves room to answer.
    assert int(prop("BatchFunction", "Timeout")) == 35
    assert int(prop(TRANSACTION_FUNCTION, "Timeout")) == 35
    assert int(prop(TRANSACTION_STEP_FUNCTION, "Timeout")) == 30
    assert int(prop(ASYNC_WORKER_FUNCTION, "Timeout")) == 90


@pytest.mark.parametrize(
    ("function_id", "actions"),
    [
        ("CreateEventFunction", ["dynamodb:PutItem", "dynamodb:UpdateItem"]),
        (
            "CreateEventBatchFunction",
            ["dynamodb:BatchGetItem", "dynamodb:BatchWriteItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
        ),
    ],
)
def test_event_writers_may_only_write_entries(function_id: str, actions: list[str]) -> None:
    (document,) = [p for p in FUNCTIONS[function_id]["Policies"] if isinstance(p, dict) and "Statement" in p]
    (statement,) = document["Statement"]
    granted = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
    assert sorted(granted) == actions
    assert ref_target(statement["Resource"]) == "DomainTable"
    # Event-log items only: entries, idempotencyKey claims and the workspace's entry counter.
    assert statement["Condition"] == {
        "ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["WS#*#EXEC#*", "WS#*#EVTKEY#*", "WS#*#EVTSEQ"]}
    }
    assert not [p for p in FUNCTIONS[function_id]["Policies"] if isinstance(p, dict) and "DynamoDBCrudPolicy" in p]


def test_authorizer_may_only_update_the_domain_table() -> None:
    inline = [p for p in FUNCTIONS[AUTHORIZER_FUNCTION]["Policies"] if isinstance(p, dict) and "Statement" in p]
    (document,) = inline
    (statement,) = document["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Action"] in ("dynamodb:UpdateItem", ["dynamodb:UpdateItem"])
    assert ref_target(statement["Resource"]) == "DomainTable"


def test_no_function_gets_wildcards_or_managed_full_access() -> None:
    for function_id in FUNCTIONS:
        for policy in FUNCTIONS[function_id].get("Policies") or []:
            assert not (isinstance(policy, str) and "FullAccess" in policy), (function_id, policy)
            if isinstance(policy, dict) and "Statement" in policy:
                for statement in policy["Statement"]:
                    actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                    assert all(not a.endswith("*") for a in actions), (function_id, actions)
                    assert statement.get("Resource") != "*", function_id


# ---------------------------------------------------------------- queues


def test_work_queues_redrive_to_a_dead_letter_queue() -> None:
    dlqs = dead_letter_queues()
    assert dlqs, "no dead-letter queue"
    for logical_id, props in queues().items():
        if logical_id in dlqs:
            continue
        redrive = props.get("RedrivePolicy")
        assert redrive, f"{logical_id} has no RedrivePolicy"
        assert int(redrive["maxReceiveCount"]) >= 5, logical_id
        target = ref_target(redrive["deadLetterTargetArn"])
        assert target in queues(), logical_id
        # The DLQ keeps a message longer than its source (SQS keeps the original enqueue time).
        source_retention = int(props.get("MessageRetentionPeriod", 345600))
        assert int(queues()[target].get("MessageRetentionPeriod", 345600)) > source_retention, target


def test_run_queue_outlasts_every_retry() -> None:
    # Each attempt of a run is one receive of its message; max_attempts allows up to 10.
    for queue in ("RunQueue", "RunUrgentQueue"):
        assert int(queues()[queue]["RedrivePolicy"]["maxReceiveCount"]) > 10, queue
        assert sqs_consumers(queue) == ["RunWorkerFunction"], queue


def test_urgent_runs_have_a_queue_and_event_source_of_their_own() -> None:
    """A backlog of low-priority runs on RunQueue cannot delay a high-priority run: it is sent to
    RunUrgentQueue, which the run worker polls through a second event source (DESIGN §2)."""
    assert GLOBAL_FUNCTION["Environment"]["Variables"]["BATCHOPS_RUN_URGENT_QUEUE_URL"] == {"Ref": "RunUrgentQueue"}
    events = FUNCTIONS["RunWorkerFunction"]["Events"]
    assert sorted(ref_target(e["Properties"]["Queue"]) for e in events.values()) == ["RunQueue", "RunUrgentQueue"]
    assert {int(e["Properties"]["BatchSize"]) for e in events.values()} == {10}
    assert ref_target(queues()["RunUrgentQueue"]["RedrivePolicy"]["deadLetterTargetArn"]) == "RunUrgentDeadLetterQueue"
    # Every function that may queue a run may send to both queues, and nothing else may.
    senders = {f for f in FUNCTIONS if ("SQSSendMessagePolicy", "RunUrgentQueue") in policy_template_targets(f)}
    assert senders == {f for f in FUNCTIONS if ("SQSSendMessagePolicy", "RunQueue") in policy_template_targets(f)}
    (visibility,) = [p for p in FUNCTIONS["RunWorkerFunction"]["Policies"] if isinstance(p, dict) and "Statement" in p]
    (statement,) = visibility["Statement"]
    assert statement["Action"] == "sqs:ChangeMessageVisibility"
    assert sorted(ref_target(r) for r in statement["Resource"]) == ["RunQueue", "RunUrgentQueue"]


def test_every_dead_letter_queue_has_an_alarm() -> None:
    alarmed = {
        ref_target(d["Value"])
        for r in RESOURCES.values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
        for d in r["Properties"].get("Dimensions", [])
        if d["Name"] == "QueueName"
    }
    assert dead_letter_queues() <= alarmed


def sqs_consumers(queue_id: str) -> list[str]:
    consumers = []
    for function_id, props in FUNCTIONS.items():
        for event in (props.get("Events") or {}).values():
            if event["Type"] == "SQS" and ref_target(event["Properties"]["Queue"]) == queue_id:
                consumers.append(function_id)
    return consumers


def test_visibility_timeout_is_six_times_the_consumer_timeout() -> None:
    checked = []
    for logical_id, props in queues().items():
        if logical_id in dead_letter_queues():
            continue
        consumers = sqs_consumers(logical_id)
        assert consumers, f"{logical_id} has no consumer"
        longest = max(int(prop(function_id, "Timeout") or 3) for function_id in consumers)
        assert int(props.get("VisibilityTimeout", 30)) >= 6 * longest, logical_id
        checked.append(logical_id)
    assert "WorkQueue" in checked


def test_sqs_workers_report_partial_batch_failures() -> None:
    sqs_events = []
    for function_id, props in FUNCTIONS.items():
        for event_name, event in (props.get("Events") or {}).items():
            if event["Type"] == "SQS":
                responses = event["Properties"].get("FunctionResponseTypes") or []
                assert "ReportBatchItemFailures" in responses, (function_id, event_name)
                sqs_events.append(function_id)
    assert ASYNC_WORKER_FUNCTION in sqs_events


@pytest.mark.parametrize("function_id", ["RunWorkerFunction", "BatchJobWorkerFunction", "BatchUrgentJobWorkerFunction"])
def test_call_workers_take_ten_records_at_once_without_waiting(function_id: str) -> None:
    """Run and job records of one invocation run side by side (api/workers.py), so ten per
    invocation cut invocations and receives tenfold; a batching window would only add delay."""
    for event in FUNCTIONS[function_id]["Events"].values():
        props = event["Properties"]
        assert int(props["BatchSize"]) == 10
        assert int(props["MaximumBatchingWindowInSeconds"]) == 0
        assert list(props["FunctionResponseTypes"]) == ["ReportBatchItemFailures"]


def test_async_worker_consumes_the_work_queue() -> None:
    (event,) = FUNCTIONS[ASYNC_WORKER_FUNCTION]["Events"].values()
    assert event["Type"] == "SQS"
    props = event["Properties"]
    assert ref_target(props["Queue"]) == "WorkQueue"
    assert props["Queue"] == {"Fn::GetAtt": ["WorkQueue", "Arn"]}
    assert int(props["BatchSize"]) == 1
    assert int(props["MaximumBatchingWindowInSeconds"]) == 0
    assert list(props["FunctionResponseTypes"]) == ["ReportBatchItemFailures"]
    assert sqs_consumers("WorkQueue") == [ASYNC_WORKER_FUNCTION]
    timeout = int(prop(ASYNC_WORKER_FUNCTION, "Timeout"))
    assert int(queues()["WorkQueue"]["VisibilityTimeout"]) >= 6 * timeout


def test_the_operations_sweeper_waits_out_the_work_queue_and_the_worker() -> None:
    """The sweeper fails an async job only when no worker can hold it (issue 13, R7): one never
    taken once WorkQueue can no longer deliver its message, one taken once the worker that took
    it has certainly ended (its claim is older than the worker's Lambda timeout)."""
    from batchops.services.operation_jobs import WORK_QUEUE_RETENTION_SECONDS
    from batchops.settings import Settings

    assert int(queues()["WorkQueue"]["MessageRetentionPeriod"]) == WORK_QUEUE_RETENTION_SECONDS
    claim_stale = Settings.model_fields["claim_stale_seconds"].default
    assert claim_stale > int(prop(ASYNC_WORKER_FUNCTION, "Timeout"))
    assert claim_stale > int(prop("TransactionStepFunction", "Timeout"))


def test_queues_are_encrypted() -> None:
    for logical_id, props in queues().items():
        assert props.get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in props, logical_id


# ---------------------------------------------------------------- state machines


def test_transaction_state_machine_is_standard_and_runs_the_step_function() -> None:
    assert set(STATE_MACHINES) == {TRANSACTION_STATE_MACHINE}
    props = STATE_MACHINES[TRANSACTION_STATE_MACHINE]
    # The endpoint polls DescribeExecution (Express has none); Standard runs each state once.
    assert props["Type"] == "STANDARD"
    assert props["DefinitionUri"] == "statemachines/transaction.asl.json"
    assert props["DefinitionSubstitutions"] == {
        "TransactionStepFunctionArn": {"Fn::GetAtt": [TRANSACTION_STEP_FUNCTION, "Arn"]}
    }
    assert props["Policies"] == [{"LambdaInvokePolicy": {"FunctionName": {"Ref": TRANSACTION_STEP_FUNCTION}}}]
    assert props["Tracing"] == {"Enabled": TRACING_FOLLOWS_THE_PARAMETER}
    assert not FUNCTIONS[TRANSACTION_STEP_FUNCTION].get("Events"), "the step function is only a task"


def test_transaction_definition_placeholders_are_all_substituted() -> None:
    text = transaction_definition_path().read_text()
    placeholders = set(re.findall(r"\$\{([^}]+)\}", text))
    assert placeholders == set(STATE_MACHINES[TRANSACTION_STATE_MACHINE]["DefinitionSubstitutions"])


def test_transaction_definition_loops_run_operation_until_done() -> None:
    definition = transaction_definition()
    assert definition["Comment"]
    assert definition["StartAt"] == "RunOperation"
    assert definition["TimeoutSeconds"] == 300
    states = definition["States"]
    assert set(states) == {"RunOperation", "MoreOperations", "Finished"}

    task = states["RunOperation"]
    assert task["Type"] == "Task"
    assert task["Resource"] == "arn:aws:states:::lambda:invoke"
    assert task["Parameters"] == {
        "FunctionName": "${TransactionStepFunctionArn}",
        "Payload": {"workspaceId.$": "$.workspaceId", "jobId.$": "$.jobId", "index.$": "$.index"},
    }
    assert task["OutputPath"] == "$.Payload"
    retry, in_progress = task["Retry"]
    # another run holds the operation (a duplicate task): wait for it rather than fail
    assert in_progress["ErrorEquals"] == ["OperationInProgressError"]
    assert in_progress["IntervalSeconds"] * in_progress["MaxAttempts"] >= 180
    assert set(retry["ErrorEquals"]) == {
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
        "Lambda.TooManyRequestsException",
    }
    assert (retry["IntervalSeconds"], retry["MaxAttempts"], retry["BackoffRate"]) == (1, 3, 2)
    assert task["Next"] == "MoreOperations"

    choice = states["MoreOperations"]
    assert choice["Type"] == "Choice"
    assert choice["Choices"] == [{"Variable": "$.done", "BooleanEquals": True, "Next": "Finished"}]
    assert choice["Default"] == "RunOperation"
    assert states["Finished"] == {"Type": "Succeed"}


def test_state_machines_are_alarmed_and_on_the_dashboard() -> None:
    covered = {
        (ref_target(d["Value"]), a["MetricName"])
        for a in alarms()
        if a.get("Namespace") == "AWS/States"
        for d in a.get("Dimensions", [])
        if d["Name"] == "StateMachineArn"
    }
    body = RESOURCES["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    for logical_id in STATE_MACHINES:
        assert (logical_id, "ExecutionsFailed") in covered, logical_id
        assert (logical_id, "ExecutionsTimedOut") in covered, logical_id
        assert "${" + logical_id + "}" in body, logical_id


# ---------------------------------------------------------------- tables


def tables() -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource["Properties"]
        for logical_id, resource in RESOURCES.items()
        if resource["Type"] == "AWS::DynamoDB::Table"
    }


@pytest.mark.parametrize("table_id", sorted(tables()))
def test_table_has_ttl_pitr_sse_on_demand(table_id: str) -> None:
    props = tables()[table_id]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["TimeToLiveSpecification"]["Enabled"] is True
    assert props["TimeToLiveSpecification"]["AttributeName"]
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert props["SSESpecification"]["SSEEnabled"] is True
    assert "TableName" not in props, "let CloudFormation name tables"


def test_domain_table_keys() -> None:
    props = tables()["DomainTable"]
    assert {(k["AttributeName"], k["KeyType"]) for k in props["KeySchema"]} == {
        ("pk", "HASH"),
        ("sk", "RANGE"),
    }
    gsi, in_flight, by_job = props["GlobalSecondaryIndexes"]
    assert by_job["IndexName"] == "gsi3"
    assert {(k["AttributeName"], k["KeyType"]) for k in by_job["KeySchema"]} == {
        ("gsi3pk", "HASH"),
        ("gsi3sk", "RANGE"),
    }
    assert by_job["Projection"]["ProjectionType"] == "ALL"
    assert in_flight["IndexName"] == "gsi2"
    assert {(k["AttributeName"], k["KeyType"]) for k in in_flight["KeySchema"]} == {
        ("gsi2pk", "HASH"),
        ("gsi2sk", "RANGE"),
    }
    assert gsi["IndexName"] == "gsi1"
    assert {(k["AttributeName"], k["KeyType"]) for k in gsi["KeySchema"]} == {
        ("gsi1pk", "HASH"),
        ("gsi1sk", "RANGE"),
    }
    assert gsi["Projection"]["ProjectionType"] == "ALL"
    assert props["TimeToLiveSpecification"]["AttributeName"] == "expires_at"


def test_idempotency_table_matches_powertools() -> None:
    props = tables()["IdempotencyTable"]
    assert [(k["AttributeName"], k["KeyType"]) for k in props["KeySchema"]] == [("id", "HASH")]
    assert props["TimeToLiveSpecification"]["AttributeName"] == "expiration"


# ---------------------------------------------------------------- API gateway


def response_body(response_type: str) -> Any:
    return json.loads(gateway_responses()[response_type]["ResponseTemplates"]["application/json"])


@pytest.mark.parametrize("response_type", ["UNAUTHORIZED", "ACCESS_DENIED"])
def test_bad_key_answers_401_unauthorized(response_type: str) -> None:
    assert int(gateway_responses()[response_type]["StatusCode"]) == 401
    assert response_body(response_type) == {"error": "Unauthorized", "code": "UNAUTHORIZED"}


def test_other_gateway_responses() -> None:
    responses = gateway_responses()
    assert int(responses["THROTTLED"]["StatusCode"]) == 429
    assert response_body("THROTTLED")["code"] == "RATE_LIMITED"
    assert responses["THROTTLED"]["ResponseParameters"]["Headers"]["Retry-After"] == "'1'"
    assert int(responses["REQUEST_TOO_LARGE"]["StatusCode"]) == 413
    assert response_body("REQUEST_TOO_LARGE")["code"] == "PAYLOAD_TOO_LARGE"
    assert int(responses["UNSUPPORTED_MEDIA_TYPE"]["StatusCode"]) == 415
    assert response_body("UNSUPPORTED_MEDIA_TYPE")["code"] == "UNSUPPORTED_ENCODING"
    assert int(responses["MISSING_AUTHENTICATION_TOKEN"]["StatusCode"]) == 404
    assert response_body("MISSING_AUTHENTICATION_TOKEN") == {"error": "Not found", "code": "NOT_FOUND"}
    assert "StatusCode" not in responses["DEFAULT_4XX"], "DEFAULT_4XX keeps the original status"
    assert response_body("DEFAULT_5XX") == {"error": "Internal server error", "code": "INTERNAL_ERROR"}


def test_default_4xx_renders_to_our_error_shape() -> None:
    template = gateway_responses()["DEFAULT_4XX"]["ResponseTemplates"]["application/json"]
    message = 'Invalid "request" body'
    rendered = template.replace("$context.error.messageString", json.dumps(message)).replace(
        "$context.error.responseType", "BAD_REQUEST_BODY"
    )
    assert json.loads(rendered) == {"error": message, "code": "BAD_REQUEST_BODY"}


def test_gateway_responses_keep_to_the_local_stack_contract() -> None:
    for response_type, response in gateway_responses().items():
        assert set(response) <= {"StatusCode", "ResponseTemplates", "ResponseParameters"}, response_type
        assert set(response.get("ResponseParameters", {})) <= {"Headers"}, response_type
        assert set(response["ResponseTemplates"]) == {"application/json"}, response_type
        assert response["ResponseParameters"]["Headers"]["Access-Control-Allow-Origin"] == "'*'", response_type


def test_api_stage_settings() -> None:
    props = RESOURCES[API_LOGICAL_ID]["Properties"]
    assert props["StageName"] == {"Ref": "Stage"}
    assert props["TracingEnabled"] == TRACING_FOLLOWS_THE_PARAMETER
    (settings,) = props["MethodSettings"]
    rate = TEMPLATE["Parameters"][ref_target(settings["ThrottlingRateLimit"])]["Default"]
    burst = TEMPLATE["Parameters"][ref_target(settings["ThrottlingBurstLimit"])]["Default"]
    # The stage throttle is the outer guard: it must leave room for the largest plan's own budget.
    from batchops.models.plans import PLAN_LIMITS

    assert rate >= max(p.requests_per_second for p in PLAN_LIMITS.values())
    assert burst >= max(p.request_burst for p in PLAN_LIMITS.values()) and burst >= rate
    assert settings["MetricsEnabled"] is True
    access_log = json.loads(props["AccessLogSetting"]["Format"])
    assert access_log["requestId"] == "$context.requestId"
    assert access_log["workspace"] == "$context.authorizer.workspace_id"
    media_types = {str(t).replace("~1", "/") for t in props["BinaryMediaTypes"]}
    assert {"application/gzip", "application/x-gzip", "application/octet-stream"} <= media_types
    assert "*/*" not in media_types, "breaks SAM's MOCK CORS preflight"


# ---------------------------------------------------------------- monitoring and outputs


def alarms() -> list[dict[str, Any]]:
    return [r["Properties"] for r in RESOURCES.values() if r["Type"] == "AWS::CloudWatch::Alarm"]


def test_every_function_has_error_and_throttle_alarms() -> None:
    covered = {
        (ref_target(d["Value"]), a["MetricName"])
        for a in alarms()
        if a.get("Namespace") == "AWS/Lambda"
        for d in a.get("Dimensions", [])
        if d["Name"] == "FunctionName"
    }
    for function_id in FUNCTIONS:
        assert (function_id, "Errors") in covered, function_id
        assert (function_id, "Throttles") in covered, function_id


def test_dead_letter_queues_and_api_5xx_are_alarmed() -> None:
    dlq_alarms = {
        ref_target(d["Value"])
        for a in alarms()
        if a.get("Namespace") == "AWS/SQS" and a["MetricName"] == "ApproximateNumberOfMessagesVisible"
        for d in a["Dimensions"]
    }
    assert dead_letter_queues() <= dlq_alarms
    assert any(a.get("Namespace") == "AWS/ApiGateway" and a["MetricName"] == "5XXError" for a in alarms())
    for alarm in alarms():
        assert [ref_target(x) for x in alarm["AlarmActions"]] == ["AlarmTopic"]


def test_api_5xx_alarm_watches_this_api() -> None:
    (alarm,) = [a for a in alarms() if a.get("Namespace") == "AWS/ApiGateway"]
    dimensions = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
    assert dimensions["ApiName"] == RESOURCES[API_LOGICAL_ID]["Properties"]["Name"]
    assert dimensions["Stage"] == {"Ref": "Stage"}


def test_dashboard_is_json_and_shows_every_function() -> None:
    body = RESOURCES["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    names = set(re.findall(r"\$\{([^}]+)\}", body))
    known = set(RESOURCES) | set(TEMPLATE["Parameters"])
    assert {n for n in names if not n.startswith("AWS::") and n.split(".")[0] not in known} == set()
    assert set(FUNCTIONS) <= names
    assert json.loads(re.sub(r"\$\{[^}]+\}", "x", body))["widgets"]


def test_outputs() -> None:
    outputs = TEMPLATE["Outputs"]
    assert {
        "ApiUrl",
        "DomainTableName",
        "IdempotencyTableName",
        "WorkQueueUrl",
        "WorkDeadLetterQueueUrl",
    } <= set(outputs)
    assert outputs["ApiUrl"]["Value"] == {
        "Fn::Sub": "https://${BatchopsApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/${Stage}"
    }
