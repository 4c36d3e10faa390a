"""Load the SAM template into plain dataclasses and resolve the intrinsics the local stack needs.

Everything the local stack creates or runs comes from here, so local and cloud cannot drift:
physical names are the logical IDs (a FIFO queue gets the `.fifo` suffix SQS requires, a bucket
without `BucketName` is the logical ID lowercased, as S3 requires), the account is moto's default
123456789012 and the region us-east-1. Only the properties the stack reads are resolved, so an
unsupported intrinsic in, say, an alarm never stops a local run.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cfnlint.decode import cfn_yaml

from batchops_local.intrinsics import (
    ACCOUNT_ID,
    API_ID,
    REGION,
    Resolver,
    TemplateError,
    bucket_arn,
    function_arn,
    function_name_from_arn,
    is_intrinsic,
    queue_arn,
    queue_name,
    queue_url,
    state_machine_arn,
)

__all__ = [
    "ACCOUNT_ID",
    "API_ID",
    "REGION",
    "Api",
    "ApiEvent",
    "Authorizer",
    "Bucket",
    "CorsConfig",
    "Function",
    "GatewayResponseSpec",
    "Queue",
    "QueueNotification",
    "Route",
    "ScheduleEvent",
    "SqsEvent",
    "StateMachine",
    "Table",
    "Template",
    "TemplateError",
    "function_arn",
    "function_name_from_arn",
    "load_template",
    "state_machine_arn",
]

# What AWS names the stage when a template uses the implicit API without a StageName.
DEFAULT_STAGE = "Prod"
# SAM's default cache TTL for Lambda authorizers when Identity.ReauthorizeEvery is absent.
DEFAULT_REAUTHORIZE_EVERY = 300


@dataclass(frozen=True)
class ApiEvent:
    name: str
    path: str
    method: str
    # None means "no authorizer" (Auth.Authorizer: NONE, or no authorizer configured at all).
    authorizer: str | None


@dataclass(frozen=True)
class SqsEvent:
    name: str
    queue_arn: str
    batch_size: int
    batching_window_seconds: float
    report_batch_item_failures: bool
    enabled: bool


@dataclass(frozen=True)
class ScheduleEvent:
    name: str
    expression: str
    enabled: bool
    # EventBridge sends a target's fixed Input instead of the scheduled event when one is set.
    input: str | None


@dataclass(frozen=True)
class Function:
    logical_id: str
    code_dir: Path
    handler: str
    timeout: float
    memory_mb: int
    environment: dict[str, str]
    layer_dirs: tuple[Path, ...]
    api_events: tuple[ApiEvent, ...] = ()
    sqs_events: tuple[SqsEvent, ...] = ()
    schedule_events: tuple[ScheduleEvent, ...] = ()
    # ReservedConcurrentExecutions: the most instances Lambda runs at once (None: no reservation).
    reserved_concurrency: int | None = None

    @property
    def name(self) -> str:
        return self.logical_id

    @property
    def arn(self) -> str:
        return function_arn(self.logical_id)


@dataclass(frozen=True)
class Authorizer:
    name: str
    function_name: str
    payload_type: str  # "TOKEN" or "REQUEST", SAM's FunctionPayloadType
    identity_headers: tuple[str, ...]
    identity_query_strings: tuple[str, ...]
    reauthorize_every: int
    validation_expression: str | None = None


@dataclass(frozen=True)
class GatewayResponseSpec:
    status_code: int | None
    templates: dict[str, str]
    headers: dict[str, str]


@dataclass(frozen=True)
class CorsConfig:
    allow_origin: str
    allow_methods: str | None
    allow_headers: str | None
    max_age: str | None
    allow_credentials: bool


@dataclass(frozen=True)
class Api:
    logical_id: str
    stage: str
    default_authorizer: str | None
    authorizers: dict[str, Authorizer]
    gateway_responses: dict[str, GatewayResponseSpec]
    binary_media_types: tuple[str, ...]
    cors: CorsConfig | None


@dataclass(frozen=True)
class Route:
    path: str
    method: str
    function_name: str
    authorizer: str | None


@dataclass(frozen=True)
class Table:
    logical_id: str
    key_schema: list[dict[str, Any]]
    attribute_definitions: list[dict[str, Any]]
    global_secondary_indexes: list[dict[str, Any]]
    local_secondary_indexes: list[dict[str, Any]]
    ttl_attribute: str | None

    @property
    def name(self) -> str:
        return self.logical_id


@dataclass(frozen=True)
class Queue:
    logical_id: str
    fifo: bool
    attributes: dict[str, str]  # CreateQueue attributes other than the redrive policy
    dead_letter_arn: str | None
    max_receive_count: int | None
    visibility_timeout: int
    endpoint: str

    @property
    def name(self) -> str:
        return queue_name(self.logical_id, self.fifo)

    @property
    def arn(self) -> str:
        return queue_arn(self.name)

    @property
    def url(self) -> str:
        return queue_url(self.endpoint, self.name)


@dataclass(frozen=True)
class QueueNotification:
    """One of a bucket's `QueueConfigurations`: which events on which keys S3 sends to the queue."""

    events: tuple[str, ...]
    queue_arn: str
    prefix: str | None = None
    suffix: str | None = None


