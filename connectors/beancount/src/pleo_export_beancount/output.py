"""The output file: append-only, one block per item, torn trailing blocks cut off on open.

Each item is appended with a single ``os.write`` on an ``O_APPEND`` descriptor followed by
``os.fsync``. A block starts with a ``; pleo-export begin <ref>`` line and ends with a
``; pleo-export end <ref>`` line (see :mod:`pleo_export_beancount.render`). A crash in the
middle of a write leaves a block without its end line at the end of the file; :meth:`recover`
truncates it. Content that pleo-export did not write is never removed.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pleo_export import (
    ExportJobFailureReasonType,
    JobRejected,
    OutcomeUncertain,
    TargetTemporarilyUnavailable,
)
from pleo_export_beancount.chart import parse_timestamp
from pleo_export_beancount.render import BEGIN_MARKER, END_MARKER

_BEGIN = BEGIN_MARKER.encode()
_END = END_MARKER.encode()
_TRANSACTION_RE = re.compile(rb"^\d{4}-\d{2}-\d{2} [*!]")
_EXPORTED_AT_RE = re.compile(rb'^\s+pleo-exported-at: "([^"]*)"')
# Binary mode matters on Windows, where os.open would otherwise translate newlines.
OPEN_FLAGS = getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


OUT_OF_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
"""``errno`` values that mean the disk (or the user's quota, or the file size limit) is full."""


def out_of_space(error: BaseException) -> bool:
    """Whether ``error`` says there is no room left for what was being written."""
    return isinstance(error, OSError) and error.errno in OUT_OF_SPACE


def disk_full(what: str, error: OSError) -> JobRejected:
    """The job stops: nothing more fits on the disk (every later item would fail the same way).

    Reported as ``integration_unusable``, as the SFTP connector reports a full server.
    """
    return JobRejected(
        ExportJobFailureReasonType.INTEGRATION_UNUSABLE,
        f"no space left to write {what} ({error.strerror or error}): free space (or raise the "
        "quota) on that disk and export again; nothing was written for this entry",
    )


@dataclass(frozen=True)
class BlockRecord:
    """A complete block found in the output file."""

    token: str
    """The reference as written in the markers (see ``render.reference_token``)."""
    line: int
    """1-based line of the block's first transaction (or of its begin marker)."""
    exported_at: datetime | None


@dataclass(frozen=True)
class Scan:
    """What a scan of the output file found."""

    blocks: dict[str, BlockRecord]
    size: int
    lines: int
    torn_at: int | None
    """Byte offset where a torn trailing block starts, if there is one."""


def scan(content: bytes) -> Scan:
    """Find the complete blocks of ``content`` and a torn block at its end, if any."""
    blocks: dict[str, BlockRecord] = {}
    offset = 0
    current: tuple[str, int, int] | None = None  # token, start offset, begin line
    first_txn: int | None = None
    exported_at: datetime | None = None
    lines = content.split(b"\n")
    for index, raw in enumerate(lines):
        number = index + 1
        complete = index < len(lines) - 1  # the last piece has no newline after it
        if raw.startswith(_BEGIN) and complete:
            start = offset
            # The block starts with an empty line: cut it together with the block.
            if start >= 2 and content[start - 2 : start] == b"\n\n":
                start -= 1
            current = (raw[len(_BEGIN) :].decode(errors="replace").strip(), start, number)
            first_txn, exported_at = None, None
        elif current is not None and complete:
            if (
                raw.startswith(_END)
                and raw[len(_END) :].decode(errors="replace").strip() == (current[0])
            ):
                blocks[current[0]] = BlockRecord(
                    token=current[0], line=first_txn or current[2], exported_at=exported_at
                )
                current = None
            elif first_txn is None and _TRANSACTION_RE.match(raw):
                first_txn = number
            elif exported_at is None and (match := _EXPORTED_AT_RE.match(raw)):
                exported_at = parse_timestamp(match.group(1).decode(errors="replace"))
        offset += len(raw) + 1
    torn_at: int | None = current[1] if current is not None else None
    tail = lines[-1]
    if torn_at is None and tail and (_BEGIN.startswith(tail) or tail.startswith(_BEGIN)):
        start = len(content) - len(tail)  # the write was cut inside the begin line itself
        if content[:start].endswith(b"\n\n") or content[:start] == b"\n":
            torn_at = start - 1
    return Scan(blocks=blocks, size=len(content), lines=content.count(b"\n"), torn_at=torn_at)


@contextlib.contextmanager
def _locked(fd: int) -> Iterator[None]:
    if sys.platform == "win32":  # pragma: no cover - no advisory locks there
        yield
        return
    import fcntl

    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


def _fsync_directory(directory: Path) -> None:
    if sys.platform == "win32":  # pragma: no cover
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class OutputFile:
    """Appends blocks to the output file and knows which blocks it holds."""

    def __init__(self, path: Path, logger: logging.Logger) -> None:
        self.path = path
        self.logger = logger
        self.blocks: dict[str, BlockRecord] = {}
        self._size = 0
        self._lines = 0

    def recover(self) -> Scan:
        """Scan the file, truncate a torn trailing block (with a warning), index the blocks."""
        if not self.path.exists():
            self.blocks, self._size, self._lines = {}, 0, 0
            return Scan(blocks={}, size=0, lines=0, torn_at=None)
        content = self.path.read_bytes()
        result = scan(content)
        if result.torn_at is not None:
            lost = len(content) - result.torn_at
            self.logger.warning(
                "%s ends with an incomplete pleo-export block (%d bytes without its "
                "'%s' line, left by an interrupted write): truncating it; the item was "
                "never reported as exported and will be posted again",
                self.path,
                lost,
                END_MARKER.strip(),
            )
            with open(self.path, "r+b") as handle:
                handle.truncate(result.torn_at)
                handle.flush()
                os.fsync(handle.fileno())
            result = scan(content[: result.torn_at])
        self.blocks, self._size, self._lines = result.blocks, result.size, result.lines
        return result

    def refresh(self) -> None:
        """Re-scan when the file changed behind our back (cheap: no beancount parsing)."""
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return
        if size != self._size:
            result = scan(self.path.read_bytes())
            self.blocks, self._size, self._lines = result.blocks, result.size, result.lines

    def append(self, text: str) -> int:
        """Append ``text`` in one write and fsync it; return the line number it starts on.

        Raises :class:`TargetTemporarilyUnavailable` when nothing was written (a partial write
        is truncated away) and :class:`OutcomeUncertain` when that cannot be guaranteed.
        """
        start = self.append_built(lambda: text)
        return 0 if start is None else start  # never None: the text is always written

    def append_built(self, build: Callable[[], str | None]) -> int | None:
        """Like :meth:`append`, with the text built by ``build`` while the file is locked, so
        that what it decides from the ledger holds when it is written (``None``: write
        nothing and answer ``None``)."""
        created = not self.path.exists()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | OPEN_FLAGS, 0o644)
        except OSError as error:
            if out_of_space(error):
                raise disk_full(f"the output file {self.path}", error) from error
            raise TargetTemporarilyUnavailable(
                f"cannot open the output file {self.path} for appending: {error.strerror}; "
                "check that it exists and is writable"
            ) from error
        try:
            with _locked(fd):
                text = build()
                if text is None:
                    return None
                data = text.encode("utf-8")
                size = os.fstat(fd).st_size
                if size != self._size:
                    self._lines = self.path.read_bytes()[:size].count(b"\n")
                    self._size = size
                start_line = self._lines + 1
                view = memoryview(data)
                try:
                    # One write normally. A short write (the disk filled up mid-block) is
                    # continued, so the next write names the real error (ENOSPC).
                    while view:
                        written = os.write(fd, view)
                        if written <= 0:
                            raise OSError(f"short write: {len(data) - len(view)} of {len(data)}")
                        view = view[written:]
                except OSError as error:
                    self._undo(fd, size, error)
                try:
                    os.fsync(fd)
                except OSError as error:
                    raise OutcomeUncertain(
                        f"fsync of {self.path} failed ({error}): the entry may or may not "
                        "be on disk"
                    ) from error
                self._size = size + len(data)
                self._lines += data.count(b"\n")
        finally:
            os.close(fd)
        if created:
            _fsync_directory(self.path.parent)
        return start_line

    def _undo(self, fd: int, size: int, error: OSError) -> None:
        try:
            os.ftruncate(fd, size)
            os.fsync(fd)
        except OSError as undo_error:
            raise OutcomeUncertain(
                f"writing to {self.path} failed ({error}) and the partial block could not be "
                f"removed ({undo_error}); it is cut off the next time the connector opens"
            ) from error
        if out_of_space(error):
            raise disk_full(f"the output file {self.path}", error) from error
        raise TargetTemporarilyUnavailable(
            f"writing to {self.path} failed ({error}); nothing was written"
        ) from error
