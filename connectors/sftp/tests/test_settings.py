"""Settings: every refusal names the setting and says what to change; secrets stay secret."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from pleo_export.config import ConfigError, connector_settings
from pleo_export_sftp import SftpConnector, SftpSettings
from pleo_export_sftp.settings import PER_JOB_BATCH_SIZE


def _sftp(tmp_path: Path, **values: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "host": "127.0.0.1",
        "username": "pleo",
        "known_hosts": str(tmp_path / "known_hosts"),
        "private_key": str(tmp_path / "id_ed25519"),
    }
    base.update(values)
    return base


def _error(tmp_path: Path, values: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        connector_settings(SftpConnector.manifest, values, tmp_path)
    return str(caught.value)


@pytest.mark.parametrize(
    ("values", "field", "hint"),
    [
        ({}, "(settings)", "exactly one of host"),
        ({"local_dir": "out", "host": "h"}, "(settings)", "exactly one of host"),
        ({"host": "h"}, "(settings)", "known_hosts"),
        ({"host": "h", "username": "u", "known_hosts": "kh"}, "(settings)", "private_key"),
        ({"local_dir": "out", "delimiter": ";;"}, "delimiter", "one character"),
        ({"local_dir": "out", "delimiter": "."}, "delimiter", "one character"),
        (
            {"local_dir": "out", "delimiter": ";", "decimal_separator": ";"},
            "decimal_separator",
            "Input should be",
        ),
        (
            {"local_dir": "out", "delimiter": ",", "decimal_separator": ","},
            "(settings)",
            "delimiter ';'",
        ),
        ({"local_dir": "out", "columns": ["date", "nonsense"]}, "columns", "nonsense"),
        ({"local_dir": "out", "columns": ["date", "amount"]}, "columns", "entry_id"),
        ({"local_dir": "out", "columns": ["entry_id", "debit"]}, "columns", "debit and credit"),
        ({"local_dir": "out", "columns": ["entry_id", "date"]}, "columns", "amount"),
        ({"local_dir": "out", "encoding": "klingon"}, "encoding", "utf-8"),
        ({"local_dir": "out", "encoding": "utf-16"}, "encoding", "byte-oriented"),
        ({"local_dir": "out", "encoding": "rot13"}, "encoding", "text encoding"),
        ({"local_dir": "out", "date_format": "%H:%M"}, "date_format", "day, month and year"),
        ({"local_dir": "out", "batch_size": 0}, "batch_size", '"job"'),
        ({"local_dir": "out", "file_prefix": "../up"}, "file_prefix", "letters, digits"),
        ({"local_dir": "out", "manifest_name": "a/b.json"}, "manifest_name", "letters"),
        ({"local_dir": "out", "wallet_account": " "}, "wallet_account", "empty"),
        ({"local_dir": "out", "account_map": {"6100": ""}}, "account_map", "'6100'"),
        ({"local_dir": "out", "remote_dir": "a\nb"}, "remote_dir", "control characters"),
        ({"local_dir": "out", "port": 0}, "port", "greater than"),
        ({"local_dir": "out", "colums": []}, "colums", "Extra inputs"),
    ],
)
def test_refusals_name_the_setting(
    tmp_path: Path, values: dict[str, Any], field: str, hint: str
) -> None:
    message = _error(tmp_path, values)
    assert f"  - {field}:" in message or (field == "(settings)" and "(settings)" in message), (
        message
    )
    assert hint in message, message


def test_sftp_settings_resolve_paths_and_read_secrets_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLEO_EXPORT_SFTP_PASSWORD", "hunter2-secret")
    settings = connector_settings(
        SftpConnector.manifest,
        _sftp(tmp_path, private_key=None, known_hosts="keys/known_hosts"),
        tmp_path,
    )
    assert isinstance(settings, SftpSettings)
    assert settings.known_hosts == (tmp_path / "keys" / "known_hosts").resolve()
    assert settings.password is not None
    assert settings.password.get_secret_value() == "hunter2-secret"
    assert "hunter2-secret" not in repr(settings)
    assert "hunter2-secret" not in settings.destination


def test_secrets_never_reach_error_messages(tmp_path: Path) -> None:
    message = _error(
        tmp_path, _sftp(tmp_path, password="hunter2-secret", port=-5, private_key=None)
    )
    assert "port" in message and "hunter2-secret" not in message


def test_batch_size_per_job_and_defaults(tmp_path: Path) -> None:
    assert SftpSettings(local_dir=tmp_path).engine_batch_size == 1000
    assert (
        SftpSettings(local_dir=tmp_path, batch_size="job").engine_batch_size == PER_JOB_BATCH_SIZE
    )
    assert SftpSettings(local_dir=tmp_path, batch_size=25).engine_batch_size == 25


def test_batch_size_reaches_the_engine(tmp_path: Path) -> None:
    from pleo_export import ConnectorContext

    async def fetch(file: Any) -> bytes:
        raise AssertionError("no download expected")

    context = ConnectorContext(
        logger=logging.getLogger("test"), fetch_attachment=fetch, work_dir=tmp_path
    )
    connector = SftpConnector(SftpSettings(local_dir=tmp_path, batch_size=7), context)
    assert connector.batch_size() == 7


def test_scaffold_gives_a_working_local_setup(tmp_path: Path) -> None:
    from pleo_export_sandbox import DEMO_CHART

    values = SftpConnector.scaffold(tmp_path, DEMO_CHART, "GBP")
    assert (tmp_path / "outbox").is_dir()
    settings = connector_settings(SftpConnector.manifest, values, tmp_path)
    assert isinstance(settings, SftpSettings)
    assert settings.local_dir == (tmp_path / "outbox").resolve()
    assert settings.accounts is not None and "6100" in settings.accounts
    assert DEMO_CHART.unknown_account_code not in settings.accounts
    assert settings.vendor_accounts["V1001"] == "2100:V1001"
