"""Route matching like API Gateway's resource tree."""

from __future__ import annotations

from batchops_local.routing import Router
from batchops_local.template import Route

ROUTER = Router(
    [
        Route("/jobs", "GET", "ListJobs", "auth"),
        Route("/jobs", "POST", "CreateJob", "auth"),
        Route("/jobs/{jobID}", "GET", "GetJob", "auth"),
        Route("/jobs/{jobID}", "ANY", "AnyJob", "auth"),
        Route("/jobs/{jobID}/trigger", "POST", "Trigger", "auth"),
        Route("/jobs/special", "GET", "Special", "auth"),
        Route("/files/{proxy+}", "ANY", "Files", None),
        Route("/", "GET", "Root", None),
    ]
)


def test_literal_and_method_match() -> None:
    match = ROUTER.match("get", "/jobs")
    assert match is not None
    assert match.route.function_name == "ListJobs"
    assert match.path_parameters == {}
    assert ROUTER.match("POST", "/jobs").route.function_name == "CreateJob"  # type: ignore[union-attr]


def test_path_parameters_are_extracted_and_decoded() -> None:
    match = ROUTER.match("GET", "/jobs/job%20one")
    assert match is not None
    assert match.route.path == "/jobs/{jobID}"
    assert match.path_parameters == {"jobID": "job one"}
    trigger = ROUTER.match("POST", "/jobs/42/trigger")
    assert trigger is not None
    assert (trigger.route.function_name, trigger.path_parameters) == ("Trigger", {"jobID": "42"})


def test_literal_beats_parameter_and_explicit_method_beats_any() -> None:
    assert ROUTER.match("GET", "/jobs/special").route.function_name == "Special"  # type: ignore[union-attr]
    assert ROUTER.match("GET", "/jobs/7").route.function_name == "GetJob"  # type: ignore[union-attr]
    assert ROUTER.match("PATCH", "/jobs/7").route.function_name == "AnyJob"  # type: ignore[union-attr]


def test_a_resource_without_the_method_does_not_fall_back_to_a_less_specific_one() -> None:
    # /jobs/special exists (GET only): a DELETE there is not routed to /jobs/{jobID} ANY.
    assert ROUTER.match("DELETE", "/jobs/special") is None


def test_any_covers_only_api_gateways_methods() -> None:
    assert ROUTER.match("OPTIONS", "/jobs/7").route.function_name == "AnyJob"  # type: ignore[union-attr]
    assert ROUTER.match("TRACE", "/jobs/7") is None
    assert ROUTER.match("CONNECT", "/files/a") is None


def test_greedy_proxy() -> None:
    match = ROUTER.match("PUT", "/files/a/b/c.txt")
    assert match is not None
    assert match.path_parameters == {"proxy": "a/b/c.txt"}
    assert ROUTER.match("GET", "/files") is None  # {proxy+} needs at least one segment


def test_unknown_paths_and_methods_do_not_match() -> None:
    assert ROUTER.match("GET", "/nope") is None
    assert ROUTER.match("DELETE", "/jobs") is None
    assert ROUTER.match("GET", "/jobs/1/trigger") is None
    assert ROUTER.match("GET", "/jobs/1/trigger/extra") is None
    assert not ROUTER.resource_exists("/nope")
    assert ROUTER.resource_exists("/jobs/1/trigger")


def test_root_and_trailing_slash() -> None:
    assert ROUTER.match("GET", "/").route.function_name == "Root"  # type: ignore[union-attr]
    assert ROUTER.match("GET", "/jobs/").route.function_name == "ListJobs"  # type: ignore[union-attr]
