"""Secrets never appear in logs, reports, exceptions or anything sent to Pleo.

One module-scoped session serves the sandbox over loopback HTTP, with a company whose API key
is a known secret, and installs a throwaway connector distribution (``vault``) whose settings
carry a password and an API token as :class:`~pydantic.SecretStr` (given through environment
variables, as documented). The connector uses its secrets the way a real client library
does: it logs in with them, and its errors quote a connection string with the password and a
URL with the token. Then, with every logger at DEBUG (``httpx`` and ``httpcore`` included):

1. an export in process, through the real wiring (:func:`pleo_export.app.open_session`), with
   pleo-export's own logging configured as the CLI does (JSON, DEBUG): some items are posted,
   some fail with errors that quote the secrets;
2. the same connector refusing to log in, quoting its password: the job fails pre-export
   validation;
3. a run with a wrong API key (itself a secret), which raises;
4. ``pleo-export run --json`` and ``pleo-export run`` (text) as subprocesses, and
   ``pleo-export jobs``, reading the outcomes back from the state store;
5. an OAuth partner installation exporting while its tokens expire and rotate.

Everything is searched with :class:`tests.support.secrets.SecretScanner`: every log record
(message, arguments, each ``extra`` field, tracebacks, and the record rendered by pleo-export's
text and JSON formatters), the log stream as written, the run reports, the exceptions with their
chains, CLI stdout and stderr, the request bodies Pleo received, and the state database file.
"""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest

from pleo_export import logs
from pleo_export.config import load_settings
from pleo_export_sandbox import Sandbox, SandboxConfig
from pleo_export_sandbox.server import running_server
from tests.support.dists import make_distribution
from tests.support.openapi import OpenApiContract
from tests.support.secrets import SecretScanner, capture_logs

API_KEY = "pleo-api-key-7f3c9a1e5b2d4c68a0e1f2b3c4d5e6f7"
WRONG_API_KEY = "pleo-api-key-0000wrong1111key2222nope3333"
PASSWORD = "ledger-pw-Zq8!rT4#mN2$vB6"
API_TOKEN = "ledger-token-4b1e9c7d2a8f6e3b5c0d"
LEDGER_USER = "pleo-sync"
COMPANY_ID = "0b7d2c4e-1a3f-4e5b-9c8d-7e6f5a4b3c2d"

