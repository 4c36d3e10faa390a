"""`make run` without BATCHOPS_LOCAL_API_KEYS: one workspace `dev` on `pro` with a printed key that works."""

from __future__ import annotations

import os
import signal

import httpx

from tests.e2e.harness import start_stack
from tests.support import log_entry


def test_default_dev_key_is_printed_and_works_and_ctrl_c_stops_cleanly(tmp_path, monkeypatch):
    monkeypatch.delenv("BATCHOPS_LOCAL_API_KEYS", raising=False)
    assert "BATCHOPS_LOCAL_API_KEYS" not in os.environ
    stack = start_stack(tmp_path)
    try:
        assert stack.api.startswith("http://127.0.0.1:")
        assert set(stack.keys) == {"dev"}
        assert "dev (pro)" in stack.stdout.read_text()
        key = stack.keys["dev"]
        assert key.startswith("bo_")
        response = httpx.post(
            f"{stack.api}/v1/events",
            json=log_entry(),
            headers={"Authorization": f"Bearer {key}"},
        )
        assert response.status_code == 201
    finally:
        code = stack.stop(signal.SIGINT)
    assert code == 0, stack.logs()
