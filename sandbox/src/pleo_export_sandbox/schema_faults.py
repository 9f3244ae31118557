"""Responses that break the Export API schema: a fault the network cannot produce on its own.

:mod:`pleo_export_sandbox.faults` makes requests fail (429, 5xx, timeouts, dropped
connections). This module makes them *succeed* with a body the client cannot trust: a required
field missing, a field of the wrong JSON type, a body that is not JSON at all, or one cut off
halfway. That is what a half-deployed API version, a misbehaving proxy or a corrupted cache
hands a client, and the client must refuse it rather than act on it.

:func:`break_responses` wraps a sandbox's ASGI app, so both :meth:`Sandbox.transport` and a
served sandbox (``running_server``) deliver the broken bodies. The sandbox records and checks
the response it produced (``Sandbox.requests``, ``on_exchange``) *before* the break, so a
contract checker keeps seeing a sandbox that follows the spec; what was broken is listed in
:attr:`SchemaBreaker.broken`.

A :class:`BreakRule` matches requests by method and path (a regular expression searched in
the path) and breaks ``count`` of the matching 2xx responses (every ``every``-th). Kinds:

``drop``
    remove the field at ``field`` (a dotted path; ``*`` stands for every element of a list,
    e.g. ``data.*.status`` or ``data.1.amount``).
``retype``
    replace the value at ``field`` with one of another JSON type (a string becomes a number,
    anything else a string).
``null``
    set the value at ``field`` to ``null``.
``not_json``
    replace the whole body with an HTML page, keeping status and JSON content type.
``truncate``
    cut the body in half.
``set``
    replace the value at ``field`` with ``value`` (any JSON value, e.g. the string ``"47003"``
    where the spec wants a number).
``nest``
    replace the value at ``field`` with an array nested ``depth`` levels deep (``[[[...]]]``),
    written as text, so depths no JSON encoder would write can be served. The last part of
    ``field`` may name a key the object does not have yet: it is added.

``drop``, ``retype``, ``null``, ``set`` and ``nest`` need ``field``; when the field is not in a
response, that response is passed on unchanged and does not count as a hit.
"""

from __future__ import annotations

import copy
import json
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from starlette.types import ASGIApp, Receive, Scope, Send

from pleo_export_sandbox.app import Sandbox
from pleo_export_sandbox.faults import RequestMatch
from pleo_export_sandbox.transport import call_buffered
from pleo_export_sandbox.wire import read_body

BreakKind = Literal["drop", "retype", "null", "not_json", "truncate", "set", "nest"]
BREAK_KINDS: tuple[str, ...] = ("drop", "retype", "null", "not_json", "truncate", "set", "nest")
_NEEDS_FIELD = frozenset({"drop", "retype", "null", "set", "nest"})
_HTML = b"<html><body><h1>502 Bad Gateway</h1><p>upstream sent garbage</p></body></html>"


@dataclass(frozen=True)
class BreakRule(RequestMatch):
    """Breaks ``count`` matching 2xx responses (see :class:`RequestMatch` for matching)."""

    kind: BreakKind
    field: str | None = None
    """Dotted path into the JSON body, e.g. ``pagination``, ``data.*.status``, ``data.0.amount``."""
    value: Any = None
    """``set``: the JSON value written at ``field``."""
    depth: int = 100_000
    """``nest``: how many levels deep the array written at ``field`` is nested."""

    def __post_init__(self) -> None:
        if self.kind not in BREAK_KINDS:
            raise ValueError(f"break kind {self.kind!r} is not one of {BREAK_KINDS}")
        if self.depth < 1:
            raise ValueError("depth must be >= 1")
        if self.kind in _NEEDS_FIELD and not self.field:
            raise ValueError(f"break kind {self.kind!r} needs field (a dotted path)")
        self._check_match()


@dataclass(frozen=True)
class BrokenResponse:
    """One response that was broken on its way out."""

    method: str
    path: str
    kind: str
    field: str | None
    original: bytes
    delivered: bytes


@dataclass
class _Armed:
    rule: BreakRule
    seen: int = 0
    hits: int = 0

    @property
    def exhausted(self) -> bool:
        return self.rule.count is not None and self.hits >= self.rule.count


