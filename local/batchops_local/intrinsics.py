"""CloudFormation intrinsic functions, evaluated against the local stack's names.

Physical names are the logical IDs (a FIFO queue gets the `.fifo` suffix SQS requires, a bucket
without `BucketName` is lowercased because S3 names are lowercase DNS names), the account is moto's
default 123456789012 and the region us-east-1, so a `!Ref`/`!GetAtt`/`!Sub` resolves to exactly the
name the local stack creates.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
API_ID = "local"


class TemplateError(Exception):
    """The template cannot be run locally; the message says where and why."""


def function_arn(name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}"


def state_machine_arn(name: str) -> str:
    return f"arn:aws:states:{REGION}:{ACCOUNT_ID}:stateMachine:{name}"


def queue_name(logical_id: str, fifo: bool) -> str:
    return f"{logical_id}.fifo" if fifo else logical_id


def queue_arn(name: str) -> str:
    return f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}"


def queue_url(endpoint: str, name: str) -> str:
    # moto's server builds queue URLs from the host it was called on: http://127.0.0.1:P/<account>/<name>
    return f"{endpoint.rstrip('/')}/{ACCOUNT_ID}/{name}"


def managed_policy_arn(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT_ID}:policy/{name}"


def role_arn(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT_ID}:role/{name}"


def bucket_arn(name: str) -> str:
    # Bucket ARNs carry neither region nor account: bucket names are global.
    return f"arn:aws:s3:::{name}"


# S3's rules for new buckets (3-63 characters; lowercase letters, digits, dots and hyphens; a letter
# or digit at each end), checked here because moto would fail later with a less helpful message.
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def function_name_from_arn(arn_or_name: str) -> str:
    """`arn:aws:lambda:r:a:function:Name[:qualifier]` or a plain name -> `Name`."""
    if arn_or_name.startswith("arn:"):
        parts = arn_or_name.split(":")
        if len(parts) >= 7 and parts[5] == "function":
            return parts[6]
        raise TemplateError(f"not a Lambda function ARN: {arn_or_name}")
    return arn_or_name


class _NoValue:
    """`!Ref AWS::NoValue`: the surrounding key or list item disappears."""


NO_VALUE = _NoValue()
_SUB_VAR = re.compile(r"\$\{([^}]*)\}")


def is_intrinsic(value: Any) -> bool:
    if not isinstance(value, dict) or len(value) != 1:
        return False
    key = str(next(iter(value)))
    return key in ("Ref", "Condition") or key.startswith("Fn::")


class Resolver:
    """Evaluates Ref, GetAtt, Sub, Join, Select, If and conditions against local names."""

    def __init__(self, document: Mapping[str, Any], aws_endpoint: str) -> None:
        self._doc = document
        self._resources: Mapping[str, Any] = document.get("Resources") or {}
        self._parameters: Mapping[str, Any] = document.get("Parameters") or {}
        self._conditions: Mapping[str, Any] = document.get("Conditions") or {}
        self._condition_values: dict[str, bool] = {}
        self._endpoint = aws_endpoint.rstrip("/")
        self.stack_name = "batchops-local"

    # public API

    def resolve(self, value: Any, where: str) -> Any:
        if isinstance(value, dict):
            if is_intrinsic(value):
                key, arg = next(iter(value.items()))
                return self._intrinsic(str(key), arg, where)
            out: dict[str, Any] = {}
            for key, item in value.items():
                resolved = self.resolve(item, f"{where}.{key}")
                if resolved is not NO_VALUE:
                    out[str(key)] = resolved
            return out
        if isinstance(value, list):
            items = [self.resolve(item, f"{where}[{i}]") for i, item in enumerate(value)]
            return [item for item in items if item is not NO_VALUE]
        if isinstance(value, str):
            return str(value)  # drop cfn-lint's str_node subclass
        return value

    def resolve_str(self, value: Any, where: str) -> str:
        resolved = self.resolve(value, where)
        if isinstance(resolved, bool):
            return "true" if resolved else "false"
        if isinstance(resolved, int | float | str):
            return str(resolved)
        raise TemplateError(f"{where}: expected a string, got {resolved!r}")

    def condition(self, name: str, where: str) -> bool:
        if name not in self._condition_values:
            if name not in self._conditions:
                raise TemplateError(f"{where}: unknown condition {name!r}")
            self._condition_values[name] = bool(self.resolve(self._conditions[name], f"Conditions.{name}"))
        return self._condition_values[name]

    def resource_enabled(self, logical_id: str) -> bool:
        cond = (self._resources.get(logical_id) or {}).get("Condition")
        return cond is None or self.condition(str(cond), f"Resources.{logical_id}.Condition")

    # Ref / GetAtt values (also used to build the dataclasses)

    def ref(self, name: str, where: str) -> Any:
        pseudo = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::StackName": self.stack_name,
            "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT_ID}:stack/{self.stack_name}/local",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::Partition": "aws",
            "AWS::NotificationARNs": [],
        }
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in pseudo:
            return pseudo[name]
        if name in self._parameters:
            param = self._parameters[name] or {}
            if "Default" not in param:
                raise TemplateError(f"{where}: parameter {name} has no Default to use locally")
            return self.resolve(param["Default"], f"Parameters.{name}.Default")
        if name in self._resources:
            rtype = self._resources[name].get("Type")
            if rtype == "AWS::SQS::Queue":
                return queue_url(self._endpoint, self._queue_name(name))
            if rtype == "AWS::S3::Bucket":
                return self.bucket_name(name)
            if rtype in ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine"):
                return state_machine_arn(name)
            if rtype in ("AWS::Serverless::Api", "AWS::ApiGateway::RestApi"):
                return API_ID
            if rtype == "AWS::IAM::ManagedPolicy":
                return managed_policy_arn(name)
            if rtype in ("AWS::Serverless::LayerVersion", "AWS::Lambda::LayerVersion"):
                return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:layer:{name}:1"
            # Tables, functions and everything else: the physical name is the logical ID.
            return name
        raise TemplateError(f"{where}: !Ref to unknown name {name!r}")

    def get_att(self, name: str, attribute: str, where: str) -> Any:
        if name not in self._resources:
            raise TemplateError(f"{where}: !GetAtt of unknown resource {name!r}")
        rtype = self._resources[name].get("Type")
        value: str | None = None
        if rtype == "AWS::SQS::Queue":
            qname = self._queue_name(name)
            value = {
                "Arn": queue_arn(qname),
                "QueueName": qname,
                "QueueUrl": queue_url(self._endpoint, qname),
            }.get(attribute)
        elif rtype == "AWS::DynamoDB::Table":
            table_arn = f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{name}"
            value = {"Arn": table_arn, "StreamArn": f"{table_arn}/stream/local"}.get(attribute)
        elif rtype == "AWS::S3::Bucket":
            # Not DomainName and the like: they name AWS's S3 hosts, which a local run must not reach.
            value = {"Arn": bucket_arn(self.bucket_name(name))}.get(attribute)
        elif rtype in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
            value = {"Arn": function_arn(name)}.get(attribute)
        elif rtype in ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine"):
            value = {"Arn": state_machine_arn(name), "Name": name}.get(attribute)
        elif rtype in ("AWS::Serverless::Api", "AWS::ApiGateway::RestApi"):
            value = {"RootResourceId": "root"}.get(attribute)
        elif rtype == "AWS::IAM::Role":
            value = {"Arn": role_arn(name)}.get(attribute)
        if value is None:
            raise TemplateError(f"{where}: !GetAtt {name}.{attribute} ({rtype}) is not emulated locally")
        return value

    def bucket_name(self, logical_id: str) -> str:
        """`BucketName` if the template sets one, else the logical ID lowercased."""
        where = f"Resources.{logical_id}.Properties.BucketName"
        props = self._resources[logical_id].get("Properties") or {}
        if "BucketName" in props:
            name = self.resolve_str(props["BucketName"], where)
        else:
            name = logical_id.lower()
            where = f"Resources.{logical_id}"
        if not _BUCKET_NAME.fullmatch(name) or ".." in name:
            raise TemplateError(f"{where}: {name!r} is not a valid S3 bucket name (set a valid BucketName)")
        return name

    # internals

    def _queue_name(self, name: str) -> str:
        props = self._resources[name].get("Properties") or {}
        fifo = bool(self.resolve(props.get("FifoQueue", False), f"Resources.{name}.Properties.FifoQueue"))
        return queue_name(name, fifo)

    def _intrinsic(self, key: str, arg: Any, where: str) -> Any:
        if key == "Ref":
            return self.ref(str(arg), where)
        if key == "Fn::GetAtt":
            parts = arg.split(".", 1) if isinstance(arg, str) else list(arg)
            if len(parts) != 2:
                raise TemplateError(f"{where}: bad !GetAtt {arg!r}")
            return self.get_att(str(parts[0]), str(self.resolve(parts[1], where)), where)
        if key == "Fn::Sub":
            return self._sub(arg, where)
        if key == "Fn::Join":
            delimiter, items = arg
            values = self.resolve(items, where)
            return str(delimiter).join(self.resolve_str(v, where) for v in values)
        if key == "Fn::Select":
            index, items = arg
            return self.resolve(items, where)[int(self.resolve(index, where))]
        if key == "Fn::Split":
            delimiter, text = arg
            return self.resolve_str(text, where).split(str(delimiter))
        if key == "Fn::If":
            name, if_true, if_false = arg
            chosen = if_true if self.condition(str(name), where) else if_false
            return self.resolve(chosen, where)
        if key == "Fn::Equals":
            left, right = (self.resolve(v, where) for v in arg)
            return str(left) == str(right)
        if key == "Fn::Not":
            return not bool(self.resolve(arg[0], where))
        if key == "Fn::And":
            return all(bool(self.resolve(v, where)) for v in arg)
        if key == "Fn::Or":
            return any(bool(self.resolve(v, where)) for v in arg)
        if key == "Condition":
            return self.condition(str(arg), where)
        raise TemplateError(f"{where}: intrinsic {key} is not supported by the local stack")

    def _sub(self, arg: Any, where: str) -> str:
        if isinstance(arg, list):
            text, variables = str(arg[0]), self.resolve(arg[1] if len(arg) > 1 else {}, where)
        else:
            text, variables = str(arg), {}

        def replace(match: re.Match[str]) -> str:
            inner = match.group(1)
            if inner.startswith("!"):  # ${!Literal} is an escaped ${Literal}
                return "${" + inner[1:] + "}"
            if inner in variables:
                return self.resolve_str(variables[inner], where)
            if "." in inner and inner.split(".", 1)[0] in self._resources:
                name, attribute = inner.split(".", 1)
                return self.resolve_str(self.get_att(name, attribute, where), where)
            return self.resolve_str(self.ref(inner, where), where)

        return _SUB_VAR.sub(replace, text)
