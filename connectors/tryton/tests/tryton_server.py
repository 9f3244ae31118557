"""A real Tryton for the tests: template database, per-module clones and a trytond process.

Tryton lives in its own virtual environment (``connectors/tryton/ci/install-tryton``), found
through ``PLEO_EXPORT_TRYTON_VENV`` (default ``~/.cache/pleo-export/tryton-8.2``). PostgreSQL
is reached at ``PLEO_EXPORT_TRYTON_PG`` (default ``postgresql://postgres@127.0.0.1:5432/``).

* :func:`ensure_template` builds one template database with ``trytond-admin`` and
  ``tryton_template.py``; its name carries a hash of the inputs (the setup script, the spec
  drawn from the sandbox chart, the Tryton version), so it is reused while they are unchanged.
* :func:`clone_database` copies it (``CREATE DATABASE ... TEMPLATE``, what ``createdb -T``
  does) and :func:`drop_database` removes the copy.
* :class:`TrytonServer` runs ``trytond`` for one database on a free loopback port.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from pleo_export import decimals
from pleo_export_sandbox.generator import Chart

TRYTON_SERIES = "8.2"
HERE = Path(__file__).resolve().parent
SETUP_SCRIPT = HERE / "tryton_template.py"
ADMIN_PASSWORD = "pleo-export-admin"  # a throwaway database on loopback only
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/"

# Accounts the connector settings name besides the sandbox chart (code, name, kind).
EXTRA_ACCOUNTS = (
    ("1100", "Trade Debtors", "receivable"),
    ("1299", "Bank Clearing (Pleo contra)", "asset"),
    ("2100", "Trade Creditors", "payable"),
    ("2250", "Employee Out-of-Pocket", "liability"),
    ("7990", "Currency Rounding", "expense"),
)
CURRENCIES = {
    "GBP": ("Pound Sterling", "£"),
    "EUR": ("Euro", "€"),
    "USD": ("US Dollar", "$"),
    "SEK": ("Swedish Krona", "kr"),
    "DKK": ("Danish Krone", "kr."),
    "NOK": ("Norwegian Krone", "kr"),
    "JPY": ("Yen", "¥"),
}
CHART_KINDS = {"expense": "expense", "income": "income", "asset": "asset"}
CHART_KINDS["liability"] = "liability"
MODULES = ("account_invoice", "analytic_account")
EXTRA_COUNTRIES = ("DK", "FI", "NO", "SE")
"""Countries the template creates besides the vendors' (Tryton ships none)."""
"""The Tryton modules the template activates (with their dependencies)."""


class TrytonUnavailable(Exception):
    """Tryton or PostgreSQL is not there: the tests skip (or fail under CI) with this reason."""


def tryton_venv() -> Path:
    default = Path.home() / ".cache" / "pleo-export" / f"tryton-{TRYTON_SERIES}"
    return Path(os.environ.get("PLEO_EXPORT_TRYTON_VENV") or default)


def postgres_url() -> str:
    url = os.environ.get("PLEO_EXPORT_TRYTON_PG") or DEFAULT_PG
    return url if url.endswith("/") else url + "/"


def require_tryton() -> Path:
    """The Tryton environment's ``bin`` folder, or :class:`TrytonUnavailable`."""
    venv = tryton_venv()
    bin_dir = venv / "bin"
    for tool in ("python", "trytond", "trytond-admin"):
        if not (bin_dir / tool).exists():
            raise TrytonUnavailable(
                f"no Tryton {TRYTON_SERIES} environment at {venv} ({tool} missing): run "
                "connectors/tryton/ci/install-tryton or set PLEO_EXPORT_TRYTON_VENV"
            )
    return bin_dir


