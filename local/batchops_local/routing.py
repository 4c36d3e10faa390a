"""Match a request path and method to a template route, as API Gateway's resource tree does.

At each path level a literal segment beats a `{param}` and a `{param}` beats a greedy `{proxy+}`;
on one resource an explicit method beats ANY. No route for the path, or none for the method, is
what API Gateway REST answers with MISSING_AUTHENTICATION_TOKEN (403).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote

from batchops_local.template import Route

_LITERAL, _PARAM, _GREEDY = 0, 1, 2
HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class RouteMatch:
    route: Route
    path_parameters: dict[str, str]


def _segments(path: str) -> list[str]:
    # API Gateway treats "/jobs/" like "/jobs"; empty segments carry no meaning.
    return [s for s in path.split("/") if s]


class _Compiled:
    def __init__(self, route: Route) -> None:
        self.route = route
        self.parts: list[tuple[int, str]] = []
        segments = _segments(route.path)
        for i, seg in enumerate(segments):
            if seg.startswith("{") and seg.endswith("+}"):
                if i != len(segments) - 1:
                    raise ValueError(f"{route.path}: a greedy {seg} must be the last segment")
                self.parts.append((_GREEDY, seg[1:-2]))
            elif seg.startswith("{") and seg.endswith("}"):
                self.parts.append((_PARAM, seg[1:-1]))
            else:
                self.parts.append((_LITERAL, seg))

    def match(self, segments: list[str]) -> tuple[tuple[int, ...], dict[str, str]] | None:
        """(specificity rank, path parameters) when the segments fit this resource."""
        params: dict[str, str] = {}
        rank: list[int] = []
        for i, (kind, text) in enumerate(self.parts):
            if kind == _GREEDY:
                rest = segments[i:]
                if not rest:  # {proxy+} needs at least one segment
                    return None
                params[text] = unquote("/".join(rest))
                rank.append(_GREEDY)
                return tuple(rank), params
            if i >= len(segments):
                return None
            if kind == _LITERAL and segments[i] != text:
                return None
            if kind == _PARAM:
                params[text] = unquote(segments[i])
            rank.append(kind)
        if len(segments) != len(self.parts):
            return None
        return tuple(rank), params


class Router:
    def __init__(self, routes: Iterable[Route]) -> None:
        self._routes = [_Compiled(r) for r in routes]

    def resource_exists(self, path: str) -> bool:
        segments = _segments(path)
        return any(c.match(segments) is not None for c in self._routes)

    def match(self, method: str, path: str) -> RouteMatch | None:
        """The route for METHOD PATH, or None (API Gateway: Missing Authentication Token)."""
        segments = _segments(path)
        candidates: list[tuple[tuple[int, ...], str, _Compiled, dict[str, str]]] = []
        for compiled in self._routes:
            found = compiled.match(segments)
            if found is not None:
                rank, params = found
                candidates.append((rank, compiled.route.path, compiled, params))
        if not candidates:
            return None
        # The most specific resource wins; its methods are the only ones considered.
        best_rank = min(c[0] for c in candidates)
        best_path = min(c[1] for c in candidates if c[0] == best_rank)
        on_resource = [c for c in candidates if c[0] == best_rank and c[1] == best_path]
        method = method.upper()
        # ANY stands for API Gateway's seven methods only; TRACE, CONNECT, ... never match it.
        wanted_methods = (method, "ANY") if method in HTTP_METHODS else (method,)
        for wanted in wanted_methods:
            for _, _, compiled, params in on_resource:
                if compiled.route.method == wanted:
                    return RouteMatch(compiled.route, params)
        return None