@dataclass
class SchemaBreaker:
    """The ASGI wrapper installed by :func:`break_responses`."""

    inner: ASGIApp
    rules: list[_Armed] = field(default_factory=list)
    broken: list[BrokenResponse] = field(default_factory=list)

    def add(self, rule: BreakRule) -> BreakRule:
        self.rules.append(_Armed(rule))
        return rule

    def clear(self) -> None:
        self.rules.clear()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._candidates(scope["method"], scope["path"]):
            await self.inner(scope, receive, send)
            return
        body = await read_body(receive)
        status, headers, content = await call_buffered(self.inner, scope, body)
        if 200 <= status < 300:
            content, headers = self._break(scope["method"], scope["path"], content, headers)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})

    def _candidates(self, method: str, path: str) -> list[_Armed]:
        return [a for a in self.rules if not a.exhausted and a.rule.matches(method, path)]

    def _break(
        self, method: str, path: str, content: bytes, headers: list[tuple[bytes, bytes]]
    ) -> tuple[bytes, list[tuple[bytes, bytes]]]:
        """Apply every rule that hits this response, in the order the rules were added."""
        for armed in self._candidates(method, path):
            changed = _apply(armed.rule, content)
            if changed is None:
                continue  # the field is not in this response: not a hit
            armed.seen += 1
            if (armed.seen - 1) % armed.rule.every:
                continue
            armed.hits += 1
            self.broken.append(
                BrokenResponse(method, path, armed.rule.kind, armed.rule.field, content, changed)
            )
            content = changed
        length = str(len(content)).encode()
        headers = [(k, length if k.lower() == b"content-length" else v) for k, v in headers]
        return content, headers


def break_responses(sandbox: Sandbox) -> SchemaBreaker:
    """Wrap ``sandbox``'s app so that rules added to the returned breaker break responses.

    Call it once per sandbox, before clients are created (``Sandbox.transport()`` reads
    ``sandbox.app`` when it is called).
    """
    if isinstance(sandbox.app, SchemaBreaker):
        return sandbox.app
    breaker = SchemaBreaker(sandbox.app)
    sandbox.app = breaker
    return breaker


# --- mutations ----------------------------------------------------------------------------------


def _apply(rule: BreakRule, content: bytes) -> bytes | None:
    """The broken body, or ``None`` when this rule has nothing to break in ``content``."""
    if rule.kind == "not_json":
        return _HTML
    if rule.kind == "truncate":
        return content[: len(content) // 2]
    try:
        data = json.loads(content)
    except (ValueError, RecursionError):
        return None  # not JSON, or already nested too deep to decode: left for a later page
    assert rule.field is not None
    data = copy.deepcopy(data)
    # ``nest`` writes a marker string first and swaps it for the nested text afterwards: no
    # encoder writes an array nested 100,000 levels deep.
    marker = f"nest-marker-{uuid.uuid4().hex}"
    value = marker if rule.kind == "nest" else rule.value
    if not _mutate(data, rule.field.split("."), rule.kind, value):
        return None
    text = json.dumps(data)
    if rule.kind == "nest":
        text = text.replace(json.dumps(marker), "[" * rule.depth + "]" * rule.depth)
    return text.encode()


def _mutate(node: Any, parts: list[str], kind: str, value: Any = None) -> bool:
    head, rest = parts[0], parts[1:]
    keys: list[Any]
    if isinstance(node, list):
        if kind == "drop" and not rest:
            return False  # removing list elements is not a field removal
        if head == "*":
            keys = list(range(len(node)))
        elif head.isdigit() and int(head) < len(node):
            keys = [int(head)]
        else:
            return False
    elif isinstance(node, dict):
        keys = [head] if head in node or (kind == "nest" and not rest) else []
    else:
        return False
    changed = False
    for key in keys:
        if rest:
            changed = _mutate(node[key], rest, kind, value) or changed
            continue
        if kind == "drop":
            del node[key]
        elif kind == "null":
            node[key] = None
        elif kind in ("set", "nest"):
            node[key] = copy.deepcopy(value)
        else:
            node[key] = 12345 if isinstance(node[key], str) else "not-what-the-spec-says"
        changed = True
    return changed


__all__ = ["BREAK_KINDS", "BreakRule", "BrokenResponse", "SchemaBreaker", "break_responses"]