CONNECTOR = '''
"""A connector whose client library quotes its secrets in errors (a fixture)."""

import base64
import json
from datetime import UTC, datetime
from pathlib import Path

from pydantic import SecretStr

from pleo_export import (
    Capability, Connector, ConnectorManifest, ConnectorSettings, ExternalRecord, ItemRejected,
    JobRejected, PreparedEntry, ResolvedEntry, ResolvedPosting,
)
from pleo_export.pleo.models import ExportJobFailureReasonType, ExportJobItemFailureReasonType


class LedgerLibraryError(Exception):
    pass


class VaultSettings(ConnectorSettings):
    url: str
    user: str
    password: SecretStr
    api_token: SecretStr
    ledger: Path
    fail_login: bool = False


class VaultConnector(Connector[VaultSettings]):
    manifest = ConnectorManifest(
        id="vault",
        display_name="Ledger with secrets",
        capabilities=frozenset({Capability.JOURNAL, Capability.ACCOUNTS_PAYABLE,
                                Capability.LOOKUP_BY_REFERENCE}),
        settings_model=VaultSettings,
    )

    def _dsn(self):
        s = self.settings
        return f"postgresql://{s.user}:{s.password.get_secret_value()}@127.0.0.1:9/ledger"

    async def open(self):
        s = self.settings
        pair = f"{s.user}:{s.password.get_secret_value()}".encode()
        self._auth = "Basic " + base64.b64encode(pair).decode()
        self.context.logger.debug("logging in", extra={"event": "vault.login", "url": s.url})
        if s.fail_login:
            raise JobRejected(
                ExportJobFailureReasonType.ACCOUNTING_SYSTEM_AUTHENTICATION_FAILURE,
                f"login refused by {self._dsn()}: check user and password",
            )
        self._posted = {}
        if s.ledger.exists():
            for line in s.ledger.read_text().splitlines():
                row = json.loads(line)
                self._posted[row["reference"]] = row["exported_at"]

    async def check(self, job):
        return None

    async def prepare(self, plan):
        ref = plan.reference
        if ref[0] in "01":
            url = f"{self.settings.url}/accounts?token={self.settings.api_token.get_secret_value()}"
            raise LedgerLibraryError(f"GET {url} answered 500")
        for posting in plan.postings:
            if posting.account.code == "6999":
                raise ItemRejected(ExportJobItemFailureReasonType.ACCOUNT_UNKNOWN,
                                   f"account 6999 on {posting.field} is not in the ledger")
        entries = tuple(
            ResolvedEntry(kind=e.kind, date=e.date, narration=e.narration,
                          postings=tuple(ResolvedPosting.from_posting(p, p.account.role.value)
                                         for p in e.postings))
            for e in plan.entries
        )
        return PreparedEntry(plan=plan, entries=entries)

    async def find_existing(self, reference):
        at = self._posted.get(reference)
        return None if at is None else self._record(reference, at)

    async def post(self, prepared):
        ref = prepared.plan.reference
        if ref[0] in "23":
            raise LedgerLibraryError(f"server closed the connection to {self._dsn()}")
        at = datetime.now(UTC).isoformat()
        with self.settings.ledger.open("a") as handle:
            handle.write(json.dumps({"reference": ref, "exported_at": at}) + "\\n")
        self._posted[ref] = at
        self.context.logger.debug("posted", extra={"event": "vault.posted", "reference": ref})
        return self._record(ref, at)

    def _record(self, reference, at):
        return ExternalRecord(external_id=f"V-{reference[:8]}",
                              exported_at=datetime.fromisoformat(at))
'''


@dataclass
class Evidence:
    scanner: SecretScanner
    loggers: Counter[str] = field(default_factory=Counter)
    """Log records searched, by logger name."""
    report: dict[str, Any] = field(default_factory=dict)
    """The in-process run's report (JSON form)."""
    cli: dict[str, subprocess.CompletedProcess[str]] = field(default_factory=dict)
    failure_reasons: list[str] = field(default_factory=list)
    """Every failureReason Pleo received."""
    raised: list[BaseException] = field(default_factory=list)


def _scanner() -> SecretScanner:
    scanner = SecretScanner()
    scanner.add("pleo api key", API_KEY, basic_user=True)
    scanner.add("wrong pleo api key", WRONG_API_KEY, basic_user=True)
    scanner.add_basic("ledger password", LEDGER_USER, PASSWORD)
    scanner.add("ledger api token", API_TOKEN)
    return scanner


def _config(directory: Path, base_url: str, *, fail_login: bool = False) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "pleo-export.toml"
    path.write_text(
        f"""
[pleo]
base_url = "{base_url}"
company_id = "{COMPANY_ID}"

[state]
url = "sqlite:///state.db"

[engine]
post_attempts = 1

[connector]
name = "vault"

[connector.settings]
url = "https://ledger.example.invalid/api"
user = "{LEDGER_USER}"
ledger = "ledger.jsonl"
fail_login = {"true" if fail_login else "false"}
""",
        encoding="utf-8",
    )
    return path


def _env(api_key: str = API_KEY) -> dict[str, str]:
    return {
        "PLEO_EXPORT_PLEO__API_KEY": api_key,
        "PLEO_EXPORT_VAULT_PASSWORD": PASSWORD,
        "PLEO_EXPORT_VAULT_API_TOKEN": API_TOKEN,
    }


