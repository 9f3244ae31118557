"""Which process holds a lease, and whether that process is provably dead.

Every lease row records the process that took it (:func:`this_process`): host name, boot id,
PID namespace, PID and the process's start time. A lease whose process is on *this* host (same
host name, same boot, same PID namespace, so the PID means the same process here) and no
longer runs is taken over at once instead of after ``engine.lease_ttl``
(:func:`is_dead`). Anything that cannot be proven dead (a process on another host or in
another container, an old row without a process, a system without ``/proc``) counts as alive,
and its lease expires by itself as before.

:func:`lease_decision` is the one rule both state backends apply when a lease is requested.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
from dataclasses import dataclass
from functools import cache
from pathlib import Path

__all__ = ["default_worker_id", "is_dead", "lease_decision", "this_process"]

_PROC = Path("/proc")


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return ""


def _start_time(pid: int) -> str | None:
    """The start time of ``pid`` in clock ticks since boot (Linux), ``""`` where ``/proc`` is
    not available, ``None`` when the process does not exist or is a zombie."""
    if not _PROC.is_dir():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return ""
    stat = _read(_PROC / str(pid) / "stat")
    if not stat:
        return None
    # Fields after the command name, which is in parentheses and may contain spaces.
    fields = stat.rsplit(")", 1)[-1].split()
    if len(fields) < 20 or fields[0] in ("Z", "X"):  # zombie or dead: it runs no more
        return None
    return fields[19]


@cache
def _machine(pid: int) -> tuple[str, str, str]:
    """Host name, boot id and PID namespace of this process (cached per PID: a fork differs)."""
    pidns = ""
    with contextlib.suppress(OSError):
        pidns = os.readlink("/proc/self/ns/pid")
    return socket.gethostname(), _read(_PROC / "sys/kernel/random/boot_id"), pidns


def this_process() -> str:
    """``host|boot id|pid namespace|pid|start time`` of the running process."""
    pid = os.getpid()
    host, boot, pidns = _machine(pid)
    return "|".join((host, boot, pidns, str(pid), _start_time(pid) or ""))


def is_dead(process: str | None) -> bool:
    """Whether ``process`` (as :func:`this_process` wrote it) is provably not running: it was
    on this host and in this PID namespace, and its PID is gone, a zombie, or reused by a
    process that started at another time. ``False`` whenever that cannot be known."""
    if not process:
        return False
    parts = process.split("|")
    if len(parts) != 5 or not parts[3].isdigit():
        return False
    host, boot, pidns, pid_text, started = parts
    if (host, boot, pidns) != _machine(os.getpid()):
        return False
    pid = int(pid_text)
    now = _start_time(pid)
    return now is None or (bool(started) and bool(now) and now != started)


@dataclass(frozen=True)
class LeaseDecision:
    take: bool
    new_holder: bool
    """The lease changes hands: the fencing token goes up, so the old holder's renewals
    fail."""


def lease_decision(
    *, holder: str, process: str, row_holder: str, row_process: str | None, expired: bool
) -> LeaseDecision:
    """Whether ``holder`` in ``process`` may take a lease whose row says ``row_holder`` in
    ``row_process`` (``expired``: its expiry has passed).

    - Expired: yes.
    - Held by the same holder in the same process: yes (this worker, again).
    - Held by a process that is provably dead (see :func:`is_dead`): yes, at once.
    - Held by the same holder in a live process on this host: no (one installation never
      serves a company twice at once).
    - Held by the same holder in a process that cannot be checked (another host, an old row):
      yes, as an explicit ``engine.worker_id`` promises one process per id.
    - Held by another holder: no.
    """
    same_process = row_process == process
    changes = row_holder != holder or not same_process
    if expired:
        return LeaseDecision(True, changes)
    if row_holder == holder and same_process:
        return LeaseDecision(True, False)
    if not same_process and is_dead(row_process):
        return LeaseDecision(True, True)
    if row_holder != holder or same_process:
        return LeaseDecision(False, False)
    if row_process and _same_machine(row_process):
        return LeaseDecision(False, False)  # a live process here uses the same worker id
    return LeaseDecision(True, False)


def _same_machine(process: str) -> bool:
    parts = process.split("|")
    return len(parts) == 5 and tuple(parts[:3]) == _machine(os.getpid())


def default_worker_id(state_location: str) -> str:
    """``<host name>-<8 hex digits>``: the same for every run of one installation on one host
    (the digits hash the state store's location), so a restarted worker recognises its own
    leases. Pass the location without a password."""
    digest = hashlib.sha256(state_location.encode("utf-8")).hexdigest()[:8]
    return f"{socket.gethostname()}-{digest}"
