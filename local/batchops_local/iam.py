"""Each function's IAM role as `sam deploy` creates it, and AWS's rules for judging a request.

Roles come from AWS's own SAM transform (`sam_transform.py`, run under the SAM CLI's interpreter):
the policy templates (`DynamoDBCrudPolicy`, `SQSSendMessagePolicy`, ...), inline statements,
customer managed policies (`!Ref SomePolicy`) and the AWS managed policies SAM attaches
(`AWSLambdaBasicExecutionRole`, `AWSXrayWriteOnlyAccess`, `AWSLambdaSQSQueueExecutionRole`; their
documents come from moto's copy of AWS's managed policies). Intrinsics resolve to the local names.

Evaluation follows AWS's identity-policy logic: an explicit Deny wins, then any Allow, else the
request is implicitly denied. moto's own IAM enforcement cannot stand in: it authorizes DynamoDB
calls against the resource "*" (so every table-scoped Allow would fail) and evaluates no condition
but StringEquals, while the template scopes writes with `ForAllValues:StringLike` on
`dynamodb:LeadingKeys` (moto 5.2.5, `moto/iam/access_control.py`). The condition keys the local
stack can supply are listed in `SUPPORTED_CONDITION_KEYS`; a role that uses another key, or an
operator not implemented here, stops the start instead of being judged wrongly.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import os
import re
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from batchops_local.intrinsics import ACCOUNT_ID, Resolver, TemplateError, managed_policy_arn, role_arn

# Condition keys the request mapping (`aws_requests.py`) fills in, lower case as IAM compares them.
SUPPORTED_CONDITION_KEYS = frozenset({"dynamodb:leadingkeys"})
_POSITIVE = {
    "StringEquals",
    "StringEqualsIgnoreCase",
    "StringLike",
    "ArnEquals",
    "ArnLike",
    "Bool",
}
_NEGATED = {"StringNotEquals", "StringNotEqualsIgnoreCase", "StringNotLike", "ArnNotEquals", "ArnNotLike"}
SUPPORTED_OPERATORS = frozenset(_POSITIVE | _NEGATED | {"Null"})
SAM_TRANSFORM = Path(__file__).with_name("sam_transform.py")
REPO_ROOT = Path(__file__).resolve().parents[2]
# The SAM CLI's environment (Makefile: SAM_VENV), which carries aws-sam-translator.
DEFAULT_SAM_PYTHON = REPO_ROOT / ".venv-sam" / "bin" / "python"


class Effect(Enum):
    ALLOW = "Allow"
    DENY = "Deny"


@dataclass(frozen=True)
class AccessRequest:
    """One authorization AWS makes for a call: a TransactWriteItems of three items is three."""

    action: str  # "dynamodb:PutItem"
    resource: str  # an ARN, or "*" for actions without resource-level permissions
    context: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # lower-case condition keys


@dataclass(frozen=True)
class Condition:
    operator: str  # without qualifier or IfExists: "StringLike"
    qualifier: str  # "", "ForAllValues" or "ForAnyValue"
    if_exists: bool
    key: str  # lower case
    values: tuple[str, ...]

    def holds(self, context: Mapping[str, tuple[str, ...]]) -> bool:
        present = context.get(self.key) or ()
        if self.operator == "Null":
            # Null: true means the key must be absent, false that it must be present.
            return any((not present) == (value.lower() == "true") for value in self.values)
        negated = self.operator in _NEGATED
        if self.qualifier == "ForAllValues":
            return all(self._single(value, negated) for value in present)  # an empty set: true
        if self.qualifier == "ForAnyValue":
            return any(self._single(value, negated) for value in present)  # an empty set: false
        if not present:
            # AWS: a missing key does not match, except with IfExists or a negated operator.
            return self.if_exists or negated
        if negated:
            return all(self._single(value, negated) for value in present)
        return any(self._single(value, negated) for value in present)

    def _single(self, actual: str, negated: bool) -> bool:
        matched = any(self._matches(expected, actual) for expected in self.values)
        return not matched if negated else matched

    def _matches(self, expected: str, actual: str) -> bool:
        base = self.operator.replace("Not", "")
        if base == "StringEquals":
            return expected == actual
        if base == "StringEqualsIgnoreCase":
            return expected.lower() == actual.lower()
        if base == "Bool":
            return expected.lower() == actual.lower()
        # StringLike and the Arn operators take * and ? wildcards, case-sensitively.
        return glob_matches(expected, actual)


@dataclass(frozen=True)
class Statement:
    effect: Effect
    actions: tuple[str, ...]
    not_action: bool
    resources: tuple[str, ...]
    not_resource: bool
    conditions: tuple[Condition, ...]

    def applies(self, request: AccessRequest) -> bool:
        action_listed = any(glob_matches(pattern, request.action, ignore_case=True) for pattern in self.actions)
        if action_listed == self.not_action:
            return False
        resource_listed = any(glob_matches(pattern, request.resource) for pattern in self.resources)
        if resource_listed == self.not_resource:
            return False
        return all(condition.holds(request.context) for condition in self.conditions)


@dataclass(frozen=True)
class Policy:
    name: str
    statements: tuple[Statement, ...]


class Decision(Enum):
    ALLOWED = "allowed"
    IMPLICIT_DENY = "no identity-based policy allows"
    EXPLICIT_DENY = "an explicit deny in an identity-based policy"


def decide(policies: Iterable[Policy], request: AccessRequest) -> Decision:
    allowed = False
    for policy in policies:
        for statement in policy.statements:
            if statement.applies(request):
                if statement.effect is Effect.DENY:
                    return Decision.EXPLICIT_DENY
                allowed = True
    return Decision.ALLOWED if allowed else Decision.IMPLICIT_DENY


@functools.lru_cache(maxsize=4096)
def _glob(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def glob_matches(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """IAM's wildcards: `*` any run of characters (across `:` and `/`), `?` one character."""
    return _glob(pattern, ignore_case).fullmatch(value) is not None


