"""Two real ``pleo-export run`` worker processes, ten sandbox companies, one PostgreSQL.

The sandbox is served over loopback HTTP by a thread of the test process, so the test reads its
own record of what happened (:class:`~pleo_export_sandbox.audit.JobAudit`) directly. Every
worker has its own organisation-level API key covering all ten companies, which is how the
audit tells the workers apart. The target is beancount with one ledger per company
(``[connector.companies."<id>"]``), checked with beancount's loader afterwards.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import httpx

from pleo_export_sandbox import DEMO_CHART, Sandbox, SandboxConfig
from pleo_export_sandbox.app import RequestRecord
from pleo_export_sandbox.audit import JobAudit
from pleo_export_sandbox.server import running_server

REPO = Path(__file__).resolve().parents[2]

COMPANIES = 10
JOBS_PER_COMPANY = 3
ITEMS_PER_JOB = 8


@dataclass
class World:
    """One sandbox with its companies and queued exports, served on loopback."""

    sandbox: Sandbox
    audit: JobAudit
    companies: list[str]
    keys: dict[str, str]
    """worker name -> its organisation API key."""
    credentials: dict[str, str]
    """worker name -> the sandbox credential id of its key (as the audit records it)."""
    base_url: str = ""

    def state(self) -> dict[str, Any]:
        """The sandbox's admin view (``GET /_sandbox/state``), fetched over HTTP."""
        response = httpx.get(f"{self.base_url}/_sandbox/state", timeout=10)
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def all_finished(self) -> bool:
        state = self.state()
        jobs = state["jobs"]
        return len(jobs) == COMPANIES * JOBS_PER_COMPANY and all(
            job["status"] in ("completed", "completed_with_errors", "failed") for job in jobs
        )


def build_world(seed: int) -> World:
    sandbox = Sandbox(
        SandboxConfig(rate_limit_per_minute=1_000_000, large_file_rate=0.0, job_expires_in=3600)
    )
    companies: list[str] = []
    for n in range(COMPANIES):
        company = sandbox.add_company(name=f"Company {n}", wallet_currency="GBP")
        companies.append(company.id)
        for k in range(JOBS_PER_COMPANY):
            sandbox.schedule_export(
                company.id,
                count=ITEMS_PER_JOB,
                seed=seed * 1000 + n * 10 + k,
                attachments=False,
            )
    keys: dict[str, str] = {}
    credentials: dict[str, str] = {}
    for worker in ("a", "b"):
        credential = sandbox.add_organisation_key(companies)
        keys[worker] = credential.secret
        credentials[worker] = credential.id
    audit = JobAudit.attach(sandbox)
    return World(sandbox, audit, companies, keys, credentials)


@contextmanager
def served(world: World) -> Iterator[World]:
    """Serve ``world.sandbox`` on 127.0.0.1 from a thread while the block runs."""
    ready = threading.Event()
    stop = threading.Event()
    failure: list[BaseException] = []

    async def serve() -> None:
        async with running_server(world.sandbox, port=0) as url:
            world.base_url = url
            ready.set()
            await anyio.to_thread.run_sync(stop.wait)

    def main() -> None:
        try:
            anyio.run(serve)
        except BaseException as error:  # reported to the test thread
            failure.append(error)
            ready.set()

    thread = threading.Thread(target=main, name="sandbox-server", daemon=True)
    thread.start()
    if not ready.wait(30) or failure:
        raise RuntimeError(f"the sandbox server did not start: {failure}")
    try:
        yield world
    finally:
        stop.set()
        thread.join(30)


def write_config(world: World, directory: Path, state_url: str, *, lease_ttl: float) -> Path:
    """The configuration both workers share: every company, one ledger each, one database."""
    from pleo_export_beancount import BeancountConnector

    lines = [
        "[pleo]",
        f'base_url = "{world.base_url}"',
        "company_ids = [" + ", ".join(json.dumps(c) for c in world.companies) + "]",
        "requests_per_minute = 600",
        "",
        "[state]",
        f"url = {json.dumps(state_url)}",
        "",
        "[engine]",
        f"lease_ttl = {lease_ttl}",
        "poll_interval = 0.3",
        "report_interval = 0.05",
        "",
        "[log]",
        'level = "info"',
        'format = "json"',
        "",
        "[connector]",
        'name = "beancount"',
        "",
    ]
    for n, company in enumerate(world.companies):
        books = directory / f"books-{n}"
        values = BeancountConnector.scaffold(books, DEMO_CHART, "GBP")
        lines.append(f"[connector.companies.{json.dumps(company)}]")
        for key, value in values.items():
            lines.append(f"{key} = {json.dumps(str(books / value))}")
        lines.append("")
    config = directory / "pleo-export.toml"
    config.write_text("\n".join(lines), encoding="utf-8")
    return config