def _cli(
    *args: str, cwd: Path, site: Path, api_key: str = API_KEY
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **_env(api_key)}
    env.pop("PLEO_EXPORT_CONFIG", None)
    env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "pleo_export.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def evidence(
    tmp_path_factory: pytest.TempPathFactory, openapi_contract: OpenApiContract
) -> Evidence:
    root = tmp_path_factory.mktemp("secrets")
    site = make_distribution(
        root / "site",
        "pleo-export-vault-fixture",
        "0.0.1",
        {"pleo_export.connectors": {"vault": "vault_fixture_connector:VaultConnector"}},
        {"vault_fixture_connector": CONNECTOR},
    )
    scanner = _scanner()
    found = Evidence(scanner)
    sandbox = Sandbox(SandboxConfig())
    sandbox.add_company("Secretive Ltd", "GBP", company_id=COMPANY_ID, api_key=API_KEY)
    violations: list[str] = []

    def check(record: Any) -> None:
        try:
            openapi_contract.check_exchange(record)
        except AssertionError as error:
            violations.append(str(error))

    sandbox.on_exchange = check

    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(site))
        for name, value in _env().items():
            patch.setenv(name, value)
        patch.delenv("PLEO_EXPORT_CONFIG", raising=False)
        stream = io.StringIO()
        with capture_logs() as records:
            anyio.run(_in_process, sandbox, root, site, found, stream)
        found.loggers.update(record.name for record in records)
        scanner.scan_records(records)
        scanner.scan_text("pleo-export's log stream", stream.getvalue())

    for record in sandbox.requests:
        scanner.scan_object(f"request to Pleo {record.method} {record.path}", record.body)
        if record.method == "PUT" and isinstance(record.body, list):
            found.failure_reasons += [
                element["failureReason"] for element in record.body if "failureReason" in element
            ]
        body = record.body
        if record.path == "/v3/export-job-events" and isinstance(body, dict) and body:
            found.failure_reasons += [body["failureReason"]] if "failureReason" in body else []
    for name, result in found.cli.items():
        scanner.scan_text(f"`{name}` stdout", result.stdout)
        scanner.scan_text(f"`{name}` stderr", result.stderr)
    for database in root.rglob("state.db*"):
        scanner.scan_text(f"state database {database.name}", database.read_bytes())
    for error in found.raised:
        scanner.scan_exception("raised", error)
    assert violations == []
    return found


async def _in_process(
    sandbox: Sandbox, root: Path, site: Path, found: Evidence, stream: io.StringIO
) -> None:
    from pleo_export.app import open_session
    from pleo_export.pleo.errors import AuthenticationFailed

    scanner = found.scanner
    async with running_server(sandbox) as base_url:
        # 1. An export through the real wiring, logging configured as the CLI does.
        sandbox.queue_export(COMPANY_ID, count=40, seed=71, unknown_account_rate=0.1)
        logs.configure(level="debug", fmt="json", stream=stream)
        _debug_everywhere()
        settings = load_settings(_config(root / "run", base_url))
        async with open_session(settings) as session:
            report = await _runner(session).run_pending()
            scanner.scan_object("session settings", session.settings)
            scanner.scan_object("connector", session.connector.settings)
        found.report = report.to_json()
        scanner.scan_object("run report", found.report)
        for job in report.jobs:
            scanner.scan_text("run report summary", job.summary())

        # 2. The connector refuses to log in, quoting its password.
        sandbox.queue_export(COMPANY_ID, count=5, seed=72)
        settings = load_settings(_config(root / "login", base_url, fail_login=True))
        async with open_session(settings) as session:
            refused = await _runner(session).run_pending()
        scanner.scan_object("login-refused report", refused.to_json())
        assert refused.jobs and refused.jobs[0].final_event == "failed"

        # 3. A wrong API key: Pleo answers 401 and the run raises.
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("PLEO_EXPORT_PLEO__API_KEY", WRONG_API_KEY)
            settings = load_settings(_config(root / "wrong-key", base_url))
            with pytest.raises(AuthenticationFailed) as raised:
                async with open_session(settings) as session:
                    await _runner(session).run_pending()
        found.raised.append(raised.value)

        # 4. The command line, as a user runs it.
        sandbox.queue_export(COMPANY_ID, count=30, seed=73, unknown_account_rate=0.1)
        cli_dir = root / "cli"
        config = _config(cli_dir, base_url)

        def run_cli(name: str, *args: str, api_key: str = API_KEY) -> None:
            found.cli[name] = _cli(*args, cwd=cli_dir, site=site, api_key=api_key)

        debug = ("--config", str(config), "--log-level", "debug")
        await anyio.to_thread.run_sync(
            lambda: run_cli("run --json", *debug, "--log-format", "json", "run", "--json")
        )
        sandbox.queue_export(COMPANY_ID, count=30, seed=74, unknown_account_rate=0.1)
        await anyio.to_thread.run_sync(lambda: run_cli("run", *debug, "run", "-q"))
        await anyio.to_thread.run_sync(
            lambda: run_cli("run (wrong key)", *debug, "run", api_key=WRONG_API_KEY)
        )
        job_id = found.report["jobs"][0]["job_id"]
        await anyio.to_thread.run_sync(
            lambda: run_cli("jobs", "--config", str(root / "run" / "pleo-export.toml"), "jobs")
        )
        await anyio.to_thread.run_sync(
            lambda: run_cli(
                "jobs --job",
                "--config",
                str(root / "run" / "pleo-export.toml"),
                "jobs",
                "--job",
                job_id,
                "--json",
            )
        )
    _unconfigure_logging()