# --- parsing policy documents -------------------------------------------------------------------


def _strings(value: Any, where: str) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(item, str) for item in items):
        raise TemplateError(f"{where}: expected strings, got {value!r}")
    for item in items:
        if "${" in item:
            raise TemplateError(f"{where}: policy variables ({item!r}) are not evaluated by the local stack")
    return tuple(items)


def parse_policy(name: str, document: Mapping[str, Any], where: str) -> Policy:
    raw = document.get("Statement")
    statements = raw if isinstance(raw, list) else [raw]
    return Policy(name, tuple(_statement(s, f"{where}.Statement[{i}]") for i, s in enumerate(statements)))


def _statement(raw: Any, where: str) -> Statement:
    if not isinstance(raw, dict):
        raise TemplateError(f"{where}: a statement must be an object")
    effect = Effect(raw.get("Effect"))
    if "Principal" in raw or "NotPrincipal" in raw:
        raise TemplateError(f"{where}: an identity policy has no Principal")
    not_action = "NotAction" in raw
    not_resource = "NotResource" in raw
    actions = _strings(raw["NotAction" if not_action else "Action"], f"{where}.Action")
    resources = _strings(raw.get("NotResource" if not_resource else "Resource", "*"), f"{where}.Resource")
    conditions: list[Condition] = []
    for operator_text, keys in (raw.get("Condition") or {}).items():
        qualifier, _, operator = str(operator_text).rpartition(":")
        if qualifier not in ("", "ForAllValues", "ForAnyValue"):
            raise TemplateError(f"{where}.Condition: unknown qualifier {qualifier!r}")
        if_exists = operator.endswith("IfExists")
        operator = operator.removesuffix("IfExists")
        if operator not in SUPPORTED_OPERATORS:
            raise TemplateError(f"{where}.Condition: the local stack does not evaluate {operator_text}")
        for key, values in dict(keys).items():
            if str(key).lower() not in SUPPORTED_CONDITION_KEYS:
                raise TemplateError(
                    f"{where}.Condition: the local stack cannot supply the condition key {key!r} "
                    f"(it supplies {', '.join(sorted(SUPPORTED_CONDITION_KEYS))})"
                )
            conditions.append(
                Condition(operator, qualifier, if_exists, str(key).lower(), _strings(values, f"{where}.Condition"))
            )
    return Statement(effect, actions, not_action, resources, not_resource, tuple(conditions))


# --- roles from the expanded template ------------------------------------------------------------