def ledger_of(directory: Path, n: int) -> Path:
    return directory / f"books-{n}" / "ledger" / "main.beancount"


@dataclass
class WorkerProcess:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def events(self) -> list[dict[str, Any]]:
        """The worker's JSON log lines (stderr)."""
        found: list[dict[str, Any]] = []
        for line in self.log_path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    found.append(json.loads(line))
                except ValueError:
                    continue
        return found

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])


def start_worker(
    world: World,
    config: Path,
    name: str,
    directory: Path,
    *,
    watch: bool,
    worker_id: str | None = "",
    log_name: str | None = None,
    extra: tuple[str, ...] = (),
) -> WorkerProcess:
    """Start ``pleo-export run`` with worker ``name``'s key. ``worker_id``: ``""`` for
    ``worker-<name>``, ``None`` for the default identity (no ``engine.worker_id``)."""
    env = {
        **os.environ,
        "PLEO_EXPORT_PLEO__API_KEY": world.keys[name],
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("PLEO_EXPORT_CONFIG", None)
    env.pop("PLEO_EXPORT_ENGINE__WORKER_ID", None)
    if worker_id is not None:
        env["PLEO_EXPORT_ENGINE__WORKER_ID"] = worker_id or f"worker-{name}"
    log_path = directory / f"{log_name or f'worker-{name}'}.log"
    command = [sys.executable, "-m", "pleo_export", "--config", str(config), "run", "--quiet"]
    if watch:
        command.append("--watch")
    command.extend(extra)
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # the test waits for or kills it
            command, cwd=directory, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    return WorkerProcess(name, process, log_path)


def stop_worker(worker: WorkerProcess) -> None:
    if worker.process.poll() is None:
        worker.process.send_signal(signal.SIGTERM)
        try:
            worker.process.wait(15)
        except subprocess.TimeoutExpired:
            worker.process.kill()
            worker.process.wait(15)


class KillOnPut:
    """Observer: SIGKILL ``target`` once the sandbox has applied its ``nth`` item update
    (a moment when the worker is inside a job: it holds the company's lease, some outcomes
    are reported and the job is not completed)."""

    def __init__(self, credential_id: str, nth: int) -> None:
        self.credential_id = credential_id
        self.nth = nth
        self.seen = 0
        self.pid: int | None = None
        self.killed_during: str | None = None
        """The job whose item update triggered the kill."""

    def __call__(self, record: RequestRecord) -> None:
        if (
            self.pid is None
            or self.killed_during is not None
            or record.credential_id != self.credential_id
            or record.method != "PUT"
            or record.status != 200
        ):
            return
        self.seen += 1
        if self.seen >= self.nth:
            self.killed_during = record.path.split("/")[3]
            os.kill(self.pid, signal.SIGKILL)


@dataclass
class LedgerCheck:
    transactions: Counter[tuple[str, str]] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)

    @property
    def references(self) -> set[str]:
        return {reference for reference, _ in self.transactions}

    @property
    def duplicates(self) -> dict[tuple[str, str], int]:
        return {key: n for key, n in self.transactions.items() if n != 1}


def read_ledger(path: Path) -> LedgerCheck:
    from beancount import loader
    from beancount.core import data

    entries, errors, _ = loader.load_file(str(path))
    check = LedgerCheck(errors=[f"{path}: {getattr(e, 'message', e)}" for e in errors])
    for entry in entries:
        meta = entry.meta or {}
        reference = meta.get("pleo-entry-id")
        if isinstance(entry, data.Transaction) and isinstance(reference, str):
            check.transactions[(reference, str(meta.get("pleo-kind")))] += 1
    return check


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout:.0f}s waiting for {what}")
        time.sleep(0.2)
