"""Client of Pleo's master-data APIs: Vendors, Tax Code, Tags and Webhook Subscriptions.

:class:`PleoMasterData` sends through an existing :class:`~pleo_export.pleo.client.PleoClient`,
so master-data calls share its request budget, credential (API key, token or OAuth), retries
(429 with ``Retry-After``, 5xx, timeouts), statistics and log hygiene with the export run::

    async with PleoClient(PRODUCTION_URL, ApiKeyAuth(key)) as client:
        pleo = PleoMasterData(client, company_id)
        vendors = await pleo.list_vendors([VendorState.ACTIVE])

Nothing is ever deleted: vendors are archived with ``POST /v1/vendors/{id}:archive``, tax codes,
tag groups and tags by updating them with ``archived: true`` (Pleo may have booked spend on
them). Only webhook subscriptions are deleted.

**Dimensions and tags.** An accounting dimension (department, project, cost centre...) is one
Pleo *tag group*: the group's ``code`` is the dimension's code and its ``name`` the dimension's
name. Each value of the dimension is one *tag* in that group, matched by ``code``, with the
value's name as the tag's ``name``. Export lines carry ``tags[]`` as ``{id, code, groupCode}``,
so the accounting side finds the dimension by ``groupCode`` and the value by ``code``. A closed
dimension or value is archived, never deleted. The Tags API's own *dimensions*
(``/v0/tag-groups/{groupId}/dimensions``, with per-tag values) are extra display columns of a
group (e.g. a manager's name next to each cost centre); they are not needed for exports and
this client does not manage them.

Errors are those of :mod:`pleo_export.pleo.errors`; a 409 (a vendor whose code or external id
already exists) raises :class:`AlreadyExists`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from pydantic import SecretStr

from pleo_export import logs
from pleo_export.pleo.client import PleoClient
from pleo_export.pleo.errors import PleoHttpError, ResponseSchemaError
from pleo_export.pleo.masterdata_models import (
    EXPORT_JOB_CREATED,
    VENDOR_CREATED,
    PleoSubscription,
    PleoTag,
    PleoTagGroup,
    PleoTaxCode,
    PleoVendor,
    SubscriptionStatus,
    VendorState,
)
from pleo_export.pleo.models import TaxType
from pleo_export.pleo.transport import ModelT, data_of

__all__ = [
    "EXPORT_JOB_CREATED",
    "VENDOR_CREATED",
    "AlreadyExists",
    "PleoMasterData",
    "PleoSubscription",
    "PleoTag",
    "PleoTagGroup",
    "PleoTaxCode",
    "PleoVendor",
    "SubscriptionStatus",
    "VendorState",
]

_SEARCH_FILTER_MAX = 100
"""``VendorSearchRequestV1`` list filters take at most this many values."""


class AlreadyExists(PleoHttpError):
    """409: the resource exists already (a vendor with the same code or external id)."""


class PleoMasterData:
    """Pleo's Vendors, Tax Code, Tags and Webhook Subscriptions APIs for one company.

    ``client`` is an open :class:`~pleo_export.pleo.client.PleoClient` (its budget, auth and
    retries are used); ``company_id`` is the company whose master data is read and written
    (the Vendors and Tax Code APIs need it on every call).
    """

    def __init__(self, client: PleoClient, company_id: str) -> None:
        if not company_id:
            raise ValueError("company_id is required for Pleo's master-data APIs")
        self.client = client
        self.company_id = company_id
        self.sandbox: Any = None
        """The built-in sandbox serving these calls, when there is one (``open_master_data``
        with ``pleo.base_url = "sandbox"``); ``None`` against Pleo."""

    # --- vendors ------------------------------------------------------------------------------

    async def list_vendors(
        self, states: Iterable[VendorState] | None = None, *, codes: Iterable[str] = ()
    ) -> list[PleoVendor]:
        """Every vendor of the company (all pages of ``POST /v1/vendors:search``), optionally
        only those in ``states`` and/or with one of ``codes`` (searched 100 at a time)."""
        body: dict[str, Any] = {}
        if states is not None:
            body["states"] = sorted({VendorState(s).value for s in states})
        wanted = list(dict.fromkeys(codes))
        if not wanted:
            return await self._search_vendors(body)
        found: list[PleoVendor] = []
        for start in range(0, len(wanted), _SEARCH_FILTER_MAX):
            chunk = wanted[start : start + _SEARCH_FILTER_MAX]
            found += await self._search_vendors({**body, "codes": chunk})
        return found

    async def _search_vendors(self, body: dict[str, Any]) -> list[PleoVendor]:
        endpoint = "POST /v1/vendors:search"
        vendors: list[PleoVendor] = []
        params = [("company_id", self.company_id)]
        async for page in self.client._pages(
            "/v1/vendors:search", endpoint, params, method="POST", json_body=body
        ):
            vendors += self._list(PleoVendor, page, endpoint)
        return vendors

    async def get_vendor(self, vendor_id: str) -> PleoVendor:
        """One vendor; :class:`~pleo_export.pleo.errors.NotFound` if Pleo does not know it."""
        endpoint = "GET /v1/vendors/{id}"
        body = await self._call("GET", f"/v1/vendors/{_segment(vendor_id)}", endpoint)
        return self._one(PleoVendor, body, endpoint)

    async def create_vendor(
        self,
        *,
        name: str,
        default_currency: str,
        code: str | None = None,
        external_id: str | None = None,
        country: str | None = None,
        tax_registration_number: str | None = None,
        registration_number: str | None = None,
    ) -> PleoVendor:
        """Create a vendor (``POST /v1/vendors``). Pleo creates a vendor that has a code and
        external id from the accounting system as ``ACTIVE``. Raises :class:`AlreadyExists`
        (409) when one with the same code or external id exists."""
        endpoint = "POST /v1/vendors"
        payload = _vendor_body(
            self.company_id,
            name=name,
            default_currency=default_currency,
            code=code,
            external_id=external_id,
            country=country,
            tax_registration_number=tax_registration_number,
            registration_number=registration_number,
        )
        body = await self._call("POST", "/v1/vendors", endpoint, json_body=payload)
        return self._one(PleoVendor, body, endpoint)

    async def update_vendor(
        self,
        vendor_id: str,
        *,
        name: str,
        default_currency: str,
        external_id: str,
        state: VendorState = VendorState.ACTIVE,
        code: str | None = None,
        country: str | None = None,
        tax_registration_number: str | None = None,
        registration_number: str | None = None,
    ) -> PleoVendor:
        """Replace a vendor's fields (``PUT /v1/vendors/{id}``; every field is sent, an
        omitted optional one is cleared)."""
        endpoint = "PUT /v1/vendors/{id}"
        payload = _vendor_body(
            self.company_id,
            name=name,
            default_currency=default_currency,
            code=code,
            external_id=external_id,
            country=country,
            tax_registration_number=tax_registration_number,
            registration_number=registration_number,
        )
        payload["state"] = VendorState(state).value
        path = f"/v1/vendors/{_segment(vendor_id)}"
        body = await self._call("PUT", path, endpoint, json_body=payload)
        return self._one(PleoVendor, body, endpoint)

    async def archive_vendor(self, vendor_id: str) -> None:
        """Archive a vendor (``POST /v1/vendors/{id}:archive``); it is never deleted."""
        endpoint = "POST /v1/vendors/{id}:archive"
        path = f"/v1/vendors/{_segment(vendor_id)}:archive"
        await self._call("POST", path, endpoint, parse=False)

    async def activate_vendor(self, vendor_id: str, code: str | None, external_id: str) -> None:
        """Acknowledge that a draft vendor now exists in the accounting system under ``code``
        and ``external_id`` (``POST /v1/vendors/{id}:activate``); Pleo makes it ``ACTIVE``.
        Also re-activates an archived vendor."""
        endpoint = "POST /v1/vendors/{id}:activate"
        payload: dict[str, Any] = {"externalId": external_id}
        if code is not None:
            payload["code"] = code
        path = f"/v1/vendors/{_segment(vendor_id)}:activate"
        await self._call("POST", path, endpoint, json_body=payload, parse=False)

    # --- tax codes ----------------------------------------------------------------------------

    async def list_tax_codes(self, include_archived: bool = True) -> list[PleoTaxCode]:
        """Every tax code of the company (all pages of ``POST /v0/tax-codes:search``)."""
        endpoint = "POST /v0/tax-codes:search"
        search: dict[str, Any] = {} if include_archived else {"archived": False}
        codes: list[PleoTaxCode] = []
        params = [("company_id", self.company_id)]
        async for page in self.client._pages(
            "/v0/tax-codes:search", endpoint, params, method="POST", json_body=search
        ):
            codes += self._list(PleoTaxCode, page, endpoint)
        return codes

    async def create_tax_code(
        self,
        *,
        name: str,
        rate: Decimal,
        type: TaxType,
        code: str | None = None,
        archived: bool = False,
        ingoing_tax_account: str | None = None,
        outgoing_tax_account: str | None = None,
    ) -> PleoTaxCode:
        """Create a tax code (``POST /v0/tax-codes``); ``rate`` is a fraction (0.25)."""
        endpoint = "POST /v0/tax-codes"
        payload = _tax_body(
            self.company_id,
            name,
            rate,
            type,
            code,
            archived,
            ingoing_tax_account,
            outgoing_tax_account,
        )
        body = await self._call("POST", "/v0/tax-codes", endpoint, json_body=payload)
        return self._one(PleoTaxCode, body, endpoint)

    async def update_tax_code(
        self,
        tax_code_id: str,
        *,
        name: str,
        rate: Decimal,
        type: TaxType,
        code: str | None = None,
        archived: bool = False,
        ingoing_tax_account: str | None = None,
        outgoing_tax_account: str | None = None,
    ) -> PleoTaxCode:
        """Replace a tax code's fields (``PUT /v0/tax-codes/{taxCodeId}``). Archive with
        ``archived=True``; tax codes are never deleted."""
        endpoint = "PUT /v0/tax-codes/{taxCodeId}"
        payload = _tax_body(
            self.company_id,
            name,
            rate,
            type,
            code,
            archived,
            ingoing_tax_account,
            outgoing_tax_account,
        )
        path = f"/v0/tax-codes/{_segment(tax_code_id)}"
        body = await self._call("PUT", path, endpoint, json_body=payload)
        return self._one(PleoTaxCode, body, endpoint)

    async def archive_tax_code(self, tax_code: PleoTaxCode) -> PleoTaxCode:
        """``tax_code`` with ``archived: true`` (an :meth:`update_tax_code`)."""
        return await self.update_tax_code(
            tax_code.id,
            name=tax_code.name,
            rate=tax_code.rate,
            type=tax_code.type,
            code=tax_code.code,
            archived=True,
            ingoing_tax_account=tax_code.ingoing_tax_account,
            outgoing_tax_account=tax_code.outgoing_tax_account,
        )

    # --- tag groups and tags --------------------------------------------------------------------

    async def list_tag_groups(self, include_archived: bool = True) -> list[PleoTagGroup]:
        """The company's tag groups (``GET /v0/tag-groups``; one unpaginated list)."""
        endpoint = "GET /v0/tag-groups"
        params = [("company_id", self.company_id)]
        body = await self._call("GET", "/v0/tag-groups", endpoint, params=params)
        groups = self._list(PleoTagGroup, _list_data(body, endpoint), endpoint)
        return [g for g in groups if include_archived or not g.archived]

    async def list_tags(self, group_id: str, include_archived: bool = True) -> list[PleoTag]:
        """Every tag of a group (all pages of ``GET /v0/tag-groups/{groupId}/tags``)."""
        endpoint = "GET /v0/tag-groups/{groupId}/tags"
        params = [("include_archived", "true" if include_archived else "false")]
        path = f"/v0/tag-groups/{_segment(group_id)}/tags"
        tags: list[PleoTag] = []
        async for page in self.client._pages(path, endpoint, params):
            tags += self._list(PleoTag, page, endpoint)
        return tags

    async def create_tag_group(
        self,
        *,
        code: str,
        name: str,
        archived: bool = False,
        metadata: Mapping[str, str] | None = None,
    ) -> PleoTagGroup:
        """Create a tag group for a dimension (``POST /v0/tag-groups``)."""
        endpoint = "POST /v0/tag-groups"
        payload: dict[str, Any] = {"code": code, "name": name, "archived": archived}
        if metadata is not None:
            payload["metadata"] = dict(metadata)
        params = [("company_id", self.company_id)]
        body = await self._call(
            "POST", "/v0/tag-groups", endpoint, params=params, json_body=payload
        )
        return self._one(PleoTagGroup, body, endpoint)

    async def update_tag_group(
        self,
        group_id: str,
        *,
        code: str,
        name: str,
        archived: bool = False,
        metadata: Mapping[str, str] | None = None,
    ) -> PleoTagGroup:
        """Replace a tag group's fields (``PUT /v0/tag-groups/{groupId}``); archive with
        ``archived=True``, never delete."""
        endpoint = "PUT /v0/tag-groups/{groupId}"
        payload = {
            "code": code,
            "name": name,
            "archived": archived,
            "metadata": dict(metadata or {}),
        }
        path = f"/v0/tag-groups/{_segment(group_id)}"
        body = await self._call("PUT", path, endpoint, json_body=payload)
        return self._one(PleoTagGroup, body, endpoint)

    async def create_tag(
        self, group_id: str, *, code: str, name: str | None = None, archived: bool = False
    ) -> PleoTag:
        """Create a tag (a dimension value) in a group (``POST /v0/tag-groups/{groupId}/tags``)."""
        endpoint = "POST /v0/tag-groups/{groupId}/tags"
        payload: dict[str, Any] = {"code": code, "archived": archived}
        if name is not None:
            payload["name"] = name
        path = f"/v0/tag-groups/{_segment(group_id)}/tags"
        body = await self._call("POST", path, endpoint, json_body=payload)
        return self._one(PleoTag, body, endpoint)

    async def update_tag(
        self, tag_id: str, *, code: str, name: str | None = None, archived: bool = False
    ) -> PleoTag:
        """Replace a tag's fields (``PUT /v0/tags/{tagId}``); archive with ``archived=True``."""
        endpoint = "PUT /v0/tags/{tagId}"
        payload: dict[str, Any] = {"code": code, "archived": archived}
        if name is not None:
            payload["name"] = name
        body = await self._call("PUT", f"/v0/tags/{_segment(tag_id)}", endpoint, json_body=payload)
        return self._one(PleoTag, body, endpoint)

    # --- webhook subscriptions ------------------------------------------------------------------

    async def list_subscriptions(
        self, status: SubscriptionStatus | None = None
    ) -> list[PleoSubscription]:
        """The credential's webhook subscriptions (all pages of ``GET /v1/subscriptions``)."""
        endpoint = "GET /v1/subscriptions"
        params = [] if status is None else [("status", SubscriptionStatus(status).value)]
        found: list[PleoSubscription] = []
        async for page in self.client._pages("/v1/subscriptions", endpoint, params):
            found += self._list(PleoSubscription, page, endpoint)
        return found

    async def get_subscription(self, subscription_id: str) -> PleoSubscription:
        endpoint = "GET /v1/subscriptions/{id}"
        path = f"/v1/subscriptions/{_segment(subscription_id)}"
        return self._one(PleoSubscription, await self._call("GET", path, endpoint), endpoint)

    async def create_subscription(
        self,
        endpoint_url: str,
        event_types: Iterable[str] = (EXPORT_JOB_CREATED, VENDOR_CREATED),
        *,
        status: SubscriptionStatus = SubscriptionStatus.ACTIVE,
    ) -> PleoSubscription:
        """Subscribe ``endpoint_url`` to ``event_types`` (``POST /v1/subscriptions``);
        deliveries are signed with the secret :meth:`get_subscription_secret` reads."""
        endpoint = "POST /v1/subscriptions"
        types = list(dict.fromkeys(event_types))
        if not types:
            raise ValueError("event_types must name at least one event type")
        payload = {
            "endpointUrl": endpoint_url,
            "eventTypes": types,
            "status": SubscriptionStatus(status).value,
        }
        body = await self._call("POST", "/v1/subscriptions", endpoint, json_body=payload)
        return self._one(PleoSubscription, body, endpoint)

    async def delete_subscription(self, subscription_id: str) -> None:
        """Delete a subscription (``DELETE /v1/subscriptions/{id}``)."""
        endpoint = "DELETE /v1/subscriptions/{id}"
        path = f"/v1/subscriptions/{_segment(subscription_id)}"
        await self._call("DELETE", path, endpoint, parse=False)

    async def get_subscription_secret(self, subscription_id: str) -> SecretStr:
        """The subscription's signing secret (``whsec_...``), registered for redaction."""
        endpoint = "GET /v1/subscriptions/{id}/secret"
        path = f"/v1/subscriptions/{_segment(subscription_id)}/secret"
        data = data_of(await self._call("GET", path, endpoint), endpoint)
        secret = data.get("secretKey") if isinstance(data, dict) else None
        if not isinstance(secret, str) or not secret:
            raise ResponseSchemaError(f"{endpoint}: response field 'data.secretKey' is missing")
        logs.register_secret(secret)
        return SecretStr(secret)

    # --- plumbing -----------------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        endpoint: str,
        *,
        params: list[tuple[str, str]] | None = None,
        json_body: Any = None,
        parse: bool = True,
    ) -> Any:
        try:
            return await self.client._call(
                method, path, endpoint, params=params or (), json_body=json_body, parse=parse
            )
        except PleoHttpError as error:
            if error.status_code == 409 and not isinstance(error, AlreadyExists):
                raise AlreadyExists(
                    409, error.code, error.message, method=error.method, url=error.url
                ) from error
            raise

    def _one(self, model: type[ModelT], body: Any, endpoint: str) -> ModelT:
        return self.client._validate(model, data_of(body, endpoint), endpoint, "data")

    def _list(self, model: type[ModelT], values: Iterable[Any], endpoint: str) -> list[ModelT]:
        return self.client._validate_list(model, values, endpoint)


