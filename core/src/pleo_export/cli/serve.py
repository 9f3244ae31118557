"""``pleo-export serve``: the service, ``run --watch`` with its receivers, in one process."""

from __future__ import annotations

import sys

import click

from pleo_export.cli.common import Context, run_command
from pleo_export.cli.root import main
from pleo_export.cli.run import _run_async
from pleo_export.exit_codes import ExitCode

SERVE_HELP = """Run as a service: export jobs as they appear, until stopped.

\b
One process runs three things:
  - the watch loop of `run --watch`: every pending job of every company
    served, then a wait of engine.poll_interval seconds (default 60), again
    and again; a Pleo outage is ridden out with backoff, never an exit;
  - the webhook receiver, when webhooks.listen is set (with webhooks.secret,
    or the secrets `pleo-export webhooks subscribe` stored): Pleo's
    v1.export-job.created event cuts the wait short;
  - the endpoints of installed plugins that serve something, e.g.
    pleo-export-metrics: /metrics, /healthz and /readyz at
    plugins.metrics.listen (docs/metrics.md).
The log says what is served (event watch.started, webhook.listening,
metrics.listening); each round's report goes to stdout.

\b
Stopping: send SIGTERM (systemctl stop, docker stop). The process stops at
the next await: an item being posted is parked, because its intent is
already in the state store and the next start looks it up by reference
before posting it again; outcomes not yet reported to Pleo are reported by
the next start; the company lease is released on the way out, so another
worker may take over at once. Nothing is lost or booked twice.

\b
Exit status (serve does not stop by itself):
  {terminated}  stopped by SIGTERM (the normal way to stop a service; tell
       your supervisor it is a success, e.g. SuccessExitStatus=143)
  {interrupted}  stopped with Ctrl-C
  {config}    configuration error, or an address to listen on is taken
       (the message names the setting)
  {internal}    a bug: please report it
Have a supervisor restart it after {internal} or a crash, not after {config}
(a person must change the configuration first).

\b
Examples:
  pleo-export serve                       with ./pleo-export.toml
  pleo-export --log-format json serve     JSON log lines for a collector
  pleo-export serve --company ID          serve only this company
Deployment files (systemd unit, Dockerfile, compose with PostgreSQL):
contrib/deploy/, described in docs/deploy.md.
"""


@main.command(
    help=SERVE_HELP.format(
        terminated=int(ExitCode.TERMINATED),
        interrupted=int(ExitCode.INTERRUPTED),
        config=int(ExitCode.CONFIG),
        internal=int(ExitCode.INTERNAL),
    ),
    short_help="Run as a service: run --watch, webhooks and metrics in one process.",
)
@click.option(
    "--company",
    "companies",
    multiple=True,
    help="Serve this company (repeat for several); overrides pleo.company_id/company_ids.",
)
@click.pass_obj
def serve(obj: Context, companies: tuple[str, ...]) -> None:
    code = run_command(
        lambda: _run_async(
            obj,
            True,
            False,
            None,
            None,
            False,
            True,
            companies=companies,
            serving=True,
        )
    )
    sys.exit(code)
