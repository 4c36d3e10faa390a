"""`make sam-local`'s wiring (batchops_local.sam_local), without Docker; the e2e test runs it."""

from __future__ import annotations

import json

from batchops_local.sam_local import (
    ENV_JSON_ENDPOINT,
    REPO_ROOT,
    container_wiring,
    env_vars,
    lambda_architecture,
    shared_flags,
)


def test_the_architecture_is_the_hosts_so_no_cpu_emulation_is_needed() -> None:
    assert lambda_architecture("x86_64") == lambda_architecture("AMD64") == "x86_64"
    assert lambda_architecture("aarch64") == lambda_architecture("arm64") == "arm64"


def test_linux_maps_host_docker_internal_and_binds_beyond_loopback() -> None:
    assert container_wiring("Linux") == ("0.0.0.0", ["--add-host", "host.docker.internal:host-gateway"])
    # Docker Desktop defines the name and forwards it to the host's loopback.
    assert container_wiring("Darwin") == ("127.0.0.1", [])


def test_the_env_file_is_env_json_with_the_stacks_endpoint_everywhere() -> None:
    original = json.loads((REPO_ROOT / "events" / "env.json").read_text())
    written = env_vars(original, "http://host.docker.internal:41234")
    assert written.keys() == original.keys()
    for function, variables in written.items():
        assert variables.keys() == original[function].keys(), function
        assert ENV_JSON_ENDPOINT not in json.dumps(variables), function
    assert written["Parameters"]["AWS_ENDPOINT_URL"] == "http://host.docker.internal:41234"
    assert (
        written["Parameters"]["BATCHOPS_WORK_QUEUE_URL"] == "http://host.docker.internal:41234/123456789012/WorkQueue"
    )


def test_flags_name_the_build_of_the_architecture_and_declare_the_endpoint() -> None:
    x86 = shared_flags("x86_64", REPO_ROOT / ".aws-sam/e.json", "http://h:1", ["--add-host", "h:host-gateway"])
    assert x86 == [
        "--template-file",
        ".aws-sam/build-x86_64/template.yaml",
        "--env-vars",
        ".aws-sam/e.json",
        "--parameter-overrides",
        "Architecture=x86_64 LocalEndpointUrl=http://h:1",
        "--add-host",
        "h:host-gateway",
    ]
    assert shared_flags("arm64", REPO_ROOT / "e.json", "http://h:1", [])[1] == ".aws-sam/build/template.yaml"


def test_a_stack_bound_everywhere_is_still_reached_on_loopback() -> None:
    from batchops_local.aws import client_host
    from batchops_local.stack import parse_settings

    assert parse_settings([], {}).bind == "127.0.0.1"
    assert parse_settings([], {"BATCHOPS_LOCAL_BIND": "0.0.0.0"}).bind == "0.0.0.0"
    assert client_host("0.0.0.0") == "127.0.0.1" and client_host("172.17.0.1") == "172.17.0.1"
