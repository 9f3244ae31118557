"""The signature check of docs/notify.md, run on a request the plugin really sent."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pleo_export_notify.delivery import post_webhook
from pleo_export_notify.settings import WebhookSettings
from plugins.notify.tests.servers import Receiver

PAGE = Path(__file__).resolve().parents[3] / "docs" / "notify.md"


def _documented_verifier() -> Any:
    section = PAGE.read_text(encoding="utf-8").split("### Verifying the signature", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert code is not None
    namespace: dict[str, Any] = {}
    exec(compile(code.group(1), str(PAGE), "exec"), namespace)  # noqa: S102 - our own docs
    return namespace["verified"]


def test_the_documented_check_accepts_a_real_request_and_refuses_tampering(
    receiver: Receiver,
) -> None:
    verified = _documented_verifier()
    settings = WebhookSettings.model_validate({"url": receiver.url, "secret": "s3cret-hmac"})
    assert post_webhook(settings, {"type": "pleo_export.job_finished", "failed": 2}) == 204
    (request,) = receiver.requests
    assert verified("s3cret-hmac", request.headers, request.body)
    assert not verified("another-secret", request.headers, request.body)
    assert not verified("s3cret-hmac", request.headers, request.body.replace(b"2", b"0"))
    stale = request.headers | {"X-Pleo-Export-Timestamp": "1000000000"}
    assert not verified("s3cret-hmac", stale, request.body)