def tryton_version(bin_dir: Path) -> str:
    result = subprocess.run(
        [str(bin_dir / "python"), "-c", "import trytond; print(trytond.__version__)"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if result.returncode != 0:
        raise TrytonUnavailable(f"the Tryton environment is broken: {result.stderr.strip()}")
    return result.stdout.strip()


def _connect(dbname: str = "postgres") -> Any:
    import psycopg

    url = postgres_url() + dbname
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        raise TrytonUnavailable(
            f"PostgreSQL is not reachable at {postgres_url()}: {error}"
        ) from None


def require_postgres() -> None:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise TrytonUnavailable("psycopg is not installed in the workspace") from None
    with _connect() as connection:
        connection.execute("SELECT 1")


def database_exists(name: str) -> bool:
    with _connect() as connection:
        row = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        return row.fetchone() is not None


def _quoted(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"unexpected database name {name!r}")
    return f'"{name}"'


def create_database(name: str, template: str | None = None) -> None:
    sql = f"CREATE DATABASE {_quoted(name)} ENCODING 'UTF8'"
    if template:
        sql += f" TEMPLATE {_quoted(template)}"
    with _connect() as connection:
        connection.execute(sql)  # type: ignore[arg-type]


def drop_database(name: str) -> None:
    with _connect() as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {_quoted(name)} WITH (FORCE)")  # type: ignore[arg-type]


def rename_database(old: str, new: str) -> None:
    with _connect() as connection:
        connection.execute(f"ALTER DATABASE {_quoted(old)} RENAME TO {_quoted(new)}")  # type: ignore[arg-type]


def clone_database(template: str, name: str) -> None:
    """``createdb -T template name``: a copy of the template's books for one test module."""
    drop_database(name)
    for attempt in range(20):
        try:
            create_database(name, template)
            return
        except Exception as error:  # the template may be briefly in use by another clone
            if "being accessed" not in str(error) or attempt == 19:
                raise
            time.sleep(0.5)


# --- the template -------------------------------------------------------------------------


def template_spec(chart: Chart, currency: str = "GBP") -> dict[str, Any]:
    """What ``tryton_template.py`` creates, drawn from the sandbox's demo chart."""
    accounts = [
        {"code": a.code, "name": a.name, "kind": CHART_KINDS[a.category]}
        for a in chart.ledger_accounts()
    ]
    known = {a["code"] for a in accounts}
    accounts += [
        {"code": code, "name": name, "kind": kind}
        for code, name, kind in EXTRA_ACCOUNTS
        if code not in known
    ]
    if chart.unknown_account_code in {a["code"] for a in accounts}:
        raise AssertionError("the unknown account must stay out of the Tryton chart")
    default_tax_account = next(
        t.ingoing_tax_account for t in chart.tax_codes if t.ingoing_tax_account
    )
    taxes = [
        {
            "name": t.code,
            "description": t.name,
            "rate": str(t.rate),
            "account": t.ingoing_tax_account or default_tax_account,
        }
        for t in chart.tax_codes
    ]
    vendors = [
        {
            "name": v.name,
            "code": v.code,
            "external_id": v.external_id,
            "tax_number": v.tax_registration_number,
            "country": v.country,
        }
        for v in chart.vendors
    ]
    dimensions = [
        {
            "code": g.code,
            "name": g.name,
            "values": [{"code": t.code, "name": t.name} for t in g.tags],
        }
        for g in chart.tag_groups
    ]
    this_year = dt.date.today().year
    return {
        "modules": list(MODULES),
        "countries": sorted({v.country for v in chart.vendors} | set(EXTRA_COUNTRIES)),
        "dimensions": dimensions,
        "company": {"name": "Pleo Sandbox Ltd", "currency": currency},
        "currencies": [
            {"code": code, "name": name, "symbol": symbol, "digits": decimals(code)}
            for code, (name, symbol) in CURRENCIES.items()
        ],
        "accounts": accounts,
        "default_payable": "2100",
        "default_receivable": "1100",
        "taxes": taxes,
        "vendors": vendors,
        "fiscal_years": list(range(2024, this_year + 2)),
        "admin_password": ADMIN_PASSWORD,
    }


def _config_text(files_dir: Path, listen: str | None = None) -> str:
    lines = [
        "[database]",
        f"uri = {postgres_url()}",
        f"path = {files_dir}",
        "",
        "[session]",
        "max_attempt = 1000",
        "",
    ]
    if listen:
        lines += ["[web]", f"listen = {listen}", ""]
    return "\n".join(lines)


def template_name(spec: dict[str, Any], version: str) -> str:
    digest = hashlib.sha256()
    digest.update(SETUP_SCRIPT.read_bytes())
    digest.update(json.dumps(spec, sort_keys=True).encode())
    digest.update(version.encode())
    return f"pleo_tryton_tpl_{digest.hexdigest()[:12]}"


def ensure_template(spec: dict[str, Any]) -> str:
    """The template database for ``spec``, built now if it does not exist yet."""
    bin_dir = require_tryton()
    require_postgres()
    version = tryton_version(bin_dir)
    name = template_name(spec, version)
    if database_exists(name):
        return name
    building = f"{name}_build_{os.getpid()}"
    work = Path(tempfile.mkdtemp(prefix="pleo-tryton-template-"))
    try:
        config = work / "trytond.conf"
        config.write_text(_config_text(work / "files"), encoding="utf-8")
        passfile = work / "password"
        passfile.write_text(ADMIN_PASSWORD + "\n", encoding="utf-8")
        spec_file = work / "spec.json"
        spec_file.write_text(json.dumps(spec), encoding="utf-8")
        drop_database(building)
        create_database(building)
        env = {**os.environ, "TRYTONPASSFILE": str(passfile)}
        steps = [
            [
                str(bin_dir / "trytond-admin"),
                "-c",
                str(config),
                "-d",
                building,
                "--all",
                "-u",
                *spec.get("modules", MODULES),
                "--activate-dependencies",
                "--email",
                "admin@example.com",
            ],
            [str(bin_dir / "python"), str(SETUP_SCRIPT), str(config), building, str(spec_file)],
        ]
        for command in steps:
            result = subprocess.run(
                command, capture_output=True, text=True, env=env, check=False, timeout=900
            )
            if result.returncode != 0:
                raise RuntimeError(
                    f"building the Tryton template failed: {' '.join(command)}\n"
                    f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
                )
        try:
            rename_database(building, name)
        except Exception:
            if not database_exists(name):  # another process may have won the race
                raise
        return name
    finally:
        drop_database(building)
        shutil.rmtree(work, ignore_errors=True)


# --- the server ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class TrytonServer:
    """``trytond`` serving one database on a loopback port until :meth:`stop`."""

    database: str
    work_dir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    user: str = "admin"
    password: str = ADMIN_PASSWORD

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.work_dir / "trytond.log"

    def start(self, timeout: float = 120.0) -> None:
        bin_dir = require_tryton()
        self.work_dir.mkdir(parents=True, exist_ok=True)
        config = self.work_dir / "trytond.conf"
        config.write_text(
            _config_text(self.work_dir / "files", f"127.0.0.1:{self.port}"), encoding="utf-8"
        )
        log = self.log_file.open("ab")
        self.process = subprocess.Popen(
            [str(bin_dir / "trytond"), "-c", str(config), "-d", self.database],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.work_dir,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"trytond exited with {self.process.returncode}:\n{self.tail()}")
            if self._ready():
                return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(
            f"trytond did not answer on {self.url} within {timeout}s:\n{self.tail()}"
        )

    def _ready(self) -> bool:
        body = {
            "id": 0,
            "method": "common.db.login",
            "params": [self.user, {"password": self.password}, "en"],
        }
        try:
            response = httpx.post(f"{self.url}/{self.database}/rpc/", json=body, timeout=30)
        except httpx.TransportError:
            return False
        return response.status_code == 200 and "result" in response.json()

    def tail(self, lines: int = 60) -> str:
        if not self.log_file.exists():
            return ""
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
        self.process = None


@contextlib.contextmanager
def running_clone(template: str, name: str, work_dir: Path) -> Iterator[TrytonServer]:
    """A clone of ``template`` named ``name`` served by trytond; dropped afterwards."""
    clone_database(template, name)
    server = TrytonServer(database=name, work_dir=work_dir)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        drop_database(name)


def unique_database_name(prefix: str) -> str:
    cleaned = "".join(c if c.isalnum() else "_" for c in prefix.lower())[:30]
    return f"pleo_tryton_{cleaned}_{secrets.token_hex(3)}"


if __name__ == "__main__":  # build the template by hand: python tryton_server.py
    from pleo_export_sandbox import DEMO_CHART

    print(ensure_template(template_spec(DEMO_CHART)), file=sys.stdout)
