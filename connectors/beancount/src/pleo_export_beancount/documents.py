"""Receipts stored under ``documents_dir``: written atomically before the item's block is
appended, and removed again when the block is not appended."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from pleo_export_beancount.output import OPEN_FLAGS


def write_document(path: Path, content: bytes) -> bool:
    """Write ``content`` to ``path`` atomically (temporary file, fsync, rename).

    Returns whether the file was written now (``False``: an earlier attempt stored it). On any
    error the temporary file is removed, so a full disk leaves nothing half-written behind.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and path.read_bytes() == content:
        return False  # written by an earlier attempt whose transaction never landed
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | OPEN_FLAGS, 0o644)
        try:
            view = memoryview(content)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return True


def remove_documents(paths: list[Path]) -> None:
    """Remove receipts stored for an entry that was not appended (best effort)."""
    for path in paths:
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)
