"""The worker the chaos test kills: the real engine, wired from a configuration file.

:func:`run_worker` runs in a process forked by the test's ``forkserver`` (heavy modules are
preloaded there, see :data:`PRELOAD`). It loads ``pleo-export.toml`` with
:func:`pleo_export.config.load_settings`, opens the session with
:func:`pleo_export.app.open_session` (state store, Pleo client, beancount connector) and runs
``run_pending()`` (under the company's lease) against the sandbox served over loopback HTTP,
as ``pleo-export run`` does.

The test picks where the worker dies with a :class:`KillPlan`:

``none``
    nothing: the worker runs until it is done (the last worker of a job).
``random``
    nothing here; the test SIGKILLs the process after a random delay.
``after_post``
    the worker SIGKILLs itself right after the connector's ``post`` returned for the ``nth``
    time in this process, before the engine records the outcome: the entry is in the ledger
    but the state store only holds the intent.
``report_put``
    the worker SIGKILLs itself while its ``nth`` report batch of 100 items is in flight: the
    PUT is forwarded to Pleo, Pleo applies it and answers, and the process dies before the
    answer is processed, so the store still has the 100 outcomes as "not reported".

These kill points are test-only: they wrap the connector instance and the HTTP transport of
this process; no production code knows about them.
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import anyio
import httpx

KillKind = Literal["none", "random", "after_post", "report_put"]

PRELOAD = [
    "tests.chaos.worker",
    "pleo_export.app",
    "pleo_export.cli",
    "pleo_export.state.sqlite",
    "pleo_export.state.postgres",
    "psycopg",
    "psycopg.rows",
    "pleo_export_beancount.connector",
    "beancount.loader",
    "beancount.parser.parser",
    "beancount.ops.balance",
    "beancount.ops.documents",
    "beancount.ops.pad",
    "tomllib",
    "anyio._core._fileio",
    "httpx",
    "httpcore",
    "httpcore._async",
    "httpcore._sync",
    "h11",
    "anyio._backends._asyncio",
]
"""Modules the forkserver imports once, so a forked worker starts in milliseconds."""

REPORT_BATCH = 100
"""The engine reports outcomes in PUTs of this many items (Pleo's maximum)."""

POST_CONCURRENCY = 4
"""Posts the chaos workers' connector allows at once (beancount's own limit is 1)."""

API_KEY_ENV = "PLEO_EXPORT_PLEO__API_KEY"


@dataclass(frozen=True)
class KillPlan:
    kind: KillKind
    nth: int = 1
    """``after_post``: die after this many posts; ``report_put``: in this full batch."""

    def describe(self) -> str:
        return self.kind if self.kind in ("none", "random") else f"{self.kind}#{self.nth}"


def _die() -> None:
    """A real, unannounced death: no cleanup, no flushing, no ``finally`` blocks."""
    os.kill(os.getpid(), signal.SIGKILL)


class KillInFlightTransport(httpx.AsyncBaseTransport):
    """Forwards requests; dies after the ``nth`` PUT of a full report batch got its answer."""

    def __init__(self, inner: httpx.AsyncBaseTransport, nth: int | None) -> None:
        self.inner = inner
        self.nth = nth
        self.full_batches = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        full_batch = False
        if self.nth is not None and request.method == "PUT" and request.url.path.endswith("/items"):
            body = json.loads(await request.aread())
            full_batch = isinstance(body, list) and len(body) == REPORT_BATCH
        response = await self.inner.handle_async_request(request)
        if full_batch:
            self.full_batches += 1
            if self.full_batches == self.nth:
                _die()  # Pleo has applied the batch; the engine never learns it
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


async def _work(config: Path, plan: KillPlan, probe: Path) -> None:
    from pleo_export import logs
    from pleo_export.app import open_session
    from pleo_export.config import load_settings
    from pleo_export.engine.runner import EngineOptions

    settings = load_settings(config)
    logs.configure(level=settings.log.level, fmt="json", file=config.parent / "worker.log")
    options = EngineOptions(report_batch_size=REPORT_BATCH)
    # Every Pleo call of the session (receipt downloads too) goes through a transport that
    # can die mid-PUT.
    transport = KillInFlightTransport(
        httpx.AsyncHTTPTransport(), plan.nth if plan.kind == "report_put" else None
    )
    async with open_session(settings, options=options, transport=transport) as session:
        _instrument_post(session.connector, plan.nth if plan.kind == "after_post" else None, probe)
        # As `pleo-export run` does: the worker takes the company's lease, then runs the
        # engine. The configuration names the worker (engine.worker_id), so a restarted
        # worker takes its own lease back at once instead of waiting for it to expire.
        runner = session.worker if session.worker is not None else session.engine
        await runner.run_pending()


def _instrument_post(connector: Any, die_after: int | None, probe: Path) -> None:
    """Write the wall-clock time of the first post to ``probe`` (the test learns how long a
    worker takes to reach the items); die right after post number ``die_after``.

    The engine may post :data:`POST_CONCURRENCY` items at once. Beancount appends to one file,
    so its calls still take turns on one lock, entered after a short random wait: several items
    are between their recorded intent and their outcome at any instant, some written, some
    not, which is what a kill must not turn into a duplicate or a lost entry."""
    real_post = connector.post
    real_prepare = connector.prepare
    real_find = connector.find_existing
    turns = anyio.Lock()
    posts = 0

    owner: int | None = None  # the task holding the turn (beancount's post looks up too)

    async def taking_turns(call: Any, *args: Any) -> Any:
        nonlocal owner
        me = anyio.get_current_task().id
        if owner == me:
            return await call(*args)
        await anyio.sleep(random.random() * 0.004)
        async with turns:
            owner = me
            try:
                return await call(*args)
            finally:
                owner = None

    async def prepare(plan: Any) -> Any:
        return await taking_turns(real_prepare, plan)

    async def find_existing(reference: str) -> Any:
        return await taking_turns(real_find, reference)

    connector.post_concurrency = lambda: POST_CONCURRENCY
    connector.prepare = prepare
    connector.find_existing = find_existing

    async def post(prepared: Any) -> Any:
        nonlocal posts
        record = await taking_turns(real_post, prepared)
        posts += 1
        if posts == 1:
            await anyio.Path(probe).write_text(repr(time.time()), encoding="utf-8")
        if posts == die_after:
            _die()  # the entry is in the ledger; the engine has not recorded the outcome
        return record

    connector.post = post


def run_worker(config: str, api_key: str, plan: KillPlan, probe: str) -> None:
    """Process entry point (``multiprocessing`` target). Exits 1 with a traceback on error.

    ``probe`` is a file the worker writes the time of its first post to (see
    :func:`_instrument_post`)."""
    for name in [n for n in os.environ if n.startswith("PLEO_EXPORT_")]:
        del os.environ[name]  # only the configuration file and the key below count
    os.environ[API_KEY_ENV] = api_key
    path = Path(config)
    # Workers speak plain HTTP to 127.0.0.1, but every httpx client builds a TLS context and
    # loading the CA bundle costs tens of milliseconds per client, per worker start. An empty
    # CA directory is read lazily (never, here); hundreds of restarts get noticeably faster.
    empty_ca = path.parent.parent / "empty-ca"
    empty_ca.mkdir(exist_ok=True)
    os.environ.pop("SSL_CERT_FILE", None)
    os.environ["SSL_CERT_DIR"] = str(empty_ca)
    try:
        anyio.run(_work, path, plan, Path(probe))
    except BaseException:
        with (path.parent / "worker-error.txt").open("a", encoding="utf-8") as errors:
            errors.write(traceback.format_exc())
        raise