@dataclass(frozen=True)
class Role:
    """A function's execution role and the temporary credentials Lambda would hand its code."""

    function: str  # the function's logical id (its local name)
    name: str  # the role's logical id (its local name)
    policies: tuple[Policy, ...]

    @property
    def arn(self) -> str:
        return role_arn(self.name)

    @property
    def session_arn(self) -> str:
        """The principal AWS names in an AccessDenied message for Lambda's role session."""
        return f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/{self.name}/{self.function}"

    @property
    def access_key_id(self) -> str:
        # Lambda's credentials are an STS session (ASIA...); stable per role, so logs can be read.
        digest = base64.b32encode(hashlib.sha256(self.name.encode()).digest()).decode()
        return "ASIA" + digest[:16]

    @property
    def secret_access_key(self) -> str:
        return hashlib.sha256(f"secret:{self.name}".encode()).hexdigest()[:40]

    @property
    def session_token(self) -> str:
        return f"local-session-{self.name}"

    def environment(self) -> dict[str, str]:
        """The credential variables the Lambda runtime sets for the function's code."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_SESSION_TOKEN": self.session_token,
        }

    def decide(self, request: AccessRequest) -> Decision:
        return decide(self.policies, request)


def expand_template(template_path: Path, sam_python: Path | None = None) -> dict[str, Any]:
    """The template as CloudFormation, after AWS's SAM transform (see sam_transform.py)."""
    python = sam_python or Path(os.environ.get("BATCHOPS_LOCAL_SAM_PYTHON") or DEFAULT_SAM_PYTHON)
    if not python.exists():
        raise TemplateError(
            f"{python} is missing: the local stack expands IAM roles with the SAM CLI's aws-sam-translator "
            "(`make run` installs it; or set BATCHOPS_LOCAL_SAM_PYTHON to a Python that has aws-sam-translator)"
        )
    done = subprocess.run(  # noqa: S603 - our own script on the template path we were given
        [str(python), str(SAM_TRANSFORM), str(template_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise TemplateError(f"SAM transform of {template_path} failed: {done.stderr.strip()[-2000:]}")
    expanded: dict[str, Any] = json.loads(done.stdout)
    return expanded


@functools.lru_cache(maxsize=1)
def _aws_managed_policies() -> dict[str, Any]:
    from moto.iam.aws_managed_policies import aws_managed_policies_data

    data: dict[str, Any] = json.loads(aws_managed_policies_data)
    return data


def aws_managed_policy(arn: str, where: str) -> Policy:
    name = arn.rsplit("/", 1)[-1]
    entry = _aws_managed_policies().get(name)
    if entry is None:
        raise TemplateError(f"{where}: unknown AWS managed policy {arn}")
    return parse_policy(name, entry["Document"], f"{where}({name})")


def function_roles(expanded: Mapping[str, Any], aws_endpoint: str) -> dict[str, Role]:
    """Each Lambda function's role, by function logical id, with intrinsics resolved locally."""
    resources: Mapping[str, Any] = expanded.get("Resources") or {}
    resolver = Resolver(expanded, aws_endpoint)
    roles: dict[str, Role] = {}
    for function_id, resource in resources.items():
        if resource.get("Type") != "AWS::Lambda::Function" or not resolver.resource_enabled(function_id):
            continue
        role_ref = (resource.get("Properties") or {}).get("Role")
        role_id = _role_logical_id(role_ref)
        where = f"Resources.{role_id}"
        if role_id is None or (resources.get(role_id) or {}).get("Type") != "AWS::IAM::Role":
            raise TemplateError(
                f"Resources.{function_id}.Properties.Role: the local stack needs the role in the template "
                f"(!GetAtt SomeRole.Arn), got {role_ref!r}"
            )
        properties = resolver.resolve((resources[role_id] or {}).get("Properties") or {}, f"{where}.Properties")
        policies: list[Policy] = []
        for index, inline in enumerate(properties.get("Policies") or []):
            name = str(inline.get("PolicyName", f"{role_id}Policy{index}"))
            policies.append(parse_policy(name, inline["PolicyDocument"], f"{where}.Policies[{index}]"))
        for index, arn in enumerate(properties.get("ManagedPolicyArns") or []):
            policies.append(_managed_policy(str(arn), resources, resolver, f"{where}.ManagedPolicyArns[{index}]"))
        roles[function_id] = Role(function_id, role_id, tuple(policies))
    return roles


def _role_logical_id(role_ref: Any) -> str | None:
    if isinstance(role_ref, dict) and "Fn::GetAtt" in role_ref:
        target = role_ref["Fn::GetAtt"]
        parts = target.split(".", 1) if isinstance(target, str) else list(target)
        if len(parts) == 2 and parts[1] == "Arn":
            return str(parts[0])
    return None


def _managed_policy(arn: str, resources: Mapping[str, Any], resolver: Resolver, where: str) -> Policy:
    if arn.startswith("arn:aws:iam::aws:policy/"):
        return aws_managed_policy(arn, where)
    for logical_id, resource in resources.items():
        if resource.get("Type") == "AWS::IAM::ManagedPolicy" and managed_policy_arn(logical_id) == arn:
            document = resolver.resolve((resource.get("Properties") or {}).get("PolicyDocument"), where)
            return parse_policy(logical_id, document, f"Resources.{logical_id}.Properties.PolicyDocument")
    raise TemplateError(f"{where}: {arn} is neither an AWS managed policy nor a policy of the template")


def load_roles(template_path: Path, aws_endpoint: str, sam_python: Path | None = None) -> dict[str, Role]:
    return function_roles(expand_template(template_path, sam_python), aws_endpoint)


def describe(request: AccessRequest, role: Role, decision: Decision) -> str:
    """AWS's AccessDenied wording, naming the role session, the action and the resource."""
    return (
        f"User: {role.session_arn} is not authorized to perform: {request.action} on resource: "
        f"{request.resource} because {decision.value} the {request.action} action"
        if decision is Decision.IMPLICIT_DENY
        else f"User: {role.session_arn} is not authorized to perform: {request.action} on resource: "
        f"{request.resource} with {decision.value}"
    )


def by_access_key(roles: Iterable[Role]) -> dict[str, Role]:
    return {role.access_key_id: role for role in roles}