@dataclass(frozen=True)
class Bucket:
    logical_id: str
    name: str
    queue_notifications: tuple[QueueNotification, ...]
    cors_rules: list[dict[str, Any]]  # PutBucketCors CORSRules

    @property
    def arn(self) -> str:
        return bucket_arn(self.name)


@dataclass(frozen=True)
class StateMachine:
    logical_id: str
    definition: str
    type: str

    @property
    def name(self) -> str:
        return self.logical_id

    @property
    def arn(self) -> str:
        return state_machine_arn(self.logical_id)


@dataclass(frozen=True)
class Template:
    path: Path
    functions: dict[str, Function]
    api: Api
    routes: tuple[Route, ...]
    tables: dict[str, Table]
    queues: dict[str, Queue]
    buckets: dict[str, Bucket]
    state_machines: dict[str, StateMachine]
    parameters: dict[str, Any] = field(default_factory=dict)

    def values_of(self, variable: str) -> list[str]:
        """The distinct values functions give an environment variable, in template order (each
        function runs in its own sandbox with its own environment, so they may differ)."""
        values = (fn.environment[variable] for fn in self.functions.values() if variable in fn.environment)
        return list(dict.fromkeys(values))


# --- loading -------------------------------------------------------------------------------------


def _merge_globals(global_value: Any, local_value: Any) -> Any:
    """SAM's Globals rules: maps merge (local wins), lists concatenate (globals first),
    everything else - including intrinsic functions - is replaced by the local value."""
    if isinstance(global_value, dict) and isinstance(local_value, dict):
        if is_intrinsic(global_value) or is_intrinsic(local_value):
            return local_value
        merged = dict(global_value)
        for key, value in local_value.items():
            merged[key] = _merge_globals(global_value[key], value) if key in global_value else value
        return merged
    if isinstance(global_value, list) and isinstance(local_value, list):
        return [*global_value, *local_value]
    return local_value


def _properties(resource: Mapping[str, Any], globals_section: Any) -> dict[str, Any]:
    props = dict(resource.get("Properties") or {})
    return dict(_merge_globals(dict(globals_section or {}), props))


def _int(value: Any, where: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise TemplateError(f"{where}: expected an integer, got {value!r}") from exc


def _strip_quotes(value: str) -> str:
    """API Gateway mapping values are quoted string literals: "'*'" means *."""
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1]
    return value