def _runner(session: Any) -> Any:
    worker = getattr(session, "worker", None)
    return worker if worker is not None else session.engine


def _debug_everywhere() -> None:
    """``logs.configure`` quiets httpx; the test wants every logger's every record."""
    for name in ("httpx", "httpcore", "uvicorn", "uvicorn.error", "pleo_export"):
        logging.getLogger(name).setLevel(logging.DEBUG)


def _unconfigure_logging() -> None:
    """Undo ``logs.configure`` so later tests in this process see the default logging."""
    root = logging.getLogger("pleo_export")
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.setLevel(logging.NOTSET)
    logging.getLogger("httpx").setLevel(logging.NOTSET)


# --- the verdict -----------------------------------------------------------------------------


def test_no_secret_anywhere(evidence: Evidence) -> None:
    evidence.scanner.assert_clean()


def test_the_search_covered_what_it_claims(evidence: Evidence) -> None:
    """Guards the verdict: the runs did what they should, and the search saw it."""
    loggers = evidence.loggers
    for name in ("pleo_export.engine", "pleo_export.pleo.client", "httpx", "httpcore.http11"):
        assert loggers[name] > 10, loggers
    assert loggers["pleo_export.connector.vault"] > 0, loggers
    totals = evidence.report["totals"]
    assert totals["posted"] > 0 and totals["failed"] > 0
    reasons = {f["reason_type"] for job in evidence.report["jobs"] for f in job["failures"]}
    assert "unexpected_failure" in reasons
    # The failures that quoted secrets reached Pleo, with the secrets replaced.
    assert any("postgresql://" in reason for reason in evidence.failure_reasons)
    assert any("token=" in reason for reason in evidence.failure_reasons)
    assert any("login refused" in reason for reason in evidence.failure_reasons)
    assert all("***" in r for r in evidence.failure_reasons if "postgresql://" in r)
    run_json = evidence.cli["run --json"]
    assert run_json.returncode == 1, run_json.stderr  # some items failed, on purpose
    assert json.loads(run_json.stdout)["totals"]["posted"] > 0
    assert '"level": "debug"' in run_json.stderr
    assert evidence.cli["run"].returncode == 1
    wrong = evidence.cli["run (wrong key)"]
    assert wrong.returncode == 3 and "401" in wrong.stderr
    assert evidence.cli["jobs --job"].returncode == 0
    assert "postgresql://" in evidence.cli["jobs --job"].stdout
    assert evidence.raised and "401" in str(evidence.raised[0])
    assert evidence.scanner.scanned > 1000


