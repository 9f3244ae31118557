"""Lease holders' processes: who is provably dead, and who may take a lease."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pleo_export.state import open_store
from pleo_export.state.process import (
    default_worker_id,
    is_dead,
    lease_decision,
    this_process,
)


def _process_of_finished_child() -> str:
    """The identity a child process recorded, after the child has exited (and been reaped)."""
    code = "from pleo_export.state.process import this_process; print(this_process())"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return done.stdout.strip()


def test_this_process_is_alive_and_a_finished_child_is_dead() -> None:
    assert not is_dead(this_process())
    child = _process_of_finished_child()
    assert child.split("|")[:3] == this_process().split("|")[:3]
    assert is_dead(child)


@pytest.mark.parametrize(
    "process",
    [
        None,
        "",
        "garbage",
        "another-host|boot|pid:[1]|1|1",  # another host: cannot be checked
    ],
)
def test_what_cannot_be_checked_counts_as_alive(process: str | None) -> None:
    assert not is_dead(process)


def test_a_reused_pid_is_dead() -> None:
    host, boot, pidns, pid, started = this_process().split("|")
    if not started:
        pytest.skip("no /proc start times on this system")
    assert is_dead("|".join((host, boot, pidns, pid, str(int(started) + 1))))


def test_lease_decision_rules() -> None:
    me = this_process()
    dead = _process_of_finished_child()
    elsewhere = "another-host|boot|pid:[1]|42|7"

    def decide(
        holder: str, row_holder: str, row_process: str | None, expired: bool = False
    ) -> tuple[bool, bool]:
        d = lease_decision(
            holder=holder,
            process=me,
            row_holder=row_holder,
            row_process=row_process,
            expired=expired,
        )
        return (d.take, d.new_holder)

    assert decide("w", "other", elsewhere, expired=True) == (True, True)
    assert decide("w", "w", me) == (True, False)  # this worker again
    assert decide("w", "other", me) == (False, False)  # another holder in this process
    assert decide("w", "other", dead) == (True, True)  # a dead process's lease: at once
    assert decide("w", "w", dead) == (True, True)  # our own id, restarted
    assert decide("w", "other", elsewhere) == (False, False)
    assert decide("w", "w", elsewhere) == (True, False)  # explicit id on another host
    assert decide("w", "w", None) == (True, False)  # a row from before the process column


def test_a_live_process_with_the_same_worker_id_keeps_its_lease(tmp_path: Path) -> None:
    """Another live process on this host holding ``w``: a second ``w`` is kept out."""
    db = tmp_path / "state.db"
    code = (
        "import anyio, sys\n"
        "from pleo_export.state import open_store\n"
        "async def main():\n"
        f"    store = open_store('sqlite:///{db}')\n"
        "    await store.open()\n"
        "    assert await store.acquire_lease('company:c-1', 'w', 300) is not None\n"
        "    print('held', flush=True)\n"
        "    sys.stdin.readline()\n"
        "    await store.close()\n"
        "anyio.run(main)\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"

        import anyio

        async def attempt() -> bool:
            store = open_store(f"sqlite:///{db}")
            await store.open()
            try:
                return await store.acquire_lease("company:c-1", "w", 300) is not None
            finally:
                await store.close()

        assert anyio.run(attempt) is False
        assert holder.stdin is not None
        holder.stdin.close()  # the holder exits without releasing (like a crash after its work)
        holder.wait(30)
        holder.stdin = None
        # Now dead: taken over at once, although 300 s are left on the lease.
        assert anyio.run(attempt) is True
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(30)


def test_default_worker_id_is_stable_per_state_location() -> None:
    first = default_worker_id("sqlite:////srv/a/pleo-export.db")
    assert first == default_worker_id("sqlite:////srv/a/pleo-export.db")
    assert first != default_worker_id("sqlite:////srv/b/pleo-export.db")
    assert len(first.rsplit("-", 1)[1]) == 8
