"""Subprocess entry points of the memory benchmark (each measurement in a fresh process).

``python -m bench.child serve --items N [--receipts]``
    Serves a sandbox holding one pending job of N items (with receipts: about 0.9 per item,
    none of them multi-megabyte) over loopback HTTP, prints one JSON line (``base_url``,
    ``api_key``, ``company_id``) and serves until its stdin is closed.

``python -m bench.child engine --items N [--base-url URL --api-key KEY --company-id ID]
[--receipts]``
    Runs the engine (engine defaults: pages read ahead, receipts prefetched) on that job, with
    the no-op connector or, with ``--receipts``, the network connector without its wait (so
    every receipt is downloaded), and prints one JSON line with the process's peak RSS
    (``VmHWM``; ``ru_maxrss`` too, see :func:`ru_maxrss_kib`) before and after the run.
    Without ``--base-url`` the sandbox lives in this process (so its RSS includes every item
    the sandbox holds).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

from bench.harness import PleoSide, in_process, make_sandbox, run_job


def ru_maxrss_kib() -> int:
    """``getrusage(RUSAGE_SELF).ru_maxrss`` in KiB.

    On Linux it is carried over ``execve`` from the process that forked us: a child of a big
    parent reports at least the parent's peak at the fork. Use :func:`peak_rss_kib`.
    """
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak


def peak_rss_kib() -> int:
    """Peak resident set size of this process image in KiB.

    ``VmHWM`` in ``/proc/self/status`` (Linux) is the high-water mark of this address space
    only, so it starts afresh at ``execve``; elsewhere fall back to ``ru_maxrss``.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return ru_maxrss_kib()


def _serve(items: int, receipts: bool) -> None:
    from pleo_export_sandbox.server import running_server

    sandbox, company_id, api_key = make_sandbox(
        items, attachments=receipts, large_file_rate=0.0 if receipts else None
    )

    async def main() -> None:
        async with running_server(sandbox) as base_url:
            line = {"base_url": base_url, "api_key": api_key, "company_id": company_id}
            print(json.dumps(line), flush=True)
            # Serve until the parent closes our stdin (or exits).
            await anyio.to_thread.run_sync(sys.stdin.read)

    anyio.run(main, backend="asyncio")


def _engine(args: argparse.Namespace) -> None:
    result: dict[str, Any] = {"items": args.items}

    async def main() -> None:
        if args.base_url:
            pleo = PleoSide(args.base_url, args.api_key, args.company_id)
            transport = "loopback HTTP (sandbox in another process)"
        else:
            pleo = in_process(*make_sandbox(args.items))
            transport = "in-process"
        result["rss_before_kib"] = peak_rss_kib()
        result["ru_maxrss_before_kib"] = ru_maxrss_kib()
        with tempfile.TemporaryDirectory(prefix="pleo-bench-") as work:
            run = await run_job(
                pleo,
                Path(work),
                items=args.items,
                transport_name=transport,
                connector="network" if args.receipts else "noop",
            )
        result["rss_peak_kib"] = peak_rss_kib()
        result["ru_maxrss_peak_kib"] = ru_maxrss_kib()
        result["run"] = run.to_json()

    anyio.run(main, backend="asyncio")
    print(json.dumps(result), flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.child")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve")
    serve.add_argument("--items", type=int, required=True)
    serve.add_argument("--receipts", action="store_true", help="items carry receipts")
    engine = sub.add_parser("engine")
    engine.add_argument("--items", type=int, required=True)
    engine.add_argument("--base-url")
    engine.add_argument("--api-key")
    engine.add_argument("--company-id")
    engine.add_argument(
        "--receipts",
        action="store_true",
        help="the network connector (no wait per post): every receipt is downloaded, "
        "prefetched by the engine",
    )
    args = parser.parse_args(argv)
    if args.command == "serve":
        _serve(args.items, args.receipts)
    else:
        _engine(args)


if __name__ == "__main__":
    main()
