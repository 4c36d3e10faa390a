"""`make run` without BATCHOPS_LOCAL_API_KEYS: one workspace `dev` on `pro` with a printed key that works."""

from __future__ import annotations

import httpx

from tests.e2e.conftest import start_stack


def test_default_dev_key_is_printed_and_works_and_ctrl_c_stops_cleanly():
    stack = start_stack(api_keys=None)
    try:
        assert any(line.strip().startswith("API: http://127.0.0.1:") for line in stack.output)
        assert set(stack.keys) == {"dev"}
        assert any("dev (pro)" in line for line in stack.output)
        key = stack.keys["dev"]
        assert key.startswith("bo_")
        response = httpx.post(
            f"{stack.api_url}/v1/events",
            json={"correlationId": "c", "eventStatus": "STARTED"},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert response.status_code == 201
    finally:
        code = stack.stop()
    assert code == 0
