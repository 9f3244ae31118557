"""Keep the reference documentation in step with the code.

- every hookspec in :mod:`pleo_export.hookspecs` has a heading in ``docs/hooks.md`` with its
  exact signature, and every hook heading there names a real hookspec;
- every setting of :class:`pleo_export.config.Settings` appears in ``docs/configuration.md``
  as ``section.key``;
- the type, sub-type and sign tables in ``docs/bookkeeping.md`` match the dictionaries in
  :mod:`pleo_export.bookkeeping`;
- ``docs/reference/hooks.md`` documents every hookspec with its exact typed signature and kind;
- ``docs/reference/connector.md`` documents every public method of
  :class:`pleo_export.Connector` with its exact signature, and every public type of
  :mod:`pleo_export` with its fields, members, methods and constructor.
"""

from __future__ import annotations

import enum
import inspect
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

import pleo_export
from pleo_export import bookkeeping, hookspecs
from pleo_export.config import Settings
from pleo_export.connector import Connector

DOCS = Path(__file__).resolve().parent.parent / "docs"
SPEC_MARKER = f"{hookspecs.PROJECT}_spec"
"""The attribute pluggy's ``HookspecMarker`` puts on a hookspec function."""
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*$", re.MULTILINE)


def _hookspecs() -> list[Any]:
    return [
        function
        for name, function in inspect.getmembers(hookspecs, inspect.isfunction)
        if name.startswith(f"{hookspecs.PROJECT}_") and hasattr(function, SPEC_MARKER)
    ]


def _signature(function: Any) -> str:
    names = ", ".join(inspect.signature(function).parameters)
    return f"{function.__name__}({names})"


def _headings(page: str) -> list[str]:
    text = (DOCS / page).read_text(encoding="utf-8")
    return [heading.replace("`", "").strip() for heading in HEADING.findall(text)]


def test_hookspecs_are_found() -> None:
    # Guards the parametrisation below: an empty list would make it pass vacuously.
    assert _hookspecs(), "no hookspecs found in pleo_export.hookspecs"


@pytest.mark.parametrize("spec", _hookspecs(), ids=lambda f: f.__name__)
def test_hook_documented_with_exact_signature(spec: Any) -> None:
    expected = _signature(spec)
    headings = _headings("hooks.md")
    assert expected in headings, (
        f"docs/hooks.md needs a heading '## {expected}' (the hookspec's arguments, in order); "
        f"hook headings found: {[h for h in headings if h.startswith(spec.__name__)]}"
    )


def test_no_documented_hook_without_spec() -> None:
    known = {_signature(spec) for spec in _hookspecs()}
    prefix = f"{hookspecs.PROJECT}_"
    stale = [h for h in _headings("hooks.md") if h.startswith(prefix) and h not in known]
    assert not stale, f"docs/hooks.md documents hooks that do not exist (any more): {stale}"


def _sections() -> dict[str, type[BaseModel]]:
    sections: dict[str, type[BaseModel]] = {}
    for name, field in Settings.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            sections[name] = annotation
    return sections


def _setting_keys() -> list[str]:
    keys = [
        f"{section}.{key}" for section, model in _sections().items() for key in model.model_fields
    ]
    # A top-level setting that is not a section (and not internal, i.e. excluded) is
    # documented as `key`.
    keys += [
        name
        for name, field in Settings.model_fields.items()
        if name not in _sections() and not field.exclude
    ]
    return keys


def test_settings_sections_are_found() -> None:
    assert _sections(), "no sections found on pleo_export.config.Settings"


def test_every_setting_documented() -> None:
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    missing = [key for key in _setting_keys() if f"`{key}`" not in text]
    assert not missing, f"docs/configuration.md does not document: {missing}"


HEADERS = frozenset({"type", "sub-type"})


def _table(marker: str) -> set[tuple[str, ...]]:
    text = (DOCS / "bookkeeping.md").read_text(encoding="utf-8")
    match = re.search(rf"<!-- {marker} -->(.*?)<!-- /{marker} -->", text, re.DOTALL)
    assert match, f"docs/bookkeeping.md has no table between <!-- {marker} --> markers"
    rows: set[tuple[str, ...]] = set()
    for line in match.group(1).splitlines():
        cells = [cell.strip().strip("`") for cell in line.strip().strip("|").split("|")]
        if len(cells) > 1 and not set(cells[0]) <= {"-", " ", ":"} and cells[0] not in HEADERS:
            rows.add(tuple(cells))
    return rows


def test_spend_type_table_matches_code() -> None:
    expected = {(t.value, role.value) for t, role in bookkeeping.SPEND_COUNTER_ROLE.items()}
    assert _table("spend-types") == expected


def test_transfer_type_table_matches_code() -> None:
    expected = {
        (t.value, debit.value, credit.value)
        for t, (debit, credit) in bookkeeping.TRANSFER_ROLES.items()
    }
    assert _table("transfer-types") == expected


