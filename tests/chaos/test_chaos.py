"""Crash safety, proved by killing real exports with SIGKILL (issue 3, part 2).

For each state store backend (SQLite file, PostgreSQL database) one campaign runs real exports
(the engine wired by ``open_session``, the beancount connector, the Pleo sandbox over loopback
HTTP in its own process) and kills the workers at least 200 times over jobs totalling at least
2,000 items: at random instants, right after the connector's ``post`` returned (before the
outcome is recorded) and while a 100-item report batch is in flight. Workers are restarted
until every job is finished. Then the target (the beancount ledgers, read with beancount) and
Pleo (the job items, read through the API) are compared: no entry twice, no item left
unfinished, no outcome that disagrees.

The two campaigns run once, side by side in their own processes (module-scoped fixture; each
keeps one core busy), and the tests below assert on their results.
``PLEO_EXPORT_CHAOS_SEED=<n>`` replays the kill plans of an earlier run (timing still varies).
See :mod:`tests.chaos.campaign` for how a campaign works.
"""

from __future__ import annotations

import importlib
import json
import os
import random
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.chaos.campaign import ROOT, ChaosResult

pytestmark = pytest.mark.slow

SEED_ENV = "PLEO_EXPORT_CHAOS_SEED"
MIN_KILLS = 200
MIN_ITEMS = 2_000
BACKENDS = ("sqlite", "postgresql")
TIMEOUT = 30 * 60
"""Seconds after which a campaign process is considered hung (it normally takes 1-3 min)."""


@dataclass
class Outcome:
    result: ChaosResult | None = None
    skip: str | None = None
    error: str | None = None


def _seed() -> int:
    configured = os.environ.get(SEED_ENV)
    if configured:
        return int(configured)
    return random.SystemRandom().randrange(1, 1_000_000)


def _require(module: str, why: str) -> None:
    """Skip without ``module`` on a developer machine; fail under CI, which must have it."""
    try:
        importlib.import_module(module)
    except ImportError:
        message = f"{module} is not installed: {why}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def _postgres_url(stack: ExitStack) -> tuple[str | None, Outcome | None]:
    """A fresh database, or the outcome to report instead (skipped, or failed under CI)."""
    from tests.support.postgres import fresh_database

    try:
        return stack.enter_context(fresh_database("chaos")), None
    except pytest.skip.Exception as skipped:
        return None, Outcome(skip=str(skipped))
    except pytest.fail.Exception as failed:
        return None, Outcome(error=str(failed))


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a campaign process still running (its sandbox and workers follow it)."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _selected_backends(request: pytest.FixtureRequest) -> list[str]:
    """The backends of this module's selected tests (``-k sqlite`` runs one campaign)."""
    wanted = {
        item.callspec.params.get("chaos")
        for item in request.session.items
        if item.path == request.path and hasattr(item, "callspec")
    }
    return [backend for backend in BACKENDS if backend in wanted]


@pytest.fixture(scope="module")
def campaigns(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Outcome]:
    _require("beancount", "the chaos test reads the ledgers with beancount")
    _require("uvicorn", "the sandbox is served over HTTP with uvicorn (pleo-export[sandbox])")
    seed = _seed()
    outcomes: dict[str, Outcome] = {}
    running: dict[str, tuple[subprocess.Popen[bytes], Path, Path]] = {}
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLEO_EXPORT_")}
    with ExitStack() as stack:
        for backend in _selected_backends(request):
            work = tmp_path_factory.mktemp(f"chaos-{backend}")
            if backend == "sqlite":
                url: str | None = f"sqlite:///{work / 'state.db'}"
            else:
                url, unavailable = _postgres_url(stack)
                if unavailable is not None:
                    outcomes[backend] = unavailable
                    continue
            result, log = work / "result.json", work / "campaign.log"
            command = [
                sys.executable,
                "-m",
                "tests.chaos.run_campaign",
                *("--backend", backend, "--state-url", str(url), "--work", str(work)),
                *("--result", str(result), "--seed", str(seed)),
                *("--min-kills", str(MIN_KILLS), "--min-items", str(MIN_ITEMS)),
            ]
            output = stack.enter_context(log.open("wb"))
            process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=output)
            stack.callback(_stop, process)  # also on Ctrl-C; before its database is dropped
            running[backend] = (process, result, log)
        deadline = time.monotonic() + TIMEOUT
        for backend, (process, result, log) in running.items():
            try:
                code = process.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _stop(process)
                code = None
            if code == 0 and result.exists():
                data = json.loads(result.read_text(encoding="utf-8"))
                outcomes[backend] = Outcome(result=ChaosResult.from_json(data))
            else:
                tail = log.read_text(encoding="utf-8", errors="replace")[-4000:]
                why = "timed out" if code is None else f"exited with {code}"
                outcomes[backend] = Outcome(
                    error=f"chaos[{backend}] with {SEED_ENV}={seed} {why}:\n{tail}"
                )
    return outcomes


