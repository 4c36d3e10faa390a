"""The layers' requirement lists are closed and in step with the environment the tests run in.

layers/layer.mk installs each list with --no-deps (so pip never adds botocore beside the
runtime's), which makes a forgotten dependency an ImportError on Lambda only. This checks, from
the installed distributions' metadata, that every dependency of every pinned package is pinned in
the same layer, in the core layer beneath it, or provided by the Lambda runtime; and that each
pin is the version installed here, so the tests exercise what ships.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support import ROOT

# The Lambda python3.11 runtime's own packages (and their dependencies).
RUNTIME = {
    canonicalize_name(n) for n in ("boto3", "botocore", "s3transfer", "jmespath", "urllib3", "python-dateutil", "six")
}
CORE = ROOT / "layers/common/requirements.txt"
LAYERS = {"CommonLayer": [CORE], "ExportsLayer": [ROOT / "layers/exports/requirements.txt", CORE]}
ENVIRONMENT = {**default_environment(), "python_version": "3.11", "python_full_version": "3.11.0", "extra": ""}


def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"{path.name}: {line} is not pinned"
            found[canonicalize_name(name)] = version
    return found


def needs(distribution: str) -> set[str]:
    wanted = set()
    for text in importlib.metadata.requires(distribution) or []:
        requirement = Requirement(text)
        if requirement.marker is None or requirement.marker.evaluate(ENVIRONMENT):
            wanted.add(canonicalize_name(requirement.name))
    return wanted


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_every_dependency_is_in_the_layer_below_or_the_runtime(layer: str) -> None:
    available = set(RUNTIME)
    for path in LAYERS[layer]:
        available |= set(pins(path))
    own = pins(LAYERS[layer][0])
    missing = {name: sorted(needs(name) - available) for name in own if needs(name) - available}
    assert missing == {}


@pytest.mark.parametrize("path", [CORE, ROOT / "layers/exports/requirements.txt"], ids=lambda p: p.parent.name)
def test_pins_are_the_installed_versions(path: Path) -> None:
    installed = {name: importlib.metadata.version(name) for name in pins(path)}
    assert installed == pins(path)


def test_no_layer_ships_what_the_runtime_has() -> None:
    for paths in LAYERS.values():
        assert not set(pins(paths[0])) & RUNTIME