def _segment(value: str) -> str:
    if not value:
        raise ValueError("a path parameter must not be empty")
    return quote(value, safe="")


def _list_data(body: Any, endpoint: str) -> list[Any]:
    data = data_of(body, endpoint)
    if not isinstance(data, list):
        raise ResponseSchemaError(f"{endpoint}: response field 'data' is not a list")
    return data


def _vendor_body(company_id: str, **fields: str | None) -> dict[str, Any]:
    aliases = {
        "name": "name",
        "default_currency": "defaultCurrency",
        "code": "code",
        "external_id": "externalId",
        "country": "country",
        "tax_registration_number": "taxRegistrationNumber",
        "registration_number": "registrationNumber",
    }
    body: dict[str, Any] = {"companyId": company_id}
    for name, value in fields.items():
        if value is not None:
            body[aliases[name]] = value
    return body


def _tax_body(
    company_id: str,
    name: str,
    rate: Decimal,
    type: TaxType,
    code: str | None,
    archived: bool,
    ingoing: str | None,
    outgoing: str | None,
) -> dict[str, Any]:
    value = Decimal(rate)
    if not value.is_finite() or not 0 <= value <= 1:
        raise ValueError(f"rate must be a fraction between 0 and 1 (25 % is 0.25), got {rate}")
    body: dict[str, Any] = {
        "companyId": company_id,
        "name": name,
        # JSON has no decimal type; the float of a short decimal prints back as that decimal.
        "rate": float(value),
        "type": TaxType(type).value,
        "archived": archived,
    }
    for key, extra in (
        ("code", code),
        ("ingoingTaxAccount", ingoing),
        ("outgoingTaxAccount", outgoing),
    ):
        if extra is not None:
            body[key] = extra
    return body
