"""JSON nesting depth: decode any depth without recursing, and find values nested too deep.

Python's JSON decoder recurses once per level and raises ``RecursionError`` at roughly a
thousand levels. A response from Pleo (or anything pretending to be Pleo) nested deeper would
otherwise take the whole run down. :func:`loads` decodes such a body anyway: every value below
:data:`CLIP_DEPTH` levels is replaced by an empty array at that depth, so the result is still
deeper than any limit a caller checks with :func:`too_deep`, and can be refused for what it is.
"""

from __future__ import annotations

import json
import re
from typing import Any

CLIP_DEPTH = 100
"""Values deeper than this are cut off by :func:`loads` (kept as ``[]`` one level below)."""

_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


def loads(body: bytes | str) -> Any:
    """``json.loads``, except that a body nested too deep for it is clipped, not fatal.

    Raises :class:`ValueError` (``json.JSONDecodeError``) for a body that is not JSON.
    """
    try:
        return json.loads(body)
    except RecursionError:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
        return json.loads(_clip(text, CLIP_DEPTH))


def _clip(text: str, limit: int) -> str:
    """``text`` with every array or object that opens below ``limit`` levels replaced by
    ``[]`` (brackets inside strings are skipped; malformed text stays malformed)."""
    out: list[str] = []
    depth = 0
    copied = 0  # text[:copied] is accounted for in out
    skip_from: int | None = None  # start of the value being dropped
    skip_depth = 0
    for match in _TOKENS.finditer(text):
        mark = match.group()
        if mark[0] == '"':
            continue
        if mark in "[{":
            depth += 1
            if skip_from is None and depth > limit:
                skip_from, skip_depth = match.start(), depth
        else:
            if skip_from is not None and depth == skip_depth:
                out.append(text[copied:skip_from])
                out.append("[]")
                copied = match.end()
                skip_from = None
            depth -= 1
    if skip_from is not None:  # never closed: keep it malformed
        return text
    out.append(text[copied:])
    return "".join(out)


def too_deep(value: Any, limit: int) -> tuple[str, ...] | None:
    """The path (``("note", "0", "0")``) to the first array or object nested more than
    ``limit`` levels deep in ``value`` (which is level 1), or ``None``. Any depth is safe.

    It runs once per export item, so the common answer, ``None``, is found by a walk that
    builds no paths and goes at most ``limit`` levels down (:func:`_deeper_than`); only a
    value that is too deep is walked again, iteratively, to name the path.
    """
    if not isinstance(value, (dict, list)):
        return None
    if limit >= 1 and not _deeper_than(value, limit - 1):
        return None
    return _path_too_deep(value, limit)


def _deeper_than(node: dict[Any, Any] | list[Any], levels: int) -> bool:
    """Whether an array or object sits more than ``levels`` levels below ``node``.

    Recursive, but it stops ``levels`` levels down (callers pass a small limit), so Python's
    recursion limit is never near. Each call looks two levels down, which halves the calls.
    """
    for child in node.values() if isinstance(node, dict) else node:
        if isinstance(child, (dict, list)):
            if levels == 0:
                return True
            for grandchild in child.values() if isinstance(child, dict) else child:
                if isinstance(grandchild, (dict, list)) and (
                    levels == 1 or _deeper_than(grandchild, levels - 2)
                ):
                    return True
    return False


def _path_too_deep(value: Any, limit: int) -> tuple[str, ...] | None:
    """:func:`too_deep`'s path, found iteratively (slow: it builds a path per container)."""
    stack: list[tuple[Any, int, tuple[str, ...]]] = [(value, 1, ())]
    while stack:
        node, level, path = stack.pop()
        if not isinstance(node, (dict, list)):
            continue
        if level > limit:
            return path
        children = node.items() if isinstance(node, dict) else enumerate(node)
        for key, child in children:
            if isinstance(child, (dict, list)):
                stack.append((child, level + 1, (*path, str(key))))
    return None
