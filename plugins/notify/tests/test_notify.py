"""The notify plugin against a real SMTP server (aiosmtpd) and a real HTTP receiver, both on
loopback, driven by the plugin conformance check's sandbox exports."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from pleo_export import JobReport
from pleo_export.testing import check_plugin
from pleo_export_notify import NotifyPlugin, NotifySettings
from pleo_export_notify.delivery import DeliveryError, send_email
from pleo_export_notify.message import summarise, text
from pleo_export_notify.settings import EmailSettings
from pleo_export_sandbox import Sandbox
from plugins.notify.tests.servers import (
    LOOPBACK,
    PASSWORD,
    USERNAME,
    Certificate,
    Receiver,
    StartSmtp,
    free_port,
)

pytestmark = pytest.mark.anyio

WEBHOOK_SECRET = "whsec-3b8e0f6a1c"


def _email(port: int, ca: Path, **overrides: Any) -> dict[str, Any]:
    return {
        "host": LOOPBACK,
        "port": port,
        "security": "starttls",
        "ca_file": str(ca),
        "username": USERNAME,
        "password": PASSWORD,
        "sender": "pleo-export@example.com",
        "recipients": ["finance@example.com", "controller@example.com"],
        "timeout": 5,
    } | overrides


def _failed_refs(outcome: Any, job_index: int) -> set[str]:
    job = outcome.jobs[job_index]
    return {i.accounting_entry_id for i in job.items if i.status == "failed"}


async def test_one_email_and_one_signed_webhook_per_job_with_failures(
    tmp_path: Path, smtp_server: StartSmtp, certificate: Certificate, receiver: Receiver
) -> None:
    server = smtp_server("starttls")
    settings = {
        "max_items": 2,
        "email": _email(server.port, certificate.cert),
        "webhook": {"url": receiver.url, "secret": WEBHOOK_SECRET, "timeout": 5},
    }
    report = await check_plugin("notify", settings=settings, work_dir=tmp_path)
    assert report.hooks == ("pleo_export_job_finished",)
    journal_failed = _failed_refs(report.outcome, 0)
    assert len(journal_failed) == 3

    # Two jobs, both with failures: two emails, over TLS, after logging in.
    mails = server.mailbox.messages
    assert len(mails) == 2
    assert server.mailbox.logins == [(USERNAME, PASSWORD)] * 2
    assert all(encrypted for _from, _to, encrypted in server.mailbox.envelopes)
    assert server.mailbox.envelopes[0][1] == ["finance@example.com", "controller@example.com"]
    first, second = mails
    journal_id = report.outcome.jobs[0].items[0].accounting_entry_id  # any item of job 1
    assert journal_id
    assert first["Subject"].startswith("[pleo-export] export job ")
    assert first["Subject"].endswith(": 3 of 8 items failed")
    body = first.get_content()
    assert "8 items: 5 exported, 3 failed." in body
    assert "  account_unknown: 3" in body
    listed = [ref for ref in journal_failed if ref in body]
    assert len(listed) == 2  # max_items
    assert "... and 1 more" in body
    assert "account 6999 is not in the ledger: create the account" in body
    assert "failed (invalid_configuration)" in second["Subject"]
    assert "The job failed: invalid_configuration: the job uses vendor-based" in (
        second.get_content()
    )
    assert "3 items, none exported: the job stopped before them." in second.get_content()

    # The same two summaries as JSON, each signed over "<timestamp>.<body>".
    assert len(receiver.requests) == 2
    for request in receiver.requests:
        assert request.path == "/hooks/pleo?token=t0k3n-in-url"
        timestamp = request.headers["X-Pleo-Export-Timestamp"]
        expected = hmac.new(
            WEBHOOK_SECRET.encode(), timestamp.encode() + b"." + request.body, hashlib.sha256
        ).hexdigest()
        assert request.headers["X-Pleo-Export-Signature"] == f"sha256={expected}"
        assert request.headers["Content-Type"] == "application/json"
    journal, vendor = (json.loads(r.body) for r in receiver.requests)
    assert journal["status"] == "completed_with_errors"
    assert journal["items"] == {"total": 8, "succeeded": 5, "failed": 3}
    assert journal["failures_by_reason"] == {"account_unknown": 3}
    assert len(journal["failed_items"]) == 2 and journal["failed_items_not_listed"] == 1
    assert {i["reference"] for i in journal["failed_items"]} <= journal_failed
    assert all(i["reason_type"] == "account_unknown" for i in journal["failed_items"])
    assert journal["job_failure"] is None
    assert vendor["status"] == "failed"
    assert vendor["job_failure"]["reason_type"] == "invalid_configuration"
    assert vendor["items"] == {"total": 3, "succeeded": 0, "failed": 0}

    # Sent, logged as sent, and no secret in any log line of that run (the check looks too).
    sent = [r for r in report.as_is.records if getattr(r, "event", "") == "notify.sent"]
    assert [r.channel for r in sent] == ["email", "webhook", "email", "webhook"]


async def test_a_failing_smtp_server_and_receiver_never_change_the_export(
    tmp_path: Path, smtp_server: StartSmtp, certificate: Certificate, receiver: Receiver
) -> None:
    server = smtp_server("starttls", refuse_with="451 4.3.0 Mail queue full, try later")
    receiver.status = 503
    settings = {
        "email": _email(server.port, certificate.cert),
        "webhook": {"url": receiver.url, "secret": WEBHOOK_SECRET, "timeout": 5},
    }
    # The check compares every item and job with an export without the plugin.
    report = await check_plugin("notify", settings=settings, work_dir=tmp_path)
    assert report.failed_as_is == {}  # the plugin handled its failures itself
    failed = [r for r in report.as_is.records if getattr(r, "event", "") == "notify.failed"]
    assert [r.channel for r in failed] == ["email", "webhook", "email", "webhook"]
    messages = [r.getMessage() for r in failed]
    assert "answered 451 4.3.0 Mail queue full" in messages[0]
    assert "answered 503" in messages[1]
    assert all("t0k3n" not in m and PASSWORD not in m for m in messages)
    assert server.mailbox.messages == [] and len(receiver.requests) == 2


async def test_nothing_listening_is_a_delivery_failure_not_an_export_failure(
    tmp_path: Path, certificate: Certificate
) -> None:
    closed = free_port()
    settings = {
        "email": _email(closed, certificate.cert),
        "webhook": {"url": f"http://{LOOPBACK}:{free_port()}/x", "timeout": 2},
    }
    report = await check_plugin("notify", settings=settings, work_dir=tmp_path)
    failed = [r for r in report.as_is.records if getattr(r, "event", "") == "notify.failed"]
    assert len(failed) == 4
    assert "ConnectionRefusedError" in failed[0].getMessage()


def test_implicit_tls_delivers(smtp_server: StartSmtp, certificate: Certificate) -> None:
    server = smtp_server("ssl")
    settings = EmailSettings.model_validate(_email(server.port, certificate.cert, security="ssl"))
    send_email(settings, "subject line", "body text\n")
    (message,) = server.mailbox.messages
    assert message["Subject"] == "subject line"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message.get_content().splitlines() == ["body text"]
    assert server.mailbox.logins == [(USERNAME, PASSWORD)]


def test_an_untrusted_certificate_is_refused(
    smtp_server: StartSmtp, other_certificate: Certificate
) -> None:
    server = smtp_server("starttls")
    settings = EmailSettings.model_validate(_email(server.port, other_certificate.cert))
    with pytest.raises(DeliveryError, match=r"TLS with SMTP server .* failed .*ca_file"):
        send_email(settings, "s", "b")
    assert server.mailbox.messages == [] and server.mailbox.logins == []


def test_a_wrong_password_is_named_without_the_password(
    smtp_server: StartSmtp, certificate: Certificate
) -> None:
    server = smtp_server("starttls")
    settings = EmailSettings.model_validate(
        _email(server.port, certificate.cert, password="not-the-password")
    )
    with pytest.raises(DeliveryError) as caught:
        send_email(settings, "s", "b")
    assert f"refused the login of {USERNAME!r} (535)" in str(caught.value)
    assert "not-the-password" not in str(caught.value)


def test_settings_refuse_what_would_leak_or_send_nothing() -> None:
    with pytest.raises(ValidationError, match="would send the password in plain text"):
        EmailSettings.model_validate(_email(25, Path("ca.pem"), security="none"))
    with pytest.raises(ValidationError, match="set both username and password"):
        EmailSettings.model_validate(_email(25, Path("ca.pem"), password=None))
    assert NotifySettings().channels == []  # installed, not configured: sends nothing
    with pytest.raises(ValidationError, match="not an email address"):
        EmailSettings.model_validate(_email(25, Path("ca.pem"), recipients=["finance"]))


def test_secrets_are_masked_in_repr() -> None:
    plugin = NotifyPlugin()
    plugin.configure(
        NotifySettings.model_validate(
            {
                "email": _email(587, Path("ca.pem")),
                "webhook": {"url": "https://hooks.example.com/x", "secret": WEBHOOK_SECRET},
            }
        )
    )
    shown = repr(plugin) + str(plugin.settings)
    assert PASSWORD not in shown and WEBHOOK_SECRET not in shown
    assert "SecretStr('**********')" in shown
    assert plugin.settings is not None and plugin.settings.email is not None
    assert plugin.settings.email.password == SecretStr(PASSWORD)


def _finished_job(report: JobReport) -> Any:
    sandbox = Sandbox()
    company = sandbox.add_company(name="Notify Ltd", wallet_currency="GBP")
    job = sandbox.queue_export(company.id, count=1, attachments=False)
    report.job_id, report.company_id = job.id, job.company_id
    return job


def test_on_always_sends_for_a_clean_job_and_dry_runs_send_nothing(
    smtp_server: StartSmtp, certificate: Certificate, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pleo_export_notify")
    server = smtp_server("starttls")
    clean = JobReport(job_id="", company_id="", items_total=4, posted=4, final_event="completed")
    job = _finished_job(clean)
    plugin = NotifyPlugin()
    plugin.configure(
        NotifySettings.model_validate({"email": _email(server.port, certificate.cert)})
    )
    plugin.pleo_export_job_finished(job, clean)
    assert server.mailbox.messages == []  # on = "failures": nothing failed

    plugin.configure(
        NotifySettings.model_validate(
            {"on": "always", "email": _email(server.port, certificate.cert)}
        )
    )
    dry = JobReport(job_id=job.id, company_id=job.company_id, items_total=4, dry_run=True)
    plugin.pleo_export_job_finished(job, dry)
    assert server.mailbox.messages == []
    plugin.pleo_export_job_finished(job, clean)
    (message,) = server.mailbox.messages
    assert message["Subject"] == f"[pleo-export] export job {job.id}: completed, 4 items"
    assert "What to do" not in message.get_content()


def test_the_summary_counts_every_failure_and_lists_the_first_ones() -> None:
    report = JobReport(
        job_id="", company_id="", items_total=5, posted=1, final_event="completed_with_errors"
    )
    job = _finished_job(report)
    for n in range(3):
        report.add_failure(f"ref-{n}", "tax_code_unknown", f"tax code ZZ{n} is unknown")
    report.add_failure("ref-3", "validation_failure", "note is empty: add a note in Pleo")
    body = text(summarise(job, report, max_items=3))
    assert "5 items: 1 exported, 4 failed." in body
    assert "  tax_code_unknown: 3\n  validation_failure: 1" in body
    assert "  - ref-2: tax_code_unknown: tax code ZZ2 is unknown" in body
    assert "ref-3" not in body and "... and 1 more" in body
    assert "tax_code_unknown: create the tax code in the accounting system" in body


async def test_installed_without_a_table_it_passes_the_check_and_sends_nothing(
    tmp_path: Path,
) -> None:
    report = await check_plugin("notify", work_dir=tmp_path)
    events = [getattr(r, "event", "") for r in report.as_is.records]
    assert "notify.sent" not in events and "notify.failed" not in events
