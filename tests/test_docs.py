"""Keep the reference documentation in step with the code.

- every hookspec in :mod:`pleo_export.hookspecs` has a heading in ``docs/hooks.md`` with its
  exact signature, and every hook heading there names a real hookspec;
- every setting of :class:`pleo_export.config.Settings` appears in ``docs/configuration.md``
  as ``section.key``;
- the type tables in ``docs/bookkeeping.md`` match the dictionaries in
  :mod:`pleo_export.bookkeeping`.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from pleo_export import bookkeeping, hookspecs
from pleo_export.config import Settings

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


def _table(marker: str) -> set[tuple[str, ...]]:
    text = (DOCS / "bookkeeping.md").read_text(encoding="utf-8")
    match = re.search(rf"<!-- {marker} -->(.*?)<!-- /{marker} -->", text, re.DOTALL)
    assert match, f"docs/bookkeeping.md has no table between <!-- {marker} --> markers"
    rows: set[tuple[str, ...]] = set()
    for line in match.group(1).splitlines():
        cells = [cell.strip().strip("`") for cell in line.strip().strip("|").split("|")]
        if len(cells) > 1 and not set(cells[0]) <= {"-", " ", ":"} and cells[0] != "type":
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
