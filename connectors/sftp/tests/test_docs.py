"""docs/connectors/sftp.md stays in step with the code: every setting, every column, the
shipped hledger rules."""

from __future__ import annotations

from pathlib import Path

from pleo_export_sftp import SftpSettings, hledger_rules_path
from pleo_export_sftp.layout import COLUMNS

DOC = Path(__file__).resolve().parents[3] / "docs" / "connectors" / "sftp.md"


def test_every_setting_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    missing = [name for name in SftpSettings.model_fields if f"| `{name}` |" not in text]
    assert missing == [], f"docs/connectors/sftp.md lacks a settings row for {missing}"


def test_every_column_is_documented_as_the_code_describes_it() -> None:
    text = DOC.read_text(encoding="utf-8")
    for column, description in COLUMNS.items():
        row = f"| `{column}` | {description.replace('|', chr(92) + '|')} |"
        assert row in text, f"docs/connectors/sftp.md: the row for {column} should read {row}"


def test_the_documented_rules_are_the_shipped_rules() -> None:
    text = DOC.read_text(encoding="utf-8")
    rules = hledger_rules_path().read_text(encoding="utf-8")
    body = "\n".join(line for line in rules.splitlines() if line and not line.startswith("#"))
    assert body in text
