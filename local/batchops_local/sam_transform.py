"""Expand a SAM template into CloudFormation with AWS's own SAM transform (aws-sam-translator).

Run as a script under the SAM CLI's interpreter (`.venv-sam/bin/python sam_transform.py T`), which
ships the translator `sam validate`/`sam build` use: the translator pins pydantic ~=2.13 and the
project's Lambda layer pins 2.14, so the two cannot share one environment. Prints the expanded
template as JSON on stdout. Only the standard library and samtranslator are imported here.

Local paths (`CodeUri`, `ContentUri`, `DefinitionUri`) are replaced with placeholder `s3://` URIs
first, as `sam package` would replace them; the translator refuses local paths.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

URI_PROPERTIES = ("CodeUri", "ContentUri", "DefinitionUri")


class _NoManagedPolicyNames:
    """The translator maps AWS managed policy *names* in `Policies` to ARNs with this loader
    (normally an IAM ListPolicies call). Offline there is nothing to list: a template must
    write AWS managed policies as ARNs, which pass through unchanged."""

    def load(self) -> dict[str, str]:
        return {}


def _with_s3_uris(document: dict[str, Any]) -> dict[str, Any]:
    for logical_id, resource in (document.get("Resources") or {}).items():
        properties = resource.get("Properties") if isinstance(resource, dict) else None
        if not isinstance(properties, dict):
            continue
        for key in URI_PROPERTIES:
            if isinstance(properties.get(key), str) and not properties[key].startswith("s3://"):
                properties[key] = f"s3://local-artifacts/{logical_id}"
    return document


def expand(path: str) -> dict[str, Any]:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    from samtranslator.translator.transform import transform  # type: ignore[import-not-found]
    from samtranslator.yaml_helper import yaml_parse  # type: ignore[import-not-found]

    with open(path, encoding="utf-8") as handle:
        document = yaml_parse(handle.read())
    expanded: dict[str, Any] = transform(_with_s3_uris(document), {}, _NoManagedPolicyNames())
    return expanded


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: sam_transform.py TEMPLATE", file=sys.stderr)
        return 2
    try:
        expanded = expand(argv[1])
    except Exception as exc:  # noqa: BLE001 - the caller reports the translator's own message
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    json.dump(expanded, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
