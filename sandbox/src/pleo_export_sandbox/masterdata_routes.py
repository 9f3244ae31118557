"""Pleo's Vendors, Tax Code, Tags and Webhook Subscriptions APIs in the sandbox.

The handlers validate like the export endpoints (400 ``BAD_REQUEST`` naming the field; 403 for
another company's ``company_id``; 404 ``NOT_FOUND`` for an unknown id) and apply the rules of
:mod:`pleo_export_sandbox.masterdata_store`. Served endpoints, as the specs name them:

* Vendors: ``POST /v1/vendors``, ``POST /v1/vendors:search``, ``GET``/``PUT /v1/vendors/{id}``,
  ``POST /v1/vendors/{id}:archive``, ``POST /v1/vendors/{id}:activate``;
* Tax Code: ``POST /v0/tax-codes``, ``POST /v0/tax-codes:search``,
  ``GET``/``PUT /v0/tax-codes/{taxCodeId}`` (no ``DELETE``: tax codes are archived);
* Tags: ``GET``/``POST /v0/tag-groups``, ``GET``/``PUT /v0/tag-groups/{groupId}``,
  ``GET``/``POST /v0/tag-groups/{groupId}/tags``, ``GET``/``PUT /v0/tags/{tagId}``;
* Webhook Subscriptions: ``GET``/``POST /v1/subscriptions``,
  ``GET``/``PUT``/``DELETE /v1/subscriptions/{id}``, ``GET /v1/subscriptions/{id}/secret``.

Scopes: ``vendors:read``/``vendors:write`` are Pleo's; ``tax-codes:*``, ``tags:*`` and
``webhooks:*`` are the sandbox's guesses (Pleo does not name them).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pleo_export_sandbox.config import SandboxConfig
from pleo_export_sandbox.masterdata_store import (
    EVENT_TYPES,
    TAX_TYPES,
    VENDOR_STATES,
    MasterDataStore,
    SubscriptionRecord,
)
from pleo_export_sandbox.paging import paginate
from pleo_export_sandbox.records import (
    SCOPE_TAGS_READ,
    SCOPE_TAGS_WRITE,
    SCOPE_TAX_CODES_READ,
    SCOPE_TAX_CODES_WRITE,
    SCOPE_VENDORS_READ,
    SCOPE_VENDORS_WRITE,
    SCOPE_WEBHOOKS_READ,
    SCOPE_WEBHOOKS_WRITE,
    ApiError,
    Credential,
    bad_request,
)
from pleo_export_sandbox.routes import ExportApi
from pleo_export_sandbox.store import Store, is_uuid
from pleo_export_sandbox.webhooks import Subscription, WebhookEmitter
from pleo_export_sandbox.wire import (
    Handler,
    JsonResponse,
    Query,
    json_body,
    page_body,
    parse_page_request,
)

_CURRENCY = re.compile(r"^[A-Z]{3}$")
_COUNTRY = re.compile(r"^([A-Z]{2}|UNDEFINED)$")

Api = Callable[[str, Handler], Callable[[Request], Awaitable[Response]]]


# --- body validation --------------------------------------------------------------------------


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object")
    return body


def _text(body: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise bad_request(f"body field {name} is required")
        return None
    if not isinstance(value, str):
        raise bad_request(f"body field {name} must be a string, got {value!r}")
    if required and not value.strip():
        raise bad_request(f"body field {name} must not be empty")
    return value


def _required(body: dict[str, Any], name: str) -> str:
    value = _text(body, name, required=True)
    assert value is not None
    return value


def _flag(body: dict[str, Any], name: str, *, required: bool = False) -> bool | None:
    value = body.get(name)
    if value is None:
        if required:
            raise bad_request(f"body field {name} is required")
        return None
    if not isinstance(value, bool):
        raise bad_request(f"body field {name} must be true or false, got {value!r}")
    return value


def _strings(body: dict[str, Any], name: str, limit: int) -> list[str] | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise bad_request(f"body field {name} must be a list of strings")
    if len(value) > limit:
        raise bad_request(f"body field {name} takes at most {limit} values, got {len(value)}")
    return value


def _path_uuid(request: Request, name: str) -> str:
    value: str = request.path_params[name]
    if not is_uuid(value):
        raise bad_request(f"path parameter {name} must be a UUID, got {value!r}")
    return value


def _vendor_fields(body: dict[str, Any]) -> dict[str, Any]:
    name = _required(body, "name")
    currency = _required(body, "defaultCurrency")
    if not _CURRENCY.match(currency):
        raise bad_request(f"body field defaultCurrency must be an ISO 4217 code, got {currency!r}")
    country = _text(body, "country")
    if country is not None and not _COUNTRY.match(country):
        raise bad_request(f"body field country must be an ISO 3166-1 alpha-2 code: {country!r}")
    return {
        "name": name,
        "default_currency": currency,
        "code": _text(body, "code"),
        "external_id": _text(body, "externalId"),
        "country": country,
        "tax_registration_number": _text(body, "taxRegistrationNumber"),
        "registration_number": _text(body, "registrationNumber"),
    }


def _tax_fields(body: dict[str, Any]) -> dict[str, Any]:
    rate = body.get("rate")
    if isinstance(rate, bool) or not isinstance(rate, int | float):
        raise bad_request(f"body field rate must be a number, got {rate!r}")
    value = Decimal(repr(rate)) if isinstance(rate, float) else Decimal(rate)
    if not 0 <= value <= 1:
        raise bad_request(f"body field rate must be a fraction between 0 and 1, got {rate!r}")
    kind = _required(body, "type")
    if kind not in TAX_TYPES:
        raise bad_request(f"body field type is {kind!r}; expected one of {', '.join(TAX_TYPES)}")
    return {
        "name": _required(body, "name"),
        "rate": value,
        "type": kind,
        "archived": _flag(body, "archived", required=True),
        "code": _text(body, "code"),
        "ingoing_tax_account": _text(body, "ingoingTaxAccount"),
        "outgoing_tax_account": _text(body, "outgoingTaxAccount"),
    }


def _group_fields(body: dict[str, Any], *, metadata_required: bool) -> dict[str, Any]:
    metadata = body.get("metadata")
    if metadata is None and metadata_required:
        raise bad_request("body field metadata is required")
    if metadata is not None and (
        not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values())
    ):
        raise bad_request("body field metadata must be an object of strings")
    return {
        "code": _required(body, "code"),
        "name": _required(body, "name"),
        "archived": _flag(body, "archived", required=True),
        "metadata": dict(metadata or {}),
    }


def _tag_fields(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "code": _required(body, "code"),
        "name": _text(body, "name"),
        "archived": _flag(body, "archived", required=True),
    }


def _subscription_fields(body: dict[str, Any]) -> dict[str, Any]:
    url = _required(body, "endpointUrl")
    if not re.match(r"^https?://[^/\s]+", url):
        raise bad_request(f"body field endpointUrl must be an absolute http(s) URL, got {url!r}")
    types = _strings(body, "eventTypes", 100)
    if not types:
        raise bad_request("body field eventTypes must name at least one event type")
    if len(set(types)) != len(types):
        raise bad_request("body field eventTypes must not repeat an event type")
    unknown = [t for t in types if t not in EVENT_TYPES]
    if unknown:
        raise bad_request(
            f"body field eventTypes has unknown event types {unknown}; known: "
            f"{', '.join(EVENT_TYPES)}"
        )
    status = body.get("status", "ACTIVE")
    if status not in ("ACTIVE", "INACTIVE"):
        raise bad_request(f"body field status is {status!r}; expected ACTIVE or INACTIVE")
    return {"endpoint_url": url, "event_types": types, "status": status}


# --- the handlers -----------------------------------------------------------------------------


class MasterDataApi:
    """The master-data endpoints, mixed into :class:`~pleo_export_sandbox.app.Sandbox`."""

    config: SandboxConfig
    store: Store
    masterdata: MasterDataStore
    webhooks: WebhookEmitter
    _targets: dict[str, Subscription]

    @staticmethod
    def _companies(credential: Credential) -> list[str]:
        return [credential.company_id, *sorted(credential.companies - {credential.company_id})]

    def _covered(self, company_id: str, credential: Credential) -> str:
        if not credential.covers(company_id):
            raise ApiError(
                403, "FORBIDDEN", f"The credential is not authorised for company {company_id}."
            )
        return company_id

    def master_data_routes(self, api: Api) -> list[Route]:
        r, w = SCOPE_VENDORS_READ, SCOPE_VENDORS_WRITE
        tr, tw = SCOPE_TAX_CODES_READ, SCOPE_TAX_CODES_WRITE
        gr, gw = SCOPE_TAGS_READ, SCOPE_TAGS_WRITE
        sr, sw = SCOPE_WEBHOOKS_READ, SCOPE_WEBHOOKS_WRITE
        return [
            Route("/v1/vendors:search", api(r, self._search_vendors), methods=["POST"]),
            Route("/v1/vendors", api(w, self._create_vendor), methods=["POST"]),
            Route("/v1/vendors/{id}:archive", api(w, self._archive_vendor), methods=["POST"]),
            Route("/v1/vendors/{id}:activate", api(w, self._activate_vendor), methods=["POST"]),
            Route("/v1/vendors/{id}", api(r, self._get_vendor), methods=["GET"]),
            Route("/v1/vendors/{id}", api(w, self._update_vendor), methods=["PUT"]),
            Route("/v0/tax-codes:search", api(tr, self._search_tax_codes), methods=["POST"]),
            Route("/v0/tax-codes", api(tw, self._create_tax_code), methods=["POST"]),
            Route("/v0/tax-codes/{taxCodeId}", api(tr, self._get_tax_code), methods=["GET"]),
            Route("/v0/tax-codes/{taxCodeId}", api(tw, self._update_tax_code), methods=["PUT"]),
            Route("/v0/tag-groups", api(gr, self._list_groups), methods=["GET"]),
            Route("/v0/tag-groups", api(gw, self._create_group), methods=["POST"]),
            Route("/v0/tag-groups/{groupId}", api(gr, self._get_group), methods=["GET"]),
            Route("/v0/tag-groups/{groupId}", api(gw, self._update_group), methods=["PUT"]),
            Route("/v0/tag-groups/{groupId}/tags", api(gr, self._list_tags), methods=["GET"]),
            Route("/v0/tag-groups/{groupId}/tags", api(gw, self._create_tag), methods=["POST"]),
            Route("/v0/tags/{tagId}", api(gr, self._get_tag), methods=["GET"]),
            Route("/v0/tags/{tagId}", api(gw, self._update_tag), methods=["PUT"]),
            Route("/v1/subscriptions", api(sr, self._list_subscriptions), methods=["GET"]),
            Route("/v1/subscriptions", api(sw, self._create_subscription), methods=["POST"]),
            Route("/v1/subscriptions/{id}", api(sr, self._get_subscription), methods=["GET"]),
            Route("/v1/subscriptions/{id}", api(sw, self._update_subscription), methods=["PUT"]),
            Route("/v1/subscriptions/{id}", api(sw, self._delete_subscription), methods=["DELETE"]),
            Route("/v1/subscriptions/{id}/secret", api(sr, self._secret), methods=["GET"]),
        ]

    # --- vendors ------------------------------------------------------------------------------

    async def _search_vendors(self, request: Request, credential: Credential) -> Response:
        query = Query(request)
        company_id = self._covered(_required_query(query, "company_id"), credential)
        page_request, info = parse_page_request(query, self.config)
        body = _object(await json_body(request, empty={}))
        states = _strings(body, "states", 4)
        for state in states or ():
            if state not in VENDOR_STATES:
                raise bad_request(f"body field states has {state!r}; expected {VENDOR_STATES}")
        filters = {
            "code": _strings(body, "codes", 100),
            "external_id": _strings(body, "externalIds", 100),
            "id": _strings(body, "ids", 100),
            "country": _strings(body, "countries", 100),
            "tax_registration_number": _strings(body, "taxRegistrationNumbers", 100),
            "state": states,
        }
        name = _text(body, "name")
        rows = [
            v
            for v in sorted(
                self.masterdata.company(company_id).vendors.values(), key=lambda v: v.seq
            )
            if all(allowed is None or getattr(v, k) in allowed for k, allowed in filters.items())
            and (name is None or name.lower() in v.name.lower())
        ]
        page = paginate(rows, lambda v: v.seq, page_request)
        data = [v.wire() for v in page.elements]
        return JsonResponse(page_body(page, data, info, {"company_id": [company_id]}))

    async def _create_vendor(self, request: Request, credential: Credential) -> Response:
        body = _object(await json_body(request))
        company_id = _required(body, "companyId")
        if not is_uuid(company_id):
            raise bad_request(f"body field companyId must be a UUID, got {company_id!r}")
        self._covered(company_id, credential)
        vendor = self.masterdata.create_vendor(company_id, _vendor_fields(body))
        return JsonResponse({"data": vendor.wire()}, status_code=201)

    def _vendor(self, request: Request, credential: Credential) -> Any:
        ident = _path_uuid(request, "id")
        return self.masterdata.find_vendor(self._companies(credential), ident)

    async def _get_vendor(self, request: Request, credential: Credential) -> Response:
        return JsonResponse({"data": self._vendor(request, credential).wire()})

    async def _update_vendor(self, request: Request, credential: Credential) -> Response:
        vendor = self._vendor(request, credential)
        body = _object(await json_body(request))
        company_id = _required(body, "companyId")
        if company_id != vendor.company_id:
            raise bad_request(f"body field companyId {company_id!r} is not the vendor's company")
        fields = _vendor_fields(body)
        if fields["external_id"] is None:
            raise bad_request("body field externalId is required")
        state = _required(body, "state")
        if state not in VENDOR_STATES:
            raise bad_request(f"body field state is {state!r}; expected one of {VENDOR_STATES}")
        updated = self.masterdata.update_vendor(vendor, {**fields, "state": state})
        return JsonResponse({"data": updated.wire()})

    async def _archive_vendor(self, request: Request, credential: Credential) -> Response:
        self.masterdata.set_vendor_state(self._vendor(request, credential), "ARCHIVED")
        return Response(status_code=204)

    async def _activate_vendor(self, request: Request, credential: Credential) -> Response:
        vendor = self._vendor(request, credential)
        body = _object(await json_body(request))
        external_id = _required(body, "externalId")
        code = _text(body, "code")
        self.masterdata.set_vendor_state(vendor, "ACTIVE", code=code, external_id=external_id)
        return Response(status_code=204)

    # --- tax codes ----------------------------------------------------------------------------

    async def _search_tax_codes(self, request: Request, credential: Credential) -> Response:
        query = Query(request)
        company_id = ExportApi._company_param(query, credential)
        page_request, info = parse_page_request(query, self.config)
        body = _object(await json_body(request, empty={}))
        archived = _flag(body, "archived")
        ids = _strings(body, "taxCodeIds", 1000)
        kind = _text(body, "type")
        if kind is not None and kind not in TAX_TYPES:
            raise bad_request(f"body field type is {kind!r}; expected one of {TAX_TYPES}")
        rows = [
            t
            for t in sorted(
                self.masterdata.company(company_id).tax_codes.values(), key=lambda t: t.seq
            )
            if (archived is None or t.archived == archived)
            and (ids is None or t.id in ids)
            and (kind is None or t.type == kind)
        ]
        page = paginate(rows, lambda t: t.seq, page_request)
        data = [t.wire() for t in page.elements]
        return JsonResponse(page_body(page, data, info, {"company_id": [company_id]}))

    async def _create_tax_code(self, request: Request, credential: Credential) -> Response:
        body = _object(await json_body(request))
        company_id = _required(body, "companyId")
        if not is_uuid(company_id):
            raise bad_request(f"body field companyId must be a UUID, got {company_id!r}")
        self._covered(company_id, credential)
        record = self.masterdata.save_tax_code(company_id, _tax_fields(body))
        return JsonResponse({"data": record.wire()})

    async def _get_tax_code(self, request: Request, credential: Credential) -> Response:
        ident = _path_uuid(request, "taxCodeId")
        found = self.masterdata.find_tax_code(self._companies(credential), ident)
        return JsonResponse({"data": found.wire()})

    async def _update_tax_code(self, request: Request, credential: Credential) -> Response:
        ident = _path_uuid(request, "taxCodeId")
        found = self.masterdata.find_tax_code(self._companies(credential), ident)
        body = _object(await json_body(request))
        if _required(body, "companyId") != found.company_id:
            raise bad_request("body field companyId is not the tax code's company")
        record = self.masterdata.save_tax_code(found.company_id, _tax_fields(body), found)
        return JsonResponse({"data": record.wire()})

    # --- tag groups and tags ------------------------------------------------------------------

    async def _list_groups(self, request: Request, credential: Credential) -> Response:
        company_id = ExportApi._company_param(Query(request), credential)
        groups = sorted(
            self.masterdata.company(company_id).tag_groups.values(), key=lambda g: g.seq
        )
        return JsonResponse({"data": [g.wire() for g in groups]})

    async def _create_group(self, request: Request, credential: Credential) -> Response:
        company_id = ExportApi._company_param(Query(request), credential)
        body = _object(await json_body(request))
        fields = _group_fields(body, metadata_required=False)
        return JsonResponse({"data": self.masterdata.save_group(company_id, fields).wire()})

    def _group(self, request: Request, credential: Credential) -> Any:
        ident = _path_uuid(request, "groupId")
        return self.masterdata.find_group(self._companies(credential), ident)

    async def _get_group(self, request: Request, credential: Credential) -> Response:
        return JsonResponse({"data": self._group(request, credential).wire()})

    async def _update_group(self, request: Request, credential: Credential) -> Response:
        group = self._group(request, credential)
        fields = _group_fields(_object(await json_body(request)), metadata_required=True)
        saved = self.masterdata.save_group(group.company_id, fields, group)
        return JsonResponse({"data": saved.wire()})

    async def _list_tags(self, request: Request, credential: Credential) -> Response:
        group = self._group(request, credential)
        query = Query(request)
        page_request, info = parse_page_request(query, self.config)
        raw = query.one("include_archived")
        if raw not in (None, "true", "false"):
            raise bad_request(f"query parameter include_archived must be true or false: {raw!r}")
        include = raw == "true"
        tags = self.masterdata.company(group.company_id).tags.values()
        rows = sorted(
            (t for t in tags if t.group_id == group.id and (include or not t.archived)),
            key=lambda t: t.seq,
        )
        page = paginate(rows, lambda t: t.seq, page_request)
        parameters = {"include_archived": [raw]} if raw is not None else {}
        data = [t.wire() for t in page.elements]
        return JsonResponse(page_body(page, data, info, parameters))

    async def _create_tag(self, request: Request, credential: Credential) -> Response:
        group = self._group(request, credential)
        fields = _tag_fields(_object(await json_body(request)))
        return JsonResponse({"data": self.masterdata.save_tag(group, fields).wire()})

    async def _get_tag(self, request: Request, credential: Credential) -> Response:
        ident = _path_uuid(request, "tagId")
        return JsonResponse(
            {"data": self.masterdata.find_tag(self._companies(credential), ident).wire()}
        )

    async def _update_tag(self, request: Request, credential: Credential) -> Response:
        ident = _path_uuid(request, "tagId")
        tag = self.masterdata.find_tag(self._companies(credential), ident)
        fields = _tag_fields(_object(await json_body(request)))
        group = self.masterdata.company(tag.company_id).tag_groups[tag.group_id]
        return JsonResponse({"data": self.masterdata.save_tag(group, fields, tag).wire()})

    # --- webhook subscriptions ----------------------------------------------------------------

    def subscription_target(self, record: SubscriptionRecord) -> Subscription:
        """The emitter's delivery target of an API subscription (kept in step with it)."""
        target = self._targets.get(record.id)
        if target is None:
            target = self._targets[record.id] = Subscription(record.endpoint_url, record.secret)
        target.url = record.endpoint_url
        return target

    def api_subscribers(self, company_id: str, event_type: str) -> list[Subscription]:
        return [
            self.subscription_target(s) for s in self.masterdata.subscribers(company_id, event_type)
        ]

    async def _list_subscriptions(self, request: Request, credential: Credential) -> Response:
        query = Query(request)
        page_request, info = parse_page_request(query, self.config)
        status = query.one("status")
        if status not in (None, "ACTIVE", "INACTIVE"):
            raise bad_request(f"query parameter status must be ACTIVE or INACTIVE: {status!r}")
        types = [t for value in query.all("event_types") for t in value.split(",") if t]
        subs = self.masterdata.company(credential.company_id).subscriptions.values()
        rows = sorted(
            (
                s
                for s in subs
                if (status is None or s.status == status)
                and (not types or any(t in s.event_types for t in types))
            ),
            key=lambda s: s.seq,
        )
        page = paginate(rows, lambda s: s.seq, page_request)
        parameters: dict[str, list[str]] = {}
        if status is not None:
            parameters["status"] = [status]
        if types:
            parameters["event_types"] = types
        data = [s.wire() for s in page.elements]
        return JsonResponse(page_body(page, data, info, parameters))

    async def _create_subscription(self, request: Request, credential: Credential) -> Response:
        fields = _subscription_fields(_object(await json_body(request)))
        record = self.masterdata.save_subscription(credential.company_id, fields)
        return JsonResponse({"data": record.wire()})

    def _subscription(self, request: Request, credential: Credential) -> SubscriptionRecord:
        ident = _path_uuid(request, "id")
        return self.masterdata.find_subscription(self._companies(credential), ident)

    async def _get_subscription(self, request: Request, credential: Credential) -> Response:
        return JsonResponse({"data": self._subscription(request, credential).wire()})

    async def _update_subscription(self, request: Request, credential: Credential) -> Response:
        record = self._subscription(request, credential)
        fields = _subscription_fields(_object(await json_body(request)))
        saved = self.masterdata.save_subscription(record.company_id, fields, record)
        return JsonResponse({"data": saved.wire()})

    async def _delete_subscription(self, request: Request, credential: Credential) -> Response:
        record = self._subscription(request, credential)
        self.masterdata.delete_subscription(record)
        target = self._targets.pop(record.id, None)
        if target is not None:
            self.webhooks.forget(target)
        return Response(status_code=204)

    async def _secret(self, request: Request, credential: Credential) -> Response:
        record = self._subscription(request, credential)
        return JsonResponse({"data": {"secretKey": record.secret}})


def _required_query(query: Query, name: str) -> str:
    value = query.uuid(name, required=True)
    assert value is not None
    return value
