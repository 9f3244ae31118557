"""The exit status of every ``pleo-export`` command: one table, used by the code, the
``--help`` text and the docs (``tests/test_docs.py`` checks that the docs list the same)."""

from __future__ import annotations

from enum import IntEnum

__all__ = ["ExitCode", "describe"]


class ExitCode(IntEnum):
    OK = 0
    ITEMS_FAILED = 1
    CONFIG = 2
    UNAVAILABLE = 3
    INTERNAL = 4
    INTERRUPTED = 130
    BROKEN_PIPE = 141
    TERMINATED = 143


MEANINGS: dict[ExitCode, str] = {
    ExitCode.OK: "all good; also nothing to do, or jobs wait behind another worker",
    ExitCode.ITEMS_FAILED: "some items or jobs failed or would fail (see the report)",
    ExitCode.CONFIG: "configuration or usage error (the message says what to change)",
    ExitCode.UNAVAILABLE: "Pleo unreachable or answering errors, after the retries",
    ExitCode.INTERNAL: "internal error: a bug in pleo-export or a connector; please report",
    ExitCode.INTERRUPTED: "interrupted with Ctrl-C; the next run resumes",
    ExitCode.BROKEN_PIPE: "the output was closed early (e.g. `| head`)",
    ExitCode.TERMINATED: "stopped by SIGTERM; the next run resumes",
}
"""One line per code, for ``--help``; docs/lifecycle.md explains each in full."""


def describe() -> str:
    """The table as plain lines, ``<code>  <meaning>``."""
    return "\n".join(f"  {int(code):>3}  {MEANINGS[code]}" for code in ExitCode)