def test_amount_sign_table_matches_code() -> None:
    expected = {(t.value, sign.value) for t, sign in bookkeeping.AMOUNT_SIGN.items()}
    assert _table("amount-signs") == expected


def test_sub_type_table_matches_code() -> None:
    expected = {
        (sub.value, ", ".join(sorted(t.value for t in types)), direction.value)
        for sub, (types, direction) in bookkeeping.SUBTYPE_DIRECTION.items()
    }
    found = {row[:3] for row in _table("sub-types")}
    normalised = {(sub, types.replace("`", ""), direction) for sub, types, direction in found}
    assert normalised == expected


# --- the reference pages: exact typed signatures ----------------------------------------------

HOOK_REFERENCE = "reference/hooks.md"
CONNECTOR_REFERENCE = "reference/connector.md"


def _annotation(annotation: Any) -> str:
    # The modules use `from __future__ import annotations`: annotations are source strings.
    return annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)


def _default(value: Any) -> str:
    if isinstance(value, enum.Enum):
        return f"{type(value).__name__}.{value.name}"
    return repr(value)


def _parameters(function: Callable[..., Any], *, skip_first: bool = False) -> str:
    """The parameter list as written in the source: ``(self, job: ExportJob)``."""
    parts: list[str] = []
    starred = False
    params = list(inspect.signature(function).parameters.values())
    for param in params[1:] if skip_first else params:
        if param.kind is param.KEYWORD_ONLY and not starred:
            parts.append("*")
            starred = True
        text = param.name
        if param.kind is param.VAR_POSITIONAL:
            text, starred = f"*{text}", True
        elif param.kind is param.VAR_KEYWORD:
            text = f"**{text}"
        if param.annotation is not param.empty:
            text += f": {_annotation(param.annotation)}"
        if param.default is not param.empty:
            separator = " = " if param.annotation is not param.empty else "="
            text += separator + _default(param.default)
        parts.append(text)
        if param.kind is param.POSITIONAL_ONLY and (
            param is params[-1] or params[params.index(param) + 1].kind is not param.kind
        ):
            parts.append("/")
    return f"({', '.join(parts)})"


def _typed_signature(function: Callable[..., Any]) -> str:
    returns = inspect.signature(function).return_annotation
    arrow = "" if returns is inspect.Signature.empty else f" -> {_annotation(returns)}"
    return f"{function.__name__}{_parameters(function)}{arrow}"


def _text(page: str) -> str:
    return (DOCS / page).read_text(encoding="utf-8")


def _page_sections(page: str) -> dict[str, str]:
    """Heading (without backticks) -> its text, up to the next heading of its level or higher."""
    text = _text(page)
    matches = list(re.finditer(r"^(#{1,6})\s+(.+?)\s*$", text, re.MULTILINE))
    sections: dict[str, str] = {}
    for index, match in enumerate(matches):
        level = len(match.group(1))
        end = len(text)
        for later in matches[index + 1 :]:
            if len(later.group(1)) <= level:
                end = later.start()
                break
        sections[match.group(2).replace("`", "").strip()] = text[match.end() : end]
    return sections


# hooks


@pytest.mark.parametrize("spec", _hookspecs(), ids=lambda f: f.__name__)
def test_hook_reference_has_exact_typed_signature_and_kind(spec: Any) -> None:
    expected = _typed_signature(spec)
    sections = _page_sections(HOOK_REFERENCE)
    documented = [h for h in sections if h.startswith(f"{spec.__name__}(")]
    assert expected in sections, (
        f"docs/{HOOK_REFERENCE} needs a heading '### `{expected}`' (the hookspec's signature as "
        f"in pleo_export/hookspecs.py); found: {documented}"
    )
    firstresult = getattr(spec, SPEC_MARKER).get("firstresult", False)
    kind = "Kind: firstresult" if firstresult else "Kind: all results"
    assert kind in sections[expected], f"docs/{HOOK_REFERENCE}: {spec.__name__} must say '{kind}'"


def test_hook_reference_documents_no_hook_without_spec() -> None:
    known = {_typed_signature(spec) for spec in _hookspecs()}
    prefix = f"{hookspecs.PROJECT}_"
    stale = [h for h in _page_sections(HOOK_REFERENCE) if h.startswith(prefix) and h not in known]
    assert not stale, f"docs/{HOOK_REFERENCE} documents hooks that do not exist (any more): {stale}"


# the Connector class


def _connector_methods() -> list[tuple[str, Any]]:
    """Public methods defined on Connector itself, unwrapped from classmethod/staticmethod."""
    methods: list[tuple[str, Any]] = []
    for name, raw in vars(Connector).items():
        function = raw.__func__ if isinstance(raw, classmethod | staticmethod) else raw
        if not name.startswith("_") and inspect.isfunction(function):
            methods.append((name, raw))
    return methods


def _method_heading(raw: Any) -> str:
    function = raw.__func__ if isinstance(raw, classmethod | staticmethod) else raw
    keyword = "async def" if inspect.iscoroutinefunction(function) else "def"
    return f"{keyword} {_typed_signature(function)}"


