"""Child process for the SIGKILL durability test (run as a script, not collected by pytest).

Usage: ``python _crash_child.py STATE_URL JOB_ID``. Writes to the store, prints ``READY`` as
soon as ``record_outcome`` has returned, then blocks until the parent kills it with SIGKILL.
The store is deliberately never closed.
"""

from __future__ import annotations

import sys

import anyio

from pleo_export.state import ItemOutcome, open_store


async def main(url: str, job_id: str) -> None:
    store = open_store(url)
    await store.open()
    await store.upsert_job(job_id, "company-1")
    await store.mark_started(job_id)
    await store.add_items(job_id, [("done", "pending"), ("uncertain", "pending")])
    await store.record_intent(job_id, "uncertain")
    await store.record_intent(job_id, "done")
    await store.record_outcome(
        job_id, "done", ItemOutcome(succeeded=True, external_id="INV-42", external_url="u")
    )
    sys.stdout.write("READY\n")
    sys.stdout.flush()
    await anyio.sleep(60)  # the parent kills us long before this ends


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], sys.argv[2])