@pytest.fixture(params=BACKENDS)
def chaos(request: pytest.FixtureRequest, campaigns: dict[str, Outcome]) -> ChaosResult:
    outcome = campaigns.get(request.param) or Outcome(error="this campaign did not run")
    if outcome.skip is not None:
        pytest.skip(outcome.skip)
    if outcome.result is None:
        pytest.fail(outcome.error or "the campaign left no result")
    return outcome.result


def _details(chaos: ChaosResult) -> str:
    return "\n".join([chaos.summary(), *chaos.problems, *chaos.ledger_errors[:20]])


def test_counts_are_reported(chaos: ChaosResult, capsys: pytest.CaptureFixture[str]) -> None:
    text = "\n  ".join(
        [
            chaos.summary(),
            "worker seconds by kill kind: "
            + ", ".join(f"{k} {v:.1f}" for k, v in sorted(chaos.worker_seconds.items())),
            *chaos.problems,
        ]
    )
    print(text)  # shown with -s and in -rA's captured output
    with capsys.disabled():
        print(f"\n{text}")  # always on the terminal, so CI logs carry the counts
    assert chaos.workers == chaos.total_kills + chaos.clean_exits


def test_enough_kills_over_enough_items(chaos: ChaosResult) -> None:
    assert chaos.total_kills >= MIN_KILLS, chaos.summary()
    assert chaos.items >= MIN_ITEMS, chaos.summary()
    # Every kind of kill point was hit: random instants, after a post before the outcome was
    # recorded, and with a 100-item report batch in flight.
    assert set(chaos.kills) == {"random", "after_post", "report_put"}, chaos.summary()
    # Random kills hit both the start-up and the items.
    assert 0 < chaos.killed_among_items["random"] < chaos.kills["random"], chaos.summary()
    assert chaos.failed > 0 and chaos.successful > 0, "the jobs should mix outcomes"


def test_no_entry_is_in_the_ledger_twice(chaos: ChaosResult) -> None:
    assert chaos.duplicates == 0, _details(chaos)


def test_every_item_is_final_in_pleo(chaos: ChaosResult) -> None:
    assert chaos.non_final == 0, _details(chaos)
    assert chaos.successful + chaos.failed == chaos.items
    assert set(chaos.job_statuses) <= {"completed", "completed_with_errors"}, chaos.job_statuses


def test_pleo_and_the_ledger_agree(chaos: ChaosResult) -> None:
    # successful in Pleo <=> in the ledger under the externalId Pleo holds; failed => absent
    assert chaos.disagreements == 0, _details(chaos)
    # and no crash turned into an item failure: only the items on the unknown account failed
    assert chaos.wrong_outcomes == 0, _details(chaos)
    assert chaos.ledger_entries >= chaos.successful


def test_entries_posted_before_a_kill_were_found_not_posted_again(chaos: ChaosResult) -> None:
    # Each after_post kill left an entry in the ledger whose outcome was never recorded; the
    # next worker must have found it by reference (recovered) rather than posting it again.
    assert chaos.recovered >= chaos.kills["after_post"], chaos.summary()
    # and every outcome the store recorded reached Pleo in the end
    assert chaos.unreported == 0, chaos.summary()


def test_the_ledgers_pass_beancount_validation(chaos: ChaosResult) -> None:
    assert chaos.ledger_errors == [], _details(chaos)
