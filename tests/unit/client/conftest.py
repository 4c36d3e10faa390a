"""What the SDK's respx tests share: a client on a mocked API whose sleeps are recorded, not slept,
and readers of what a request sent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import respx

from batchops_client import BatchopsClient

API = "http://api.test"


def query(request: httpx.Request) -> dict[str, list[str]]:
    return parse_qs(request.url.query.decode())


def sent(request: httpx.Request) -> Any:
    return json.loads(request.content)


@pytest.fixture
def waits() -> list[float]:
    return []


@pytest.fixture
def sdk(waits: list[float]) -> BatchopsClient:
    return BatchopsClient("bo_test", API, sleep=waits.append)


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=API) as mocked:
        yield mocked
