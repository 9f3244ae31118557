"""pleo-export-notify: one message per export job with failures, by email and JSON webhook.

Registered as plugin ``notify`` (entry-point group ``pleo_export.plugins``) and configured in
``[plugins.notify]``; see ``docs/notify.md``. The plugin observes only
(``pleo_export_job_finished``): whatever happens while sending, the export's outcome is the
same. A channel that fails is logged (``notify.failed``) and the other channel still sends.
"""

from __future__ import annotations

import logging

from pleo_export import ExportJob, JobReport, hookimpl
from pleo_export_notify.delivery import DeliveryError, post_webhook, send_email
from pleo_export_notify.message import Summary, payload, subject, summarise, text
from pleo_export_notify.settings import EmailSettings, NotifySettings, WebhookSettings

log = logging.getLogger("pleo_export_notify")


class NotifyPlugin:
    """The ``notify`` plugin; the plugin host makes one instance and configures it."""

    settings_model = NotifySettings

    def __init__(self) -> None:
        self.settings: NotifySettings | None = None

    def configure(self, settings: NotifySettings) -> None:
        self.settings = settings
        if not settings.channels:
            log.info(
                "notify is installed but sends nothing: add [plugins.notify.email] or "
                "[plugins.notify.webhook] to the configuration",
                extra={"event": "notify.unconfigured"},
            )

    def __repr__(self) -> str:
        return f"NotifyPlugin(settings={self.settings!r})"

    @hookimpl
    def pleo_export_job_finished(self, job: ExportJob, report: JobReport) -> None:
        settings = self.settings
        if settings is None or report.dry_run or not settings.channels:
            return
        summary = summarise(job, report, settings.max_items)
        if settings.on == "failures" and not summary.has_failures:
            return
        self.send(summary)

    def send(self, summary: Summary) -> dict[str, bool]:
        """Send ``summary`` on every configured channel; whether each one delivered."""
        assert self.settings is not None
        sent: dict[str, bool] = {}
        channels = (("email", self.settings.email), ("webhook", self.settings.webhook))
        for channel, config in channels:
            if config is None:
                continue
            try:
                if isinstance(config, EmailSettings):
                    send_email(
                        config, subject(summary, self.settings.subject_prefix), text(summary)
                    )
                else:
                    post_webhook(config, payload(summary))
            except DeliveryError as error:
                sent[channel] = False
                log.error(
                    "notification for job %s not sent by %s: %s",
                    summary.job_id,
                    channel,
                    error,
                    extra={
                        "event": "notify.failed",
                        "channel": channel,
                        "job_id": summary.job_id,
                    },
                )
                continue
            sent[channel] = True
            log.info(
                "notification for job %s sent by %s",
                summary.job_id,
                channel,
                extra={"event": "notify.sent", "channel": channel, "job_id": summary.job_id},
            )
        return sent


__all__ = ["EmailSettings", "NotifyPlugin", "NotifySettings", "WebhookSettings"]
