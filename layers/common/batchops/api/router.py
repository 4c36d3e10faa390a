"""The route table's building block: one `SurfaceRouter` per API surface.

Routes are declared once, here in `api/`, and mounted three ways: one route per
endpoint Lambda, every route in the OpenAPI document, and (later) every
non-batch route in the operations executor. Powertools' own `Router` cannot hand
out a single route, so each surface keeps its endpoints in a plain list that
`resolver.build_resolver` registers on a Powertools resolver.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

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

    @property
    def key(self) -> tuple[str, str]:
        return (self.method, self.path)


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
        idempotent: bool = False,
        include_in_schema: bool = True,
        max_body_bytes: int | None = None,
        request_body: dict[str, Any] | None = None,
        returns_files: bool = False,
    ) -> Callable[[Handler], Handler]:
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
                    idempotent=idempotent,
                    include_in_schema=include_in_schema,
                    max_body_bytes=max_body_bytes,
                    request_body=request_body,
                    returns_files=returns_files,
                )
            )
            return func

        return register

    def get(self, path: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self.route("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self.route("POST", path, **kwargs)