# --- OAuth: a partner installation whose tokens expire and rotate during the export ----------


@dataclass
class OAuthEvidence:
    scanner: SecretScanner
    secrets: int
    refreshes: int
    loggers: Counter[str]


@pytest.fixture(scope="module")
def oauth_evidence(
    tmp_path_factory: pytest.TempPathFactory, openapi_contract: OpenApiContract
) -> OAuthEvidence:
    """An export on OAuth tokens (login, proactive refreshes, a refresh after a 401) with every
    logger at DEBUG; then every token, code, verifier and the client secret are searched for."""
    from pleo_export_sandbox.oauth import OAuthConfig
    from tests.oauth.conftest import SharedClock, build_env

    directory = tmp_path_factory.mktemp("oauth-secrets")
    env = build_env(directory, SharedClock(), openapi_contract, OAuthConfig(access_token_ttl=300))
    job = env.sandbox.queue_export(env.company.id, count=20, seed=75)
    stream = io.StringIO()
    outcome: dict[str, Any] = {}

    async def main() -> None:
        from pleo_export.connector import ConnectorContext
        from pleo_export.engine import EngineOptions, ExportEngine
        from pleo_export.host import PluginHost
        from pleo_export.ledger import PreparedEntry
        from tests.support.memory import MemoryConnector, MemorySettings, fresh_target

        target = fresh_target()

        def on_post(prepared: PreparedEntry) -> None:
            env.clock.advance(60)  # 20 posts: 1,200 s on 300 s tokens
            if target.post_calls == 10:
                env.sandbox.oauth.expire_access_tokens()

        target.post_hook = on_post
        async with env.installation(refresh_margin=30) as installation:
            await env.login(installation)
            client = env.pleo_client(installation.auth())
            context = ConnectorContext(
                logger=logging.getLogger("pleo_export.connector.memory"),
                fetch_attachment=client.download,
                work_dir=directory,
            )
            async with client:
                engine = ExportEngine(
                    client=client,
                    connector=MemoryConnector(MemorySettings(), context),
                    store=installation.store,
                    hooks=PluginHost(load_entry_points=False),
                    options=EngineOptions(company_id=env.company.id, report_batch_size=5),
                )
                outcome["report"] = await engine.run_pending()
            outcome["refreshes"] = installation.manager.refreshes

    logs.configure(level="debug", fmt="json", stream=stream)
    try:
        with capture_logs() as records:
            _debug_everywhere()
            anyio.run(main)
    finally:
        _unconfigure_logging()
    assert env.sandbox.get_job(job.id).status.value == "completed"
    scanner = SecretScanner()
    secrets = env.token_secrets()
    for n, value in enumerate(sorted(secrets)):
        scanner.add(f"oauth secret #{n}", value)
    scanner.add_basic("oauth client secret", env.client.client_id, env.client.client_secret)
    scanner.scan_records(records)
    scanner.scan_text("pleo-export's log stream", stream.getvalue())
    scanner.scan_object("run report", outcome["report"].to_json())
    for database in directory.rglob("*.db*"):
        # The token store holds the current tokens by design; the spent ones must be gone.
        current = {t for t in secrets if t.encode() in database.read_bytes()}
        assert len(current) <= 2, "spent tokens are still in the state database"
    loggers = Counter(record.name for record in records)
    return OAuthEvidence(scanner, len(secrets), outcome["refreshes"], loggers)


def test_no_oauth_secret_in_logs_or_reports(oauth_evidence: OAuthEvidence) -> None:
    oauth_evidence.scanner.assert_clean()
    assert oauth_evidence.refreshes >= 3  # on time, and once after the forced 401
    assert oauth_evidence.secrets >= 2 * oauth_evidence.refreshes
    assert oauth_evidence.loggers["pleo_export.oauth"] > 0, oauth_evidence.loggers
    assert oauth_evidence.loggers["pleo_export.engine"] > 20
