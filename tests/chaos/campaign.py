"""The kill -9 campaign: real exports, killed at random and at targeted instants, then checked.

One campaign runs against one state store URL (SQLite file or PostgreSQL database):

1. The Pleo sandbox runs in its own process (:mod:`tests.chaos.sandbox_server`) on loopback
   HTTP, so it outlives every worker. A company is created through its admin endpoints.
2. Jobs are queued one at a time (Pleo allows one unfinished job per company). Each job gets
   its own folder with a ``pleo-export.toml`` and a fresh beancount ledger (a starter ledger
   from the connector's scaffold), so a restarting worker loads a ledger of one job rather than
   of the whole campaign; all jobs share the one state store.
3. Workers (:func:`tests.chaos.worker.run_worker`) are forked from a ``forkserver`` with the
   heavy modules preloaded and run what ``pleo-export run`` runs. Each worker gets a
   :class:`~tests.chaos.worker.KillPlan` drawn from a seeded RNG: killed by the test with
   SIGKILL after a random delay, or killing itself (also SIGKILL) right after a post or while
   a 100-item report batch is in flight. Workers are started again until the job is finished
   in Pleo; the last worker of a job runs without a kill plan once the job's share of kills is
   used up.
4. :func:`verify` then reads the outcome where it matters: every job's items from Pleo's API
   (status, externalId, failureReasonType) and every ledger with beancount's loader (entries
   counted by their ``pleo-entry-id`` metadata, plus beancount's own validation errors). Which
   items must fail (a line on the sandbox's unknown account) was read from the data layer when
   the job was queued. :func:`read_store` adds what the state store says: items recovered by
   reference, outcomes never acknowledged by Pleo.

Timing is not reproducible, but the sequence of kill plans and delays is: the seed is printed
and can be replayed with ``PLEO_EXPORT_CHAOS_SEED``.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter, defaultdict, deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx

from tests.chaos.worker import PRELOAD, REPORT_BATCH, KillPlan, run_worker

ROOT = Path(__file__).resolve().parents[2]
FINAL_STATUSES = frozenset({"successful", "failed"})
FINISHED_JOB = frozenset({"completed", "completed_with_errors", "failed"})
EXPECTED_FAILURE = "account_unknown"
"""The only reason an item of these jobs may fail: a line on the sandbox's unknown account."""


@dataclass(frozen=True)
class CampaignConfig:
    seed: int
    min_kills: int = 200
    min_items: int = 2_000
    job_size: int = 250
    random_delay_factor: float = 1.5
    """Random kills land uniformly in [0, this x the time a worker takes to reach its first
    post] after the worker was started (the median of the last workers that got there), so
    about two thirds of them hit the start-up (store, ledger, lease, job detection, the started
    event, the control layer, the first report flush) and a third hit item processing, however
    fast the machine is. Kills among items make progress; a larger factor means more items per
    kill, so more jobs (and time) for the same number of kills."""
    first_random_delay: float = 0.45
    """The upper bound before any worker has reached a post."""
    after_post_share: float = 0.15
    report_put_share: float = 0.08
    """Such a worker has to book 100 items (unless 100 outcomes wait to be reported at start)."""
    max_after_post: int = 10
    vendor_based_every: int = 3
    """Every n-th job uses vendor-based bookkeeping (accounts-payable entries)."""
    attachments_every: int = 8
    """Every n-th job has receipts (stored as documents before the entry is appended). The
    sandbox renders receipts on the fly, which makes such a job several times slower."""
    unknown_account_rate: float = 0.03
    worker_timeout: float = 120.0


@dataclass
class JobRun:
    job_id: str
    directory: Path
    items: int
    vendor_based: bool
    must_fail: frozenset[str] = frozenset()
    """Items whose export data books a line on the sandbox's unknown account."""


