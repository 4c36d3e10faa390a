"""`pip install ./client` in a fresh virtual environment, on the oldest and the newest Python the
client supports (3.9 and 3.13), then the installed `batchops` and SDK against the local stack.

This is the path a user outside this repository takes: nothing of the server (boto3, Powertools,
moto, the `batchops` package) may come with it, and the client must work on its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.e2e.conftest import KEY_INSTALL
from tests.e2e.harness import REPO, RunningStack

VERSIONS = ("3.9", "3.13")
# What `pip install ./client` may bring: the client and what httpx, pydantic, click, rich and
# standardwebhooks need (exceptiongroup and typing-extensions only on the older Pythons).
ALLOWED = {
    "batchops-client",
    "httpx",
    "httpcore",
    "h11",
    "anyio",
    "idna",
    "certifi",
    "sniffio",
    "exceptiongroup",
    "pydantic",
    "pydantic-core",
    "annotated-types",
    "typing-extensions",
    "typing-inspection",
    "click",
    "rich",
    "markdown-it-py",
    "mdurl",
    "pygments",
    "standardwebhooks",
    "pip",
    "setuptools",
}


def interpreter(version: str) -> Path:
    """That Python from pyenv (where this machine keeps every version) or from PATH."""
    candidates = [Path(p) / f"python{version}" for p in os.environ.get("PATH", "").split(os.pathsep)]
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates += sorted((pyenv_root / "versions").glob(f"{version}.*/bin/python{version}"), reverse=True)
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK) and "shims" not in candidate.parts:
            return candidate
    raise AssertionError(
        f"Python {version} is needed to prove the client runs on it; none found on PATH or in "
        f"{pyenv_root}/versions (install it: `pyenv install {version}`)"
    )


def run(
    *argv: str | Path, env: dict[str, str] | None = None, check: bool = True, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, env=env, timeout=600, check=False, cwd=cwd
    )
    if check:
        assert done.returncode == 0, f"{argv} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done


def fresh_install(version: str, root: Path) -> Path:
    """A new venv of that Python with `pip install ./client` alone; its bin directory."""
    target = root / f"py{version}"
    run(interpreter(version), "-m", "venv", target)
    bin_dir = target / "bin"
    # Exactly what the README says, from the repository's root.
    run(bin_dir / "python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "./client", cwd=REPO)
    return bin_dir


@pytest.fixture(scope="module")
def installs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("client-venvs")
    # Side by side: each is mostly waiting on the package index.
    with ThreadPoolExecutor(len(VERSIONS)) as pool:
        made = dict(zip(VERSIONS, pool.map(lambda v: fresh_install(v, root), VERSIONS), strict=True))
    return made


def user_env(stack: RunningStack) -> dict[str, str]:
    # Only what a user's shell would have: no PYTHONPATH into this repository.
    kept = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    return {**kept, "BATCHOPS_BASE_URL": stack.api, "BATCHOPS_API_KEY": KEY_INSTALL, "NO_COLOR": "1"}


@pytest.mark.parametrize("version", VERSIONS)
def test_the_install_has_nothing_of_the_server(installs: dict[str, Path], version: str) -> None:
    bin_dir = installs[version]
    listed = json.loads(run(bin_dir / "python", "-m", "pip", "list", "--format", "json").stdout)
    names = {entry["name"].lower().replace("_", "-") for entry in listed}
    assert names <= ALLOWED, f"unexpected distributions: {sorted(names - ALLOWED)}"
    assert "batchops-client" in names
    for server_module in ("batchops", "boto3", "aws_lambda_powertools", "moto"):
        missing = run(bin_dir / "python", "-c", f"import {server_module}", check=False)
        assert missing.returncode != 0 and "ModuleNotFoundError" in missing.stderr, server_module
    version_line = run(bin_dir / "batchops", "--version").stdout
    assert "batchops" in version_line and any(ch.isdigit() for ch in version_line)


@pytest.mark.parametrize("version", VERSIONS)
def test_the_installed_cli_and_sdk_work_against_the_stack(
    installs: dict[str, Path], version: str, stack: RunningStack, tmp_path: Path
) -> None:
    bin_dir, env = installs[version], user_env(stack)
    config = tmp_path / "batch.json"
    health = f"{stack.api}/v1/health"
    jobs = [{"id": f"job_{i}", "type": "http", "config": {"url": health, "method": "GET"}} for i in range(2)]
    config.write_text(json.dumps({"name": f"install on {version}", "type": "analysis", "jobs": jobs}))

    created = json.loads(run(bin_dir / "batchops", "--json", "batch", "create", "--config", config, env=env).stdout)
    watched = run(bin_dir / "batchops", "batch", "status", created["batch_id"], "--watch", "--json", env=env)
    assert json.loads(watched.stdout)["status"] == "completed"

    script = textwrap.dedent(
        """
        import asyncio, sys
        from batchops_client import AsyncBatchopsClient, BatchopsClient, NotFoundError

        client = BatchopsClient()
        batch = client.batches.get_status(sys.argv[1])
        assert batch["status"] == "completed" and batch.jobs.completed == 2, batch

        async def main():
            async with AsyncBatchopsClient() as aclient:
                ids = [b.batch_id async for b in aclient.batches.iterate()]
                try:
                    await aclient.batches.get_status("batch_missing")
                except NotFoundError as error:
                    return ids, error.status
        ids, status = asyncio.run(main())
        assert sys.argv[1] in ids and status == 404
        print(sys.version_info[:2])
        """
    )
    ran = run(bin_dir / "python", "-c", script, created["batch_id"], env=env)
    assert ran.stdout.strip() == str(tuple(int(part) for part in version.split(".")))
