"""Integration tests run each handler in the test process *as its function*: with the credentials
of the role `sam deploy` gives it, every AWS call judged against that role before moto answers.

The local stack gives each function a process of its own; here handlers share the test process, so
the function being run is a context variable, carried into the threads its code starts (batchops
fans writes and operations out on thread pools), and every boto3 client signs each request with
the credentials of the function running at that moment. Test code outside a handler keeps the
test's own credentials, which nothing restricts, as the local stack lets its own calls through.
"""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from botocore.credentials import Credentials, EnvProvider, ReadOnlyCredentials

from batchops_local.enforcement import Enforcer, install_botocore_hook, table_keys
from batchops_local.iam import Role, load_roles
from batchops_local.template import load_template

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"

_acting: ContextVar[Role | None] = ContextVar("acting_function", default=None)
_installed: list[bool] = []
DENIALS: list[str] = []


@functools.lru_cache(maxsize=1)
def roles() -> dict[str, Role]:
    return load_roles(TEMPLATE, "http://127.0.0.1:5000")


@functools.lru_cache(maxsize=1)
def functions_by_folder() -> dict[Path, str]:
    """Each template function's logical id, by its CodeUri folder."""
    return {fn.code_dir: fn.logical_id for fn in load_template(TEMPLATE).functions.values()}


def function_of(code_dir: Path) -> str:
    """The logical id of the template function whose CodeUri is `code_dir`."""
    return functions_by_folder()[code_dir.resolve()]


@contextmanager
def acting_as(function: str) -> Iterator[None]:
    token = _acting.set(roles()[function])
    try:
        yield
    finally:
        _acting.reset(token)


def as_function(function: str, handler: Callable[..., Any]) -> Callable[..., Any]:
    """`handler`, run as `function` when the harness is installed (else unchanged)."""
    if not _installed:
        return handler

    @functools.wraps(handler)
    def run(*args: Any, **kwargs: Any) -> Any:
        with acting_as(function):
            return handler(*args, **kwargs)

    return run


class _ActingCredentials(Credentials):
    """The test's own credentials, except while a function runs: then that function's role's."""

    def __init__(self, ambient: Credentials) -> None:
        super().__init__(ambient.access_key, ambient.secret_key, ambient.token, method=ambient.method)
        self._ambient = ambient

    def get_frozen_credentials(self) -> ReadOnlyCredentials:
        role = _acting.get()
        if role is None:
            return self._ambient.get_frozen_credentials()
        return ReadOnlyCredentials(role.access_key_id, role.secret_access_key, role.session_token)


def _log(line: str) -> None:
    DENIALS.append(line)
    print(line, file=sys.stderr)


def install() -> None:
    """Once per test process: credentials per function, carried into threads, and enforcement."""
    if _installed:
        return
    load_env = EnvProvider.load

    def load(self: EnvProvider) -> Credentials | None:
        found = load_env(self)
        return _ActingCredentials(found) if found is not None else None

    EnvProvider.load = load  # type: ignore[method-assign]

    start, run = threading.Thread.start, threading.Thread.run

    def start_as_starter(self: threading.Thread) -> None:
        self._acting_role = _acting.get()  # type: ignore[attr-defined]
        start(self)

    def run_as_starter(self: threading.Thread) -> None:
        role = getattr(self, "_acting_role", None)
        if role is None:
            run(self)
            return
        token = _acting.set(role)
        try:
            run(self)
        finally:
            _acting.reset(token)

    threading.Thread.start = start_as_starter  # type: ignore[method-assign]
    threading.Thread.run = run_as_starter  # type: ignore[method-assign]
    install_botocore_hook(Enforcer(roles().values(), table_keys(load_template(TEMPLATE).tables.values()), _log))
    _installed.append(True)