@dataclass
class ChaosResult:
    backend: str
    seed: int
    kills: Counter[str] = field(default_factory=Counter)
    killed_among_items: Counter[str] = field(default_factory=Counter)
    """Kills, by kind, of workers that had posted at least one item (the others died in
    start-up, before their first post)."""
    startup_seconds: float = 0.0
    """Median time from starting a worker to its first post (the last workers that posted)."""
    worker_seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    """Wall-clock seconds spent in workers, by kill plan kind (``clean`` for no kill)."""
    workers: int = 0
    clean_exits: int = 0
    jobs: list[JobRun] = field(default_factory=list)
    elapsed: float = 0.0
    # filled by verify()
    items: int = 0
    successful: int = 0
    failed: int = 0
    ledger_entries: int = 0
    recovered: int = 0
    """Items the state store says were found in the ledger by reference instead of posted."""
    unreported: int = 0
    """Outcomes the state store still holds as not acknowledged by Pleo."""
    duplicates: int = 0
    non_final: int = 0
    disagreements: int = 0
    wrong_outcomes: int = 0
    ledger_errors: list[str] = field(default_factory=list)
    job_statuses: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    """Details of every duplicate, non-final item, disagreement and wrong outcome (capped)."""

    @property
    def total_kills(self) -> int:
        return sum(self.kills.values())

    def to_json(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in _RESULT_FIELDS}
        data["jobs"] = [
            {
                "job_id": job.job_id,
                "directory": str(job.directory),
                "items": job.items,
                "vendor_based": job.vendor_based,
                "must_fail": sorted(job.must_fail),
            }
            for job in self.jobs
        ]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ChaosResult:
        values = {name: data[name] for name in _RESULT_FIELDS}
        for name in ("kills", "killed_among_items", "job_statuses"):
            values[name] = Counter(values[name])
        values["worker_seconds"] = defaultdict(float, values["worker_seconds"])
        jobs = [
            JobRun(
                job_id=job["job_id"],
                directory=Path(job["directory"]),
                items=job["items"],
                vendor_based=job["vendor_based"],
                must_fail=frozenset(job["must_fail"]),
            )
            for job in data["jobs"]
        ]
        return cls(jobs=jobs, **values)

    def summary(self) -> str:
        kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(self.kills.items()))
        return (
            f"chaos[{self.backend}] seed={self.seed}: {self.total_kills} kills ({kinds}) over "
            f"{self.workers} workers ({self.clean_exits} exited on their own), "
            f"{self.killed_among_items['random']} random kills after the worker's first post "
            f"(first post {self.startup_seconds:.2f}s after start); "
            f"{len(self.jobs)} jobs, {self.items} items ({self.successful} successful, "
            f"{self.failed} failed), {self.ledger_entries} ledger transactions, "
            f"{self.recovered} recovered by reference; "
            f"duplicates={self.duplicates} non_final={self.non_final} "
            f"disagreements={self.disagreements} wrong_outcomes={self.wrong_outcomes} "
            f"ledger_errors={len(self.ledger_errors)}; {self.elapsed:.1f}s"
        )


_RESULT_FIELDS = [name for name in ChaosResult.__dataclass_fields__ if name != "jobs"]


# --- the sandbox process -----------------------------------------------------------------------