def load_template(path: Path | str, aws_endpoint: str = "http://127.0.0.1:5000") -> Template:
    """Parse the SAM template at `path`; queue URLs point at `aws_endpoint` (moto's server)."""
    path = Path(path).resolve()
    try:
        document = cfn_yaml.load(str(path))
    except Exception as exc:  # cfn-lint raises its own parse errors and plain OSErrors
        raise TemplateError(f"cannot read {path}: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("Resources"), dict):
        raise TemplateError(f"{path}: not a CloudFormation/SAM template (no Resources)")
    return _Loader(path, document, aws_endpoint).load()


class _Loader:
    def __init__(self, path: Path, document: dict[str, Any], aws_endpoint: str) -> None:
        self.path = path
        self.base = path.parent
        self.doc = document
        self.r = Resolver(document, aws_endpoint)
        self.resources: dict[str, Any] = {str(k): v for k, v in document["Resources"].items() if isinstance(v, dict)}
        globals_section = document.get("Globals") or {}
        self.function_globals = globals_section.get("Function") or {}
        self.api_globals = globals_section.get("Api") or {}
        self.endpoint = aws_endpoint.rstrip("/")

    def of_type(self, *types: str) -> list[tuple[str, dict[str, Any]]]:
        return [
            (lid, res)
            for lid, res in self.resources.items()
            if res.get("Type") in types and self.r.resource_enabled(lid)
        ]

    def load(self) -> Template:
        api = self.api()
        functions = {lid: self.function(lid, res, api) for lid, res in self.of_type("AWS::Serverless::Function")}
        routes = tuple(
            Route(ev.path, ev.method, fn.name, ev.authorizer) for fn in functions.values() for ev in fn.api_events
        )
        seen: dict[tuple[str, str], str] = {}
        for route in routes:
            key = (route.path, route.method)
            if key in seen:
                raise TemplateError(
                    f"route {route.method} {route.path} is declared twice: by {seen[key]} and by {route.function_name}"
                )
            seen[key] = route.function_name
        queues = {lid: self.queue(lid, res) for lid, res in self.of_type("AWS::SQS::Queue")}
        return Template(
            path=self.path,
            functions=functions,
            api=api,
            routes=routes,
            tables={lid: self.table(lid, res) for lid, res in self.of_type("AWS::DynamoDB::Table")},
            queues=queues,
            # AWS::SQS::QueuePolicy is not read: moto's S3 notifies a queue without checking it.
            buckets={lid: self.bucket(lid, res, queues) for lid, res in self.of_type("AWS::S3::Bucket")},
            state_machines={
                lid: self.state_machine(lid, res) for lid, res in self.of_type("AWS::Serverless::StateMachine")
            },
            parameters={
                str(k): self.r.ref(str(k), "Parameters")
                for k, v in (self.doc.get("Parameters") or {}).items()
                if isinstance(v, dict) and "Default" in v
            },
        )

    # API -------------------------------------------------------------------------------------

    def api(self) -> Api:
        apis = self.of_type("AWS::Serverless::Api")
        if len(apis) > 1:
            names = ", ".join(lid for lid, _ in apis)
            raise TemplateError(f"the local gateway serves one REST API; the template has several: {names}")
        if apis:
            lid, res = apis[0]
            props = _properties(res, self.api_globals)
        else:  # SAM's implicit API, configured only through Globals.Api
            lid, props = "ServerlessRestApi", dict(self.api_globals)
        where = f"Resources.{lid}.Properties"
        stage = self.r.resolve_str(props.get("StageName", DEFAULT_STAGE), f"{where}.StageName")
        auth = self.r.resolve(props.get("Auth") or {}, f"{where}.Auth")
        authorizers = {
            str(name): self.authorizer(str(name), spec, f"{where}.Auth.Authorizers.{name}")
            for name, spec in (auth.get("Authorizers") or {}).items()
        }
        default_authorizer = auth.get("DefaultAuthorizer")
        if default_authorizer is not None and default_authorizer not in authorizers:
            raise TemplateError(f"{where}.Auth.DefaultAuthorizer: {default_authorizer!r} is not in Authorizers")
        responses = {
            str(kind): self.gateway_response(spec, f"{where}.GatewayResponses.{kind}")
            for kind, spec in (self.r.resolve(props.get("GatewayResponses") or {}, where) or {}).items()
        }
        binary = tuple(
            # SAM escapes "/" as "~1" in BinaryMediaTypes (a JSON-pointer habit); accept both.
            self.r.resolve_str(t, f"{where}.BinaryMediaTypes").replace("~1", "/")
            for t in props.get("BinaryMediaTypes") or []
        )
        return Api(
            lid,
            stage,
            default_authorizer,
            authorizers,
            responses,
            binary,
            self.cors(props.get("Cors"), where),
        )

    def authorizer(self, name: str, spec: Mapping[str, Any], where: str) -> Authorizer:
        if "FunctionArn" not in spec:
            raise TemplateError(f"{where}: only Lambda authorizers (FunctionArn) are emulated")
        identity = spec.get("Identity") or {}
        payload_type = str(spec.get("FunctionPayloadType", "TOKEN")).upper()
        if payload_type == "TOKEN":
            headers: tuple[str, ...] = (str(identity.get("Header", "Authorization")),)
            queries: tuple[str, ...] = ()
        else:
            headers = tuple(str(h) for h in identity.get("Headers") or [])
            queries = tuple(str(q) for q in identity.get("QueryStrings") or [])
        return Authorizer(
            name=name,
            function_name=function_name_from_arn(str(spec["FunctionArn"])),
            payload_type=payload_type,
            identity_headers=headers,
            identity_query_strings=queries,
            reauthorize_every=_int(identity.get("ReauthorizeEvery", DEFAULT_REAUTHORIZE_EVERY), where),
            validation_expression=identity.get("ValidationExpression"),
        )

    def gateway_response(self, spec: Mapping[str, Any], where: str) -> GatewayResponseSpec:
        status = spec.get("StatusCode")
        params = spec.get("ResponseParameters") or {}
        headers = {str(k): _strip_quotes(str(v)) for k, v in (params.get("Headers") or {}).items()}
        templates = {str(k): str(v) for k, v in (spec.get("ResponseTemplates") or {}).items()}
        return GatewayResponseSpec(_int(status, where) if status is not None else None, templates, headers)

    def cors(self, value: Any, where: str) -> CorsConfig | None:
        if value is None:
            return None
        cors = self.r.resolve(value, f"{where}.Cors")
        if isinstance(cors, str):
            return CorsConfig(_strip_quotes(cors), None, None, None, False)

        def opt(key: str) -> str | None:
            return _strip_quotes(str(cors[key])) if key in cors else None

        return CorsConfig(
            allow_origin=opt("AllowOrigin") or "*",
            allow_methods=opt("AllowMethods"),
            allow_headers=opt("AllowHeaders"),
            max_age=opt("MaxAge"),
            allow_credentials=bool(cors.get("AllowCredentials", False)),
        )

    # functions -------------------------------------------------------------------------------

    def function(self, lid: str, res: Mapping[str, Any], api: Api) -> Function:
        props = _properties(res, self.function_globals)
        where = f"Resources.{lid}.Properties"
        code_uri = self.r.resolve(props.get("CodeUri"), f"{where}.CodeUri")
        if not isinstance(code_uri, str):
            raise TemplateError(f"{where}.CodeUri: the local stack needs a local folder, got {code_uri!r}")
        code_dir = (self.base / code_uri).resolve()
        if not code_dir.is_dir():
            raise TemplateError(f"{where}.CodeUri: {code_dir} is not a folder")
        handler = self.r.resolve_str(props.get("Handler", ""), f"{where}.Handler")
        if "." not in handler:
            raise TemplateError(f"{where}.Handler: expected module.function, got {handler!r}")
        env_vars = self.r.resolve((props.get("Environment") or {}).get("Variables") or {}, f"{where}.Environment")
        environment = {str(k): self.r.resolve_str(v, f"{where}.Environment.Variables.{k}") for k, v in env_vars.items()}
        events = props.get("Events") or {}
        api_events: list[ApiEvent] = []
        sqs_events: list[SqsEvent] = []
        schedule_events: list[ScheduleEvent] = []
        for ev_name, ev in events.items():
            ev_where = f"Resources.{lid}.Properties.Events.{ev_name}"
            ev_type = ev.get("Type")
            ev_props = ev.get("Properties") or {}
            if ev_type == "Api":
                api_events.append(self.api_event(str(ev_name), ev_props, ev_where, api))
            elif ev_type == "SQS":
                sqs_events.append(self.sqs_event(str(ev_name), ev_props, ev_where))
            elif ev_type in ("Schedule", "ScheduleV2"):
                schedule_events.append(self.schedule_event(str(ev_name), ev_type, ev_props, ev_where))
        return Function(
            logical_id=lid,
            code_dir=code_dir,
            handler=handler,
            timeout=float(self.r.resolve(props.get("Timeout", 3), f"{where}.Timeout")),
            memory_mb=_int(self.r.resolve(props.get("MemorySize", 128), f"{where}.MemorySize"), where),
            environment=environment,
            layer_dirs=self.layer_dirs(props.get("Layers") or [], f"{where}.Layers"),
            api_events=tuple(api_events),
            sqs_events=tuple(sqs_events),
            schedule_events=tuple(schedule_events),
            reserved_concurrency=(
                None
                if (reserved := props.get("ReservedConcurrentExecutions")) is None
                else _int(self.r.resolve(reserved, f"{where}.ReservedConcurrentExecutions"), where)
            ),
        )

    def layer_dirs(self, layers: list[Any], where: str) -> tuple[Path, ...]:
        """Folders of the template's own layers, so a handler imports the layer as on Lambda."""
        dirs: list[Path] = []
        for layer in layers:
            if isinstance(layer, dict) and set(layer) == {"Ref"} and str(layer["Ref"]) in self.resources:
                res = self.resources[str(layer["Ref"])]
                uri = (res.get("Properties") or {}).get("ContentUri")
                if isinstance(uri, str) and (self.base / uri).is_dir():
                    root = (self.base / uri).resolve()
                    # A python3.x-built layer keeps its packages under python/ once built;
                    # the source folder holds them at the top.
                    dirs.extend(p for p in (root / "python", root) if p.is_dir())
        return tuple(dirs)

    def api_event(self, name: str, props: Mapping[str, Any], where: str, api: Api) -> ApiEvent:
        path = self.r.resolve_str(props.get("Path", ""), f"{where}.Path")
        method = self.r.resolve_str(props.get("Method", ""), f"{where}.Method").upper()
        if not path.startswith("/") or not method:
            raise TemplateError(f"{where}: an Api event needs Path (starting with /) and Method")
        rest_api = props.get("RestApiId")
        if rest_api is not None and not (isinstance(rest_api, dict) and rest_api.get("Ref") == api.logical_id):
            raise TemplateError(f"{where}.RestApiId: must be !Ref {api.logical_id}")
        auth = self.r.resolve(props.get("Auth") or {}, f"{where}.Auth")
        chosen = auth.get("Authorizer", api.default_authorizer)
        if chosen == "NONE":
            chosen = None
        if chosen is not None and chosen not in api.authorizers:
            raise TemplateError(f"{where}.Auth.Authorizer: {chosen!r} is not an authorizer of {api.logical_id}")
        return ApiEvent(name, path, "ANY" if method in ("ANY", "X-AMAZON-APIGATEWAY-ANY-METHOD") else method, chosen)

    def sqs_event(self, name: str, props: Mapping[str, Any], where: str) -> SqsEvent:
        response_types = self.r.resolve(props.get("FunctionResponseTypes") or [], where)
        return SqsEvent(
            name=name,
            queue_arn=self.r.resolve_str(props.get("Queue"), f"{where}.Queue"),
            batch_size=_int(self.r.resolve(props.get("BatchSize", 10), where), f"{where}.BatchSize"),
            batching_window_seconds=float(self.r.resolve(props.get("MaximumBatchingWindowInSeconds", 0), where)),
            report_batch_item_failures="ReportBatchItemFailures" in response_types,
            enabled=bool(self.r.resolve(props.get("Enabled", True), where)),
        )

    def schedule_event(self, name: str, ev_type: str, props: Mapping[str, Any], where: str) -> ScheduleEvent:
        if ev_type == "Schedule":
            expression = self.r.resolve_str(props.get("Schedule", ""), f"{where}.Schedule")
            enabled = bool(self.r.resolve(props.get("Enabled", True), where))
            if "State" in props:
                enabled = self.r.resolve_str(props["State"], where).upper() == "ENABLED"
        else:
            expression = self.r.resolve_str(props.get("ScheduleExpression", ""), f"{where}.ScheduleExpression")
            enabled = self.r.resolve_str(props.get("State", "ENABLED"), where).upper() == "ENABLED"
        raw_input = props.get("Input")
        return ScheduleEvent(
            name, expression, enabled, self.r.resolve_str(raw_input, where) if raw_input is not None else None
        )

    # data ------------------------------------------------------------------------------------

    def table(self, lid: str, res: Mapping[str, Any]) -> Table:
        where = f"Resources.{lid}.Properties"
        props = self.r.resolve(res.get("Properties") or {}, where)
        if not props.get("KeySchema"):
            raise TemplateError(f"{where}.KeySchema is required")
        ttl = props.get("TimeToLiveSpecification") or {}
        return Table(
            logical_id=lid,
            key_schema=list(props["KeySchema"]),
            attribute_definitions=list(props.get("AttributeDefinitions") or []),
            global_secondary_indexes=list(props.get("GlobalSecondaryIndexes") or []),
            local_secondary_indexes=list(props.get("LocalSecondaryIndexes") or []),
            ttl_attribute=str(ttl["AttributeName"]) if ttl.get("Enabled") and ttl.get("AttributeName") else None,
        )

    def queue(self, lid: str, res: Mapping[str, Any]) -> Queue:
        where = f"Resources.{lid}.Properties"
        props = res.get("Properties") or {}
        fifo = bool(self.r.resolve(props.get("FifoQueue", False), where))
        attributes: dict[str, str] = {}
        for key in (
            "VisibilityTimeout",
            "MessageRetentionPeriod",
            "DelaySeconds",
            "MaximumMessageSize",
            "ReceiveMessageWaitTimeSeconds",
            "ContentBasedDeduplication",
        ):
            if key in props:
                attributes[key] = self.r.resolve_str(props[key], f"{where}.{key}").lower()
        if fifo:
            attributes["FifoQueue"] = "true"
        redrive = self.r.resolve(props.get("RedrivePolicy"), f"{where}.RedrivePolicy")
        if isinstance(redrive, str):
            redrive = json.loads(redrive)
        dlq_arn = str(redrive["deadLetterTargetArn"]) if redrive else None
        max_receive = _int(redrive["maxReceiveCount"], f"{where}.RedrivePolicy") if redrive else None
        visibility = _int(attributes.get("VisibilityTimeout", 30), f"{where}.VisibilityTimeout")
        return Queue(lid, fifo, attributes, dlq_arn, max_receive, visibility, self.endpoint)

    def bucket(self, lid: str, res: Mapping[str, Any], queues: Mapping[str, Queue]) -> Bucket:
        # LifecycleConfiguration, PublicAccessBlockConfiguration and OwnershipControls are not
        # read: moto stores them but never expires an object, blocks public access or refuses an
        # ACL, so applying them would only pretend. BucketEncryption would only make moto echo the
        # algorithm in object headers, which nothing here reads.
        where = f"Resources.{lid}.Properties"
        props = res.get("Properties") or {}
        return Bucket(
            logical_id=lid,
            name=self.r.bucket_name(lid),
            queue_notifications=self.queue_notifications(
                props.get("NotificationConfiguration"), f"{where}.NotificationConfiguration", queues
            ),
            cors_rules=self.cors_rules(props.get("CorsConfiguration"), f"{where}.CorsConfiguration"),
        )

    def queue_notifications(self, value: Any, where: str, queues: Mapping[str, Queue]) -> tuple[QueueNotification, ...]:
        config = self.r.resolve(value or {}, where)
        for key in ("LambdaConfigurations", "TopicConfigurations"):
            if config.get(key):
                raise TemplateError(f"{where}.{key}: only QueueConfigurations are emulated")
        if (config.get("EventBridgeConfiguration") or {}).get("EventBridgeEnabled"):
            raise TemplateError(f"{where}.EventBridgeConfiguration: only QueueConfigurations are emulated")
        queue_arns = {q.arn for q in queues.values()}
        notifications: list[QueueNotification] = []
        for i, entry in enumerate(config.get("QueueConfigurations") or []):
            entry_where = f"{where}.QueueConfigurations[{i}]"
            queue = str(entry.get("Queue", ""))
            # moto drops a notification to a missing queue without a word; say so at start instead.
            if queue not in queue_arns:
                raise TemplateError(f"{entry_where}.Queue: {queue!r} is not the ARN of a queue in the template")
            event = entry.get("Event")
            if not isinstance(event, str) or not event.startswith("s3:"):
                raise TemplateError(f"{entry_where}.Event: expected an S3 event name (s3:...), got {event!r}")
            rules: dict[str, str] = {}
            rules_where = f"{entry_where}.Filter.S3Key.Rules"
            for j, rule in enumerate(((entry.get("Filter") or {}).get("S3Key") or {}).get("Rules") or []):
                # moto compares the names case-sensitively with "prefix"/"suffix": a "Prefix"
                # rule would be ignored and every key notified.
                name = str(rule.get("Name", "")).lower()
                if name not in ("prefix", "suffix"):
                    raise TemplateError(f"{rules_where}[{j}].Name: expected prefix or suffix, got {rule.get('Name')!r}")
                if name in rules:
                    raise TemplateError(f"{rules_where}[{j}]: a second {name} rule (S3 allows one)")
                rules[name] = str(rule.get("Value", ""))
            notifications.append(QueueNotification((event,), queue, rules.get("prefix"), rules.get("suffix")))
        return tuple(notifications)

    def cors_rules(self, value: Any, where: str) -> list[dict[str, Any]]:
        """CloudFormation's CorsRules in the shape PutBucketCors takes (its names differ)."""
        names = {
            "AllowedHeaders": "AllowedHeaders",
            "AllowedMethods": "AllowedMethods",
            "AllowedOrigins": "AllowedOrigins",
            "ExposedHeaders": "ExposeHeaders",
            "Id": "ID",
            "MaxAge": "MaxAgeSeconds",
        }
        rules: list[dict[str, Any]] = []
        for i, rule in enumerate(self.r.resolve(value or {}, where).get("CorsRules") or []):
            rule_where = f"{where}.CorsRules[{i}]"
            if not rule.get("AllowedMethods") or not rule.get("AllowedOrigins"):
                raise TemplateError(f"{rule_where}: AllowedMethods and AllowedOrigins are required")
            api_rule: dict[str, Any] = {}
            for key, item in rule.items():
                if key not in names:
                    raise TemplateError(f"{rule_where}.{key}: not a CORS rule property")
                if key == "MaxAge":
                    api_rule[names[key]] = _int(item, f"{rule_where}.MaxAge")
                else:
                    api_rule[names[key]] = [str(v) for v in item] if isinstance(item, list) else str(item)
            rules.append(api_rule)
        return rules

    def state_machine(self, lid: str, res: Mapping[str, Any]) -> StateMachine:
        where = f"Resources.{lid}.Properties"
        props = res.get("Properties") or {}
        if "DefinitionUri" in props:
            uri = self.r.resolve(props["DefinitionUri"], f"{where}.DefinitionUri")
            if not isinstance(uri, str):
                raise TemplateError(f"{where}.DefinitionUri: the local stack needs a local file, got {uri!r}")
            try:
                definition = (self.base / uri).read_text(encoding="utf-8")
            except OSError as exc:
                raise TemplateError(f"{where}.DefinitionUri: {exc}") from exc
        elif "Definition" in props:
            definition = json.dumps(self.r.resolve(props["Definition"], f"{where}.Definition"))
        else:
            raise TemplateError(f"{where}: needs DefinitionUri or Definition")
        substitutions = self.r.resolve(props.get("DefinitionSubstitutions") or {}, f"{where}.DefinitionSubstitutions")
        for key, value in substitutions.items():
            text = value if isinstance(value, str) else json.dumps(value)
            definition = definition.replace("${" + str(key) + "}", text)
        try:
            json.loads(definition)
        except ValueError as exc:
            raise TemplateError(f"{where}: the definition is not valid JSON after substitution: {exc}") from exc
        sm_type = self.r.resolve_str(props.get("Type", "STANDARD"), f"{where}.Type").upper()
        return StateMachine(lid, definition, sm_type)
