"""The Pleo sandbox in its own process, serving loopback HTTP, for the kill -9 chaos test.

Run as a script (``python -m tests.chaos.sandbox_server``). It serves an empty sandbox on a
free port of 127.0.0.1, prints ``READY <base url>`` on stdout once it accepts connections, and
serves until its standard input closes (the test closes it, or dies) or it is terminated.
Companies and exports are set up through the admin endpoints under ``/_sandbox/``.

The workers the chaos test kills start hundreds of times per minute against one API key, far
above Pleo's 600 requests per minute, so this sandbox's rate limit is raised; everything else
is the sandbox's default behaviour except that receipts are never the 3 MB "large" kind (the
chaos test is about crashes, not file sizes, and large receipts only slow it down).
"""

from __future__ import annotations

import sys

import anyio
import anyio.to_thread

from pleo_export_sandbox import Sandbox, SandboxConfig
from pleo_export_sandbox.server import running_server

RATE_LIMIT_PER_MINUTE = 1_000_000


async def _serve() -> None:
    config = SandboxConfig(rate_limit_per_minute=RATE_LIMIT_PER_MINUTE, large_file_rate=0.0)
    sandbox = Sandbox(config)
    sandbox.requests = _Discard()
    async with running_server(sandbox, port=0) as base_url:
        sys.stdout.write(f"READY {base_url}\n")
        sys.stdout.flush()
        # Returns when the parent closes our stdin (also when the parent is killed).
        await anyio.to_thread.run_sync(sys.stdin.read)


class _Discard(list):  # type: ignore[type-arg]
    """``Sandbox.requests`` that keeps nothing: a long chaos run would otherwise hoard them."""

    def append(self, _record: object) -> None:
        return None


if __name__ == "__main__":
    anyio.run(_serve)
