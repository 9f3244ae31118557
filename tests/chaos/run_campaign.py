"""Run one chaos campaign in its own process: ``python -m tests.chaos.run_campaign``.

The test runs the SQLite and the PostgreSQL campaigns side by side, one process each (each
with its own sandbox server and forkserver), and reads their results from the JSON files they
write. Run it by hand to try a seed or a size::

    python3 -m uv run python -m tests.chaos.run_campaign --backend sqlite \\
        --state-url sqlite:////tmp/chaos/state.db --work /tmp/chaos --result /tmp/chaos.json \\
        --seed 42 --min-kills 20 --min-items 250

This module stays small on purpose: multiprocessing re-runs the main module in every worker
it starts.
"""

from __future__ import annotations

if __name__ == "__main__":
    from tests.chaos.campaign import main

    main()
