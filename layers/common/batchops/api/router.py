"""The route table's building block: one `SurfaceRouter` per API surface.

Routes are declared once, here in `api/`, and mounted three ways: one route per
endpoint Lambda, every route in the OpenAPI document, and (later) every
non-batch route in the operations executor. Powertools' own `Router` cannot hand
out a single route, so each surface keeps its endpoints in a plain list that
`resolver.build_resolver` registers on a Powertools resolver.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar

from aws_lambda_powertools.event_handler.openapi.params import Body
from pydantic import BaseModel

Handler = TypeVar("Handler", bound=Callable[..., Any])


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Callable[..., Any]
    surface: str
    status_code: int = 200
    auth: bool = True
    summary: str = ""
    description: str = ""
    responses: dict[int, Any] | None = None
    idempotent: bool = False
    include_in_schema: bool = True
    # The largest body this route takes, uncompressed (None: settings.max_body_bytes).
    max_body_bytes: int | None = None
    # OpenAPI requestBody for a route that parses its own body instead of a pydantic parameter.
    request_body: dict[str, Any] | None = None
    # The route may answer with a file (bytes): its response is not serialized as JSON.
    returns_files: bool = False
    # For a route that parses its own body: what it refuses, without storing anything (dry runs).
    check_body: Callable[[str], None] | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.method, self.path)

    @cached_property
    def body_model(self) -> type[BaseModel] | None:
        """The pydantic model the route's body is validated as (`Annotated[Model, Body()]`,
        optional or not), or None when it takes no body or parses its own."""
        for parameter in inspect.signature(self.handler, eval_str=True).parameters.values():
            if typing.get_origin(parameter.annotation) is not typing.Annotated:
                continue
            declared, *metadata = typing.get_args(parameter.annotation)
            if not any(isinstance(item, Body) for item in metadata):
                continue
            options = typing.get_args(declared) if isinstance(declared, types.UnionType) else (declared,)
            for option in options:
                if isinstance(option, type) and issubclass(option, BaseModel):
                    return option
        return None


@dataclass
class SurfaceRouter:
    surface: str
    endpoints: list[Endpoint] = field(default_factory=list)

    def route(
        self,
        method: str,
        path: str,
        *,
        status_code: int = 200,
        auth: bool = True,
        summary: str = "",
        description: str = "",
        responses: dict[int, Any] | None = None,
        idempotent: bool | None = None,
        include_in_schema: bool = True,
        max_body_bytes: int | None = None,
        request_body: dict[str, Any] | None = None,
        returns_files: bool = False,
        check_body: Callable[[str], None] | None = None,
    ) -> Callable[[Handler], Handler]:
        """`idempotent`: honour Idempotency-Key; every POST does (each creates something) unless
        it says otherwise (a dry run creates nothing)."""

        def register(func: Handler) -> Handler:
            self.endpoints.append(
                Endpoint(
                    method=method.upper(),
                    path=path,
                    handler=func,
                    surface=self.surface,
                    status_code=status_code,
                    auth=auth,
                    summary=summary,
                    description=description or (func.__doc__ or "").strip(),
                    responses=responses,
                    idempotent=method.upper() == "POST" if idempotent is None else idempotent,
                    include_in_schema=include_in_schema,
                    max_body_bytes=max_body_bytes,
                    request_body=request_body,
                    returns_files=returns_files,
                    check_body=check_body,
                )
            )
            return func

        return register

    def get(self, path: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self.route("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self.route("POST", path, **kwargs)
