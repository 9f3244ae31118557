"""The Pleo Export API sandbox: a faithful local simulator of Pleo's v3 Export API.

::

    from pleo_export_sandbox import Sandbox, SandboxConfig

    sb = Sandbox(SandboxConfig())
    company = sb.add_company(name="Demo Ltd", wallet_currency="GBP")
    job = sb.queue_export(company.id, count=120, seed=1)
    async with httpx.AsyncClient(transport=sb.transport(), base_url=sb.base_url,
                                 auth=(company.api_key, "")) as client:
        jobs = (await client.get("/v3/export-jobs", params={"statuses": "pending"})).json()

Behaviour follows the OpenAPI spec (``pleo-export-openapi.yml``, ``*V3``) and Pleo's guides.
Where both are silent the sandbox chooses, and says so:

* ``started`` on an ``in_progress`` job is 422 unless ``started_is_idempotent``;
* with ``strict_completion`` (default) ``completed``/``completed_with_errors`` are 422 while
  items are pending or in_progress; a ``pending`` job may be ``failed`` directly;
* a job expires ``job_expires_in`` seconds after its last event or item update, becoming
  ``failed``/``job_expired``; unfinished items become ``abandoned``;
* an item exported ``successful`` cannot be set to another status (per-item error
  ``EXPORT_ENTRY_STATUS_UPDATE_FAILED``);
* unknown job on ``POST /v3/export-job-events`` or ``GET /v3/export-items``: 404
  ``EXPORT_NOT_FOUND``; ``GET /v3/export-items`` without ``job_id``: 400;
* 401/403/429 bodies are ``ExceptionInfo`` with types ``UNAUTHORIZED``, ``FORBIDDEN``,
  ``RATE_LIMITED``; 429 carries ``Retry-After`` in whole seconds;
* OAuth (``/oauth/authorize``, ``/oauth/token``, :mod:`pleo_export_sandbox.oauth`): the choices
  are listed in ``SANDBOX_OAUTH_DEVIATIONS`` there;
* the Vendors, Tax Code, Tags and Webhook Subscriptions APIs
  (:mod:`pleo_export_sandbox.masterdata_routes`): the choices are listed in
  :mod:`pleo_export_sandbox.masterdata_store`.
"""

from pleo_export_sandbox.app import Sandbox
from pleo_export_sandbox.chart import DEMO_CHART, UNKNOWN_ACCOUNT_CODE, Chart, ChartAccount
from pleo_export_sandbox.config import RequestRecord, SandboxConfig
from pleo_export_sandbox.faults import ArmedFault, FaultRule
from pleo_export_sandbox.files import render_file
from pleo_export_sandbox.generator import generate_items
from pleo_export_sandbox.records import ALL_SCOPES, ApiError, Company, Credential

__all__ = [
    "ALL_SCOPES",
    "DEMO_CHART",
    "UNKNOWN_ACCOUNT_CODE",
    "ApiError",
    "ArmedFault",
    "Chart",
    "ChartAccount",
    "Company",
    "Credential",
    "FaultRule",
    "RequestRecord",
    "Sandbox",
    "SandboxConfig",
    "generate_items",
    "render_file",
]
