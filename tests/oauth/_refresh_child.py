"""A separate pleo-export process that needs the OAuth access token (for test_processes.py).

Usage: ``python -m tests.oauth._refresh_child CONFIG_JSON`` with the client secret in
``$CHILD_CLIENT_SECRET``. Prints ``ready``, waits for the go file, asks its token manager for
an access token (the stored one is due, so this refreshes or waits for another process's
refresh), calls the Export API with it and prints one JSON line. The token itself is never
printed: only its SHA-256.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from typing import Any

import anyio
import httpx
from pydantic import SecretStr

from pleo_export.pleo.oauth import OAuthInstallation
from pleo_export.state import open_store


async def main(config: dict[str, Any]) -> None:
    installation = OAuthInstallation(
        store=open_store(config["state_url"]),
        auth_url=config["auth_url"],
        client_id=config["client_id"],
        client_secret=SecretStr(os.environ["CHILD_CLIENT_SECRET"]),
        redirect_uri=None,
        poll_interval=0.02,
    )
    go = anyio.Path(config["go_file"])
    async with installation:
        print("ready", flush=True)
        with anyio.fail_after(30):
            while not await go.exists():  # noqa: ASYNC110 - a cross-process barrier
                await anyio.sleep(0.002)
        token = await installation.manager.access_token()
        async with httpx.AsyncClient(base_url=config["auth_url"]) as http:
            response = await http.get(
                "/v3/export-jobs",
                headers={"Authorization": f"Bearer {token.get_secret_value()}"},
            )
    result = {
        "sha": hashlib.sha256(token.get_secret_value().encode()).hexdigest(),
        "refreshes": installation.manager.refreshes,
        "api_status": response.status_code,
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    anyio.run(main, json.loads(sys.argv[1]))