def test_connector_methods_are_found() -> None:
    names = {name for name, _ in _connector_methods()}
    # Guards the parametrisation: the introspection must see the contract's core methods.
    assert {"check", "prepare", "post", "find_existing", "classify_error"} <= names


@pytest.mark.parametrize("method", _connector_methods(), ids=lambda m: m[0])
def test_connector_method_documented_with_exact_signature(method: tuple[str, Any]) -> None:
    name, raw = method
    expected = _method_heading(raw)
    headings = list(_page_sections(CONNECTOR_REFERENCE))
    assert any(expected in heading for heading in headings), (
        f"docs/{CONNECTOR_REFERENCE} needs a heading '#### `{expected}`' (prefix "
        f"'@classmethod ' for a classmethod); found: {[h for h in headings if f' {name}(' in h]}"
    )
    if isinstance(raw, classmethod):
        assert any(f"@classmethod {expected}" in heading for heading in headings), (
            f"docs/{CONNECTOR_REFERENCE}: {name} is a classmethod; write '@classmethod {expected}'"
        )


def test_connector_docs_show_no_method_that_does_not_exist() -> None:
    # The guide (docs/connectors.md) repeats the method headings; both pages must be exact.
    known = {_method_heading(raw) for _, raw in _connector_methods()}
    method_heading = re.compile(r"^(?:@\w+ )?((?:async )?def \w+\(.*)$")
    stale = [
        f"docs/{page}: {heading}"
        for page in (CONNECTOR_REFERENCE, "connectors.md")
        for heading in _page_sections(page)
        if (match := method_heading.match(heading)) and match.group(1) not in known
    ]
    assert not stale, f"headings document methods that do not exist or differ: {stale}"


# the public types


def _public_names() -> list[str]:
    return [name for name in pleo_export.__all__ if not name.startswith("__")]


def _own_methods(cls: type) -> list[tuple[str, Any]]:
    """Public methods a class defines in pleo_export, not overrides of a library's hooks."""
    found: list[tuple[str, Any]] = []
    for name, raw in vars(cls).items():
        function = raw.__func__ if isinstance(raw, classmethod | staticmethod) else raw
        if name.startswith("_") or not inspect.isfunction(function):
            continue
        if any(hasattr(base, name) for base in cls.__mro__[1:]):
            continue  # e.g. ConnectorSettings.settings_customise_sources (pydantic-settings)
        found.append((name, function))
    return found


def _constructor(cls: type) -> str | None:
    """``Name(params)`` for classes whose ``__init__`` is pleo-export's own, else ``None``."""
    if issubclass(cls, BaseModel | enum.Enum):
        return None  # documented by their fields or members
    init = cls.__init__
    if not inspect.isfunction(init) or not init.__module__.startswith("pleo_export"):
        return None
    return f"{cls.__name__}{_parameters(init, skip_first=True)}"


def _type_section(name: str) -> str:
    for heading, body in _page_sections(CONNECTOR_REFERENCE).items():
        if heading == name:
            return body
    raise AssertionError(f"docs/{CONNECTOR_REFERENCE} needs a heading '### {name}'")


@pytest.mark.parametrize("name", _public_names())
def test_public_type_documented_with_its_fields_and_signatures(name: str) -> None:
    section = _type_section(name)
    obj = getattr(pleo_export, name)
    if inspect.isfunction(obj):
        expected = f"def {_typed_signature(obj)}"
        assert expected in section, f"docs/{CONNECTOR_REFERENCE}: give {name}'s signature"
        return
    if isinstance(obj, int | str):
        assert f"{name} = {obj!r}" in section, f"docs/{CONNECTOR_REFERENCE}: give {name}'s value"
        return
    if not isinstance(obj, type):  # e.g. hookimpl, a pluggy marker: documented in prose
        assert section.strip(), f"docs/{CONNECTOR_REFERENCE}: describe {name}"
        return
    missing: list[str] = []
    if issubclass(obj, BaseModel):
        missing += [f"field `{f}`" for f in obj.model_fields if f"`{f}`" not in section]
        missing += [
            f"property `{p}`"
            for p, raw in vars(obj).items()
            if isinstance(raw, property) and not p.startswith("_") and f"`{p}`" not in section
        ]
    if issubclass(obj, enum.Enum):
        for member in obj:
            missing += [
                f"`{text}`" for text in (member.name, member.value) if f"`{text}`" not in section
            ]
    constructor = _constructor(obj)
    if constructor is not None and constructor not in section:
        missing.append(f"constructor {constructor}")
    if obj is not Connector:  # its methods have headings of their own (tested above)
        missing += [
            f"method {_typed_signature(function)}"
            for _, function in _own_methods(obj)
            if _typed_signature(function) not in section
        ]
    assert not missing, f"docs/{CONNECTOR_REFERENCE}, section {name}, does not document: {missing}"