@contextmanager
def sandbox_process(log: Path) -> Iterator[str]:
    """Start :mod:`tests.chaos.sandbox_server`; yields its base URL; stops it afterwards."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLEO_EXPORT_")}
    with log.open("w", encoding="utf-8") as stderr:
        server = subprocess.Popen(
            [sys.executable, "-m", "tests.chaos.sandbox_server"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        try:
            assert server.stdout is not None
            line = server.stdout.readline()
            if not line.startswith("READY "):
                server.kill()
                server.wait(timeout=10)
                raise RuntimeError(
                    f"the sandbox server did not start (said {line!r}); see {log}:\n"
                    + log.read_text(encoding="utf-8")[-2000:]
                )
            yield line.split(" ", 1)[1].strip()
        finally:
            if server.stdin is not None:
                server.stdin.close()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=10)


# --- the campaign ------------------------------------------------------------------------------


def _forkserver() -> Any:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


def _write_job_folder(directory: Path, base_url: str, company_id: str, state_url: str) -> None:
    from pleo_export_beancount.connector import BeancountConnector
    from pleo_export_sandbox import DEMO_CHART

    directory.mkdir(parents=True)
    settings = BeancountConnector.scaffold(directory, DEMO_CHART, "GBP")
    (directory / "pleo-export.toml").write_text(
        "\n".join(
            [
                "[pleo]",
                f"base_url = {json.dumps(base_url)}",
                f"company_id = {json.dumps(company_id)}",
                "",
                "[state]",
                f"url = {json.dumps(state_url)}",
                "",
                "[connector]",
                'name = "beancount"',
                "",
                "[connector.settings]",
                f"ledger = {json.dumps(settings['ledger'])}",
                "",
                "[engine]",
                # A fixed name: a restarted worker takes its own company lease back at once.
                'worker_id = "chaos-worker"',
                "",
                "[log]",
                'level = "warning"',
                "",
            ]
        ),
        encoding="utf-8",
    )


class Campaign:
    def __init__(self, config: CampaignConfig, backend: str, state_url: str, work: Path) -> None:
        self.config = config
        self.backend = backend
        self.state_url = state_url
        self.work = work
        self.rng = random.Random(config.seed)
        self.result = ChaosResult(backend=backend, seed=config.seed)
        self.startups: deque[float] = deque(maxlen=25)
        """Seconds from starting a worker to its first post, for the last workers that posted."""
        self.probe = work / "first-post.txt"

    def run(self) -> ChaosResult:
        started = time.monotonic()
        context = _forkserver()
        with (
            sandbox_process(self.work / "sandbox.log") as base_url,
            httpx.Client(base_url=base_url, timeout=30) as admin,
        ):
            company = admin.post("/_sandbox/companies", json={"name": "Chaos Ltd"})
            company.raise_for_status()
            company_id, api_key = company.json()["id"], company.json()["apiKey"]
            index = 0
            while (
                self.result.total_kills < self.config.min_kills
                or sum(j.items for j in self.result.jobs) < self.config.min_items
            ):
                jobs_left = max(
                    1,
                    math.ceil(
                        (self.config.min_items - sum(j.items for j in self.result.jobs))
                        / self.config.job_size
                    ),
                )
                kills_wanted = math.ceil(
                    max(0, self.config.min_kills - self.result.total_kills) / jobs_left
                )
                job = self._queue_job(admin, index, base_url, company_id, api_key)
                self._run_job(context, admin, job, api_key, kills_wanted)
                index += 1
            verify(self.result, admin, api_key, base_url)
        anyio.run(read_store, self.result, self.state_url)
        self.result.elapsed = time.monotonic() - started
        self.result.startup_seconds = statistics.median(self.startups) if self.startups else 0.0
        return self.result

    def _queue_job(
        self, admin: httpx.Client, index: int, base_url: str, company_id: str, api_key: str
    ) -> JobRun:
        directory = self.work / f"job-{index:02d}"
        _write_job_folder(directory, base_url, company_id, self.state_url)
        vendor_based = index % self.config.vendor_based_every == self.config.vendor_based_every - 1
        attachments = index % self.config.attachments_every == self.config.attachments_every - 1
        queued = admin.post(
            f"/_sandbox/companies/{company_id}/exports",
            json={
                "count": self.config.job_size,
                "seed": self.config.seed * 100 + index,
                "vendor_based_bookkeeping": vendor_based,
                "unknown_account_rate": self.config.unknown_account_rate,
                "attachments": attachments,
            },
        )
        queued.raise_for_status()
        job_id = queued.json()["data"]["id"]
        # Pleo serves the data layer only while the job is unfinished: read it now.
        with httpx.Client(base_url=base_url, auth=(api_key, ""), timeout=30) as pleo:
            data_layer = _export_items(pleo, job_id)
        job = JobRun(
            job_id=job_id,
            directory=directory,
            items=self.config.job_size,
            vendor_based=vendor_based,
            must_fail=frozenset(ref for ref, item in data_layer.items() if _must_fail(item)),
        )
        self.result.jobs.append(job)
        return job

    def _plan(self, pending: int) -> tuple[KillPlan, float | None]:
        """The next worker's kill plan and, for random kills, the delay before SIGKILL."""
        draw = self.rng.random()
        if draw < self.config.after_post_share:
            return KillPlan("after_post", self.rng.randint(1, self.config.max_after_post)), None
        report_put = draw < self.config.after_post_share + self.config.report_put_share
        if report_put and pending >= REPORT_BATCH:
            return KillPlan("report_put", 1), None
        upper = self.config.first_random_delay
        if self.startups:
            upper = self.config.random_delay_factor * statistics.median(self.startups)
        return KillPlan("random"), self.rng.uniform(0.0, upper)

    def _run_job(
        self, context: Any, admin: httpx.Client, job: JobRun, api_key: str, kills_wanted: int
    ) -> None:
        """Start workers on ``job`` until Pleo has it finished; kill ``kills_wanted`` of them."""
        config = str(job.directory / "pleo-export.toml")
        kills = 0
        clean_exits = 0
        while True:
            status, pending = _job_state(admin, job.job_id)
            if status in FINISHED_JOB:
                return
            if clean_exits >= 3:
                raise RuntimeError(
                    f"job {job.job_id} is still {status} after three workers exited normally; "
                    f"see {job.directory / 'worker.log'}"
                )
            if kills < kills_wanted:
                plan, delay = self._plan(pending)
            else:
                plan, delay = KillPlan("none"), None  # let this one finish the job
            began = time.monotonic()
            exitcode, reached_items = self._run_worker(context, job, config, api_key, plan, delay)
            spent = time.monotonic() - began
            self.result.workers += 1
            if exitcode == -signal.SIGKILL:
                kills += 1
                self.result.kills[plan.kind] += 1
                self.result.killed_among_items[plan.kind] += reached_items
                self.result.worker_seconds[plan.kind] += spent
            elif exitcode == 0:
                clean_exits += 1
                self.result.clean_exits += 1
                self.result.worker_seconds["clean"] += spent
            else:
                error = job.directory / "worker-error.txt"
                detail = error.read_text(encoding="utf-8") if error.exists() else "no traceback"
                raise RuntimeError(
                    f"a worker of job {job.job_id} failed with exit code {exitcode} "
                    f"(plan {plan.describe()}):\n{detail}"
                )

    def _run_worker(
        self,
        context: Any,
        job: JobRun,
        config: str,
        api_key: str,
        plan: KillPlan,
        delay: float | None,
    ) -> tuple[int | None, bool]:
        """Run one worker; its exit code and whether it got as far as posting an item."""
        # daemon: should the campaign itself be stopped, multiprocessing ends the worker too.
        self.probe.unlink(missing_ok=True)
        process = context.Process(
            target=run_worker, args=(config, api_key, plan, str(self.probe)), daemon=True
        )
        started = time.time()
        try:
            with _TERMINATION.held():  # not inside start(): the pid would be unknown
                process.start()
            # The delay counts from the same instant as the time to the first post.
            wait = None if delay is None else max(0.0, delay - (time.time() - started))
            process.join(self.config.worker_timeout if wait is None else wait)
            if process.is_alive() and delay is not None:
                process.kill()  # SIGKILL, at a random instant
            process.join(self.config.worker_timeout)
            if process.is_alive():
                raise RuntimeError(
                    f"a worker of job {job.job_id} ran longer than {self.config.worker_timeout}"
                    f"s (plan {plan.describe()}); see {job.directory / 'worker.log'}"
                )
            exitcode: int | None = process.exitcode
        finally:
            if process.pid is not None and process.is_alive():  # timed out, or stopped
                process.kill()
                process.join()
        process.close()
        try:  # the worker may have died while writing it
            first_post = float(self.probe.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return exitcode, False
        self.startups.append(first_post - started)
        return exitcode, True


class _Termination:
    """SIGTERM as ``SystemExit``, held back while a worker is being started."""

    def __init__(self) -> None:
        self.holding = False
        self.pending = False

    def handler(self, signum: int, frame: object) -> None:
        if self.holding:
            self.pending = True
            return
        sys.exit(128 + signum)

    @contextmanager
    def held(self) -> Iterator[None]:
        self.holding = True
        try:
            yield
        finally:
            self.holding = False
        if self.pending:
            sys.exit(128 + signal.SIGTERM)


_TERMINATION = _Termination()


def _job_state(admin: httpx.Client, job_id: str) -> tuple[str, int]:
    """The job's status in Pleo and how many of its items are not final yet."""
    state = admin.get("/_sandbox/state")
    state.raise_for_status()
    for job in state.json()["jobs"]:
        if job["id"] == job_id:
            counts: dict[str, int] = job["itemCounts"]
            pending = sum(n for status, n in counts.items() if status not in FINAL_STATUSES)
            return str(job["status"]), pending
    raise RuntimeError(f"the sandbox does not know job {job_id}")


# --- verification ------------------------------------------------------------------------------


@dataclass
class LedgerView:
    transactions: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(pleo-entry-id, pleo-kind) -> how many transactions carry it."""
    documents: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(pleo-entry-id, file name) -> how many document directives carry it."""
    links: dict[str, set[frozenset[str]]] = field(default_factory=lambda: defaultdict(set))
    """pleo-entry-id -> the link sets of its transactions."""
    errors: list[str] = field(default_factory=list)


def read_ledger(main: Path, view: LedgerView) -> None:
    """Add what beancount's loader finds in the ledger ``main`` to ``view``."""
    from beancount import loader
    from beancount.core import data

    entries, errors, _ = loader.load_file(str(main))
    view.errors.extend(f"{main}: {getattr(e, 'message', e)}" for e in errors)
    for entry in entries:
        meta = entry.meta or {}
        reference = meta.get("pleo-entry-id")
        if not isinstance(reference, str):
            continue
        if isinstance(entry, data.Transaction):
            view.transactions[(reference, str(meta.get("pleo-kind")))] += 1
            view.links[reference].add(frozenset(entry.links or ()))
        elif isinstance(entry, data.Document):
            view.documents[(reference, Path(entry.filename).name)] += 1


async def read_store(result: ChaosResult, state_url: str) -> None:
    """Count, from the state store, the items recovered by reference and those not reported."""
    from pleo_export.state import open_store

    store = open_store(state_url)
    await store.open()
    try:
        for job in result.jobs:
            for record in await store.items(job.job_id):
                if record.outcome is not None and record.outcome.recovered:
                    result.recovered += 1
                if record.outcome is not None and not record.reported:
                    result.unreported += 1
    finally:
        await store.close()


def _pleo_items(client: httpx.Client, job_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 1000}
    while True:
        page = client.get(f"/v3/export-jobs/{job_id}/items", params=params)
        page.raise_for_status()
        body = page.json()
        items.extend(body["data"])
        if not body["pagination"]["hasNextPage"]:
            return items
        params = {"limit": 1000, "after": body["pagination"]["endCursor"]}


def _export_items(client: httpx.Client, job_id: str) -> dict[str, dict[str, Any]]:
    items: dict[str, dict[str, Any]] = {}
    params: dict[str, Any] = {"job_id": job_id, "limit": 1000}
    while True:
        page = client.get("/v3/export-items", params=params)
        page.raise_for_status()
        body = page.json()
        for item in body["data"]:
            items[item["accountingEntryId"]] = item
        if not body["pagination"]["hasNextPage"]:
            return items
        params = {"job_id": job_id, "limit": 1000, "after": body["pagination"]["endCursor"]}


def _must_fail(item: dict[str, Any]) -> bool:
    """Whether the item books a line on the sandbox's unknown account (not in the ledger)."""
    from pleo_export_sandbox import UNKNOWN_ACCOUNT_CODE

    def walk(value: Any) -> bool:
        if isinstance(value, dict):
            if value.get("code") == UNKNOWN_ACCOUNT_CODE:
                return True
            return any(walk(v) for v in value.values())
        if isinstance(value, list):
            return any(walk(v) for v in value)
        return False

    return walk(item)


def verify(result: ChaosResult, admin: httpx.Client, api_key: str, base_url: str) -> None:
    """Fill ``result``'s counts from Pleo's API and from the ledgers (read with beancount)."""
    view = LedgerView()
    for job in result.jobs:
        read_ledger(job.directory / "ledger" / "main.beancount", view)
    result.ledger_errors = view.errors
    result.ledger_entries = sum(view.transactions.values())
    problems = result.problems

    def problem(text: str) -> None:
        if len(problems) < 50:
            problems.append(text)

    for (reference, kind), count in sorted(view.transactions.items()):
        if count > 1:
            result.duplicates += count - 1
            problem(f"duplicate: {reference} has {count} {kind} transactions")
    for (reference, name), count in sorted(view.documents.items()):
        if count > 1:
            result.duplicates += count - 1
            problem(f"duplicate: {reference} has {count} document directives for {name}")

    seen: set[str] = set()
    with httpx.Client(base_url=base_url, auth=(api_key, ""), timeout=30) as pleo:
        for job in result.jobs:
            status, _ = _job_state(admin, job.job_id)
            result.job_statuses[status] += 1
            for item in _pleo_items(pleo, job.job_id):
                reference = item["accountingEntryId"]
                seen.add(reference)
                result.items += 1
                state = item["status"]
                in_ledger = reference in view.links
                if state not in FINAL_STATUSES:
                    result.non_final += 1
                    problem(f"non-final: {reference} is {state} in Pleo (job {job.job_id})")
                    continue
                expected_failure = reference in job.must_fail
                if state == "successful":
                    result.successful += 1
                    external_id = item.get("externalId")
                    link_sets = view.links.get(reference, set())
                    if not in_ledger or any(external_id not in links for links in link_sets):
                        result.disagreements += 1
                        shown = sorted(sorted(links) for links in link_sets)
                        problem(
                            f"disagreement: {reference} is successful in Pleo with externalId "
                            f"{external_id!r} but its ledger transactions have the links {shown}"
                        )
                    if expected_failure:
                        result.wrong_outcomes += 1
                        problem(f"wrong outcome: {reference} books on the unknown account")
                else:
                    result.failed += 1
                    if in_ledger:
                        result.disagreements += 1
                        problem(f"disagreement: {reference} failed in Pleo but is in the ledger")
                    reason = item.get("failureReasonType")
                    if not expected_failure or reason != EXPECTED_FAILURE:
                        result.wrong_outcomes += 1
                        problem(
                            f"wrong outcome: {reference} failed with {reason}: "
                            f"{item.get('failureReason')}"
                        )
    for reference in sorted(set(view.links) - seen):
        result.disagreements += 1
        problem(f"disagreement: the ledger has {reference}, which is in no job")


# --- command line (see tests.chaos.run_campaign) ------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Run one kill -9 chaos campaign.")
    parser.add_argument("--backend", required=True, help="a label: sqlite or postgresql")
    parser.add_argument("--state-url", required=True, help="the state store URL the workers use")
    parser.add_argument("--work", required=True, type=Path, help="an empty folder to work in")
    parser.add_argument("--result", required=True, type=Path, help="where to write the JSON")
    parser.add_argument("--seed", required=True, type=int)
    parser.add_argument("--min-kills", type=int, default=CampaignConfig.min_kills)
    parser.add_argument("--min-items", type=int, default=CampaignConfig.min_items)
    args = parser.parse_args(argv)
    # SIGTERM (the test giving up) unwinds like an exception, so the running worker is stopped.
    signal.signal(signal.SIGTERM, _TERMINATION.handler)
    config = CampaignConfig(seed=args.seed, min_kills=args.min_kills, min_items=args.min_items)
    args.work.mkdir(parents=True, exist_ok=True)
    result = Campaign(config, args.backend, args.state_url, args.work).run()
    args.result.write_text(json.dumps(result.to_json(), indent=1), encoding="utf-8")
    print(result.summary())
