"""Pleo's OpenAPI specs (Export API, and the Vendors, Tax Code, Tags and Webhook
Subscriptions APIs) as an executable contract for tests.

:class:`OpenApiContract` validates requests (path and query parameters, JSON body) and
responses (status declared, body matching the schema) of the Export API. Use
``contract.check_exchange`` as ``Sandbox.on_exchange`` so that every exchange of a test is
checked: a response that breaks the spec fails the test, and so does a request that breaks
the spec which the sandbox nevertheless accepted (2xx), because the real API might not.

The specs are read from ``$PLEO_OPENAPI_DIR`` (default ``<repo root>/../shared/pleo-openapi/``):
``pleo-export-openapi.yml`` and the master-data specs of :data:`MASTER_DATA_SPECS`. The
contract checks each exchange against the spec that declares its path. Without the Export API
spec (or any master-data spec) tests are skipped, except under CI (``$CI`` set), where a
missing spec is a failure.

The master-data specs leave error bodies out (a ``404`` with no content, or only a ``default``
answer shaped like success); an error status they declare, or any 4xx of an operation that
only has ``default``, may carry an ``ExceptionInfo`` body.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from openapi_schema_validator import OAS30Validator, oas30_format_checker

SPEC_FILE = "pleo-export-openapi.yml"
MASTER_DATA_SPECS = (
    "pleo-vendors-openapi.yml",
    "pleo-tax-code-openapi.yml",
    "pleo-tags-openapi.yml",
    "pleo-webhook-subscriptions-openapi.yml",
)
EXCEPTION_INFO: dict[str, Any] = {
    "required": ["type"],
    "type": "object",
    "properties": {"message": {"type": "string"}, "type": {"type": "string"}},
}
"""The Export API's ``ExceptionInfo``; the error body of every sandbox answer."""
REPO_ROOT = Path(__file__).resolve().parents[2]

UNDECLARED_ERROR_STATUSES = frozenset({401, 403, 429})
"""The spec declares no 401/403/429 anywhere, yet the API has auth, scopes and a rate limit;
they are allowed on every operation, with an ``ExceptionInfo`` body."""

SANDBOX_DEVIATIONS: Mapping[tuple[str, str], Mapping[int, str]] = {
    ("POST", "/v3/export-job-events"): {404: "EXPORT_NOT_FOUND for an unknown job"},
    ("GET", "/v3/export-items"): {404: "EXPORT_NOT_FOUND for an unknown job"},
    ("GET", "/v3/export-job-items"): {400: "accounting_entry_id is required by the sandbox"},
    ("GET", "/v3/export-jobs"): {400: "a cursor this server did not issue"},
    ("GET", "/v3/export-jobs/{jobId}/items"): {400: "a cursor this server did not issue"},
    ("POST", "/v1/vendors"): {400: "checks beyond the spec: currency, country, empty name"},
    ("POST", "/v1/vendors:search"): {400: "a cursor this server did not issue"},
    ("POST", "/v1/vendors/{id}:activate"): {
        400: "checks beyond the spec: empty externalId",
        409: "code or externalId used by another vendor",
    },
    ("GET", "/v1/subscriptions"): {400: "a cursor this server did not issue"},
}
"""Statuses the sandbox answers where the spec is silent, each with an ``ExceptionInfo`` body
and a documented reason. Anything else undeclared is a contract violation."""


def spec_dir() -> Path:
    configured = os.environ.get("PLEO_OPENAPI_DIR")
    return Path(configured) if configured else REPO_ROOT.parent / "shared" / "pleo-openapi"


def require_contract() -> OpenApiContract:
    """The contract, or skip the test (fail under CI) when a spec is not available."""
    folder = spec_dir()
    for name in (SPEC_FILE, *MASTER_DATA_SPECS):
        path = folder / name
        if not path.is_file():
            reason = (
                f"Pleo's OpenAPI spec is not at {path}; set PLEO_OPENAPI_DIR to the folder "
                f"holding {SPEC_FILE} and {', '.join(MASTER_DATA_SPECS)}"
            )
            if os.environ.get("CI"):
                pytest.fail(reason)
            pytest.skip(reason)
    return load_contract(folder)


def _read_spec(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        spec: dict[str, Any] = yaml.safe_load(handle)
    return spec


@cache
def load_contract(folder: Path) -> OpenApiContract:
    """The Export API contract, with the master-data specs' operations checked too."""
    others = [OpenApiContract(_read_spec(folder / name)) for name in MASTER_DATA_SPECS]
    return OpenApiContract(_read_spec(folder / SPEC_FILE), others=others)


class ContractViolation(AssertionError):
    """An exchange does not match the spec."""


@dataclass(frozen=True)
class Operation:
    method: str
    template: str
    definition: dict[str, Any]
    path_params: dict[str, str]


class OpenApiContract:
    def __init__(self, spec: dict[str, Any], *, others: Iterable[OpenApiContract] = ()) -> None:
        self.spec = spec
        self.title: str = spec.get("info", {}).get("title", "OpenAPI")
        self.others = list(others)
        """Contracts of other specs; an operation this spec lacks is checked against them."""
        self._prepared: dict[str, Any] = {}
        self._validators: dict[int, OAS30Validator] = {}
        routes = []
        for template, item in spec["paths"].items():
            for method, definition in item.items():
                if method.upper() not in ("GET", "POST", "PUT", "DELETE", "PATCH"):
                    continue
                regex = "^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$"
                routes.append((method.upper(), template, re.compile(regex), definition))
        # Literal paths win over templated ones (``/v3/export-job-items:search`` and friends).
        self._routes = sorted(routes, key=lambda r: "{" in r[1])

    # --- schemas ------------------------------------------------------------------------------

    def schema(self, name: str) -> Any:
        """A component schema with every ``$ref`` inlined and the spec's quirks fixed."""
        return self._prepare({"$ref": f"#/components/schemas/{name}"})

    def _prepare(self, node: Any, stack: tuple[str, ...] = ()) -> Any:
        if isinstance(node, list):
            return [self._prepare(n, stack) for n in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str):
            if ref in stack:
                raise ValueError(f"recursive schema {ref} cannot be inlined")
            if ref not in self._prepared:
                target: Any = self.spec
                for part in ref.removeprefix("#/").split("/"):
                    target = target[part]
                self._prepared[ref] = self._prepare(target, (*stack, ref))
            return self._prepared[ref]
        prepared = {
            key: self._prepare(value, stack)
            for key, value in node.items()
            if key not in ("example", "examples", "description")
        }
        pattern = prepared.get("pattern")
        # The spec writes date-time fields with ``pattern: YYYY-MM-DDTHH:mi:ssZ`` (or
        # ``yyyy-MM-dd'T'HH:mm:ss'Z'``): a format description, not a regular expression. Taken
        # as a regex it would reject every real timestamp, so it is dropped and ``format``
        # (checked as RFC 3339 date-time) does the work.
        if isinstance(pattern, str) and (
            prepared.get("format") == "date-time" or "YYYY" in pattern or "yyyy" in pattern
        ):
            del prepared["pattern"]
        return prepared

    def _validator(self, schema: Any) -> OAS30Validator:
        key = id(schema)
        if key not in self._validators:
            self._validators[key] = OAS30Validator(schema, format_checker=oas30_format_checker)
        return self._validators[key]

    def schema_errors(self, schema: Any, instance: Any, where: str) -> list[str]:
        errors = sorted(
            self._validator(schema).iter_errors(instance), key=lambda e: list(e.absolute_path)
        )
        messages = []
        for error in errors:
            location = "/".join(str(p) for p in error.absolute_path) or "(root)"
            message = error.message if len(error.message) < 300 else error.message[:300] + "..."
            messages.append(f"{where} {location}: {message}")
        return messages

    def validate(self, name: str, instance: Any) -> list[str]:
        """Errors of ``instance`` against the component schema ``name`` (e.g. ExportItemV3)."""
        return self.schema_errors(self.schema(name), instance, name)

    # --- operations ---------------------------------------------------------------------------

    def owner(self, method: str, path: str) -> OpenApiContract | None:
        """The contract (this one or one of :attr:`others`) whose spec has the operation."""
        for contract in (self, *self.others):
            if contract.operation(method, path) is not None:
                return contract
        return None

    def operation(self, method: str, path: str) -> Operation | None:
        for route_method, template, regex, definition in self._routes:
            match = regex.match(path)
            if match and route_method == method.upper():
                return Operation(route_method, template, definition, match.groupdict())
        return None

    def request_errors(
        self, method: str, path: str, query: Mapping[str, Iterable[str]], body: Any
    ) -> list[str]:
        """Where a request breaks the spec: unknown operation, parameters, body."""
        owner = self.owner(method, path)
        if owner is not None and owner is not self:
            return owner.request_errors(method, path, query, body)
        op = self.operation(method, path)
        if op is None:
            return [f"{method} {path} is not an operation of the spec"]
        errors: list[str] = []
        seen = set()
        for parameter in op.definition.get("parameters", []):
            parameter = self._prepare(parameter)
            name, location = parameter["name"], parameter["in"]
            schema = parameter.get("schema", {})
            if location == "path":
                errors += self.schema_errors(
                    schema, op.path_params.get(name), f"path parameter {name}:"
                )
                continue
            if location != "query":
                continue
            seen.add(name)
            values = list(query.get(name, []))
            if not values:
                if parameter.get("required"):
                    errors.append(f"query parameter {name} is required")
                continue
            if schema.get("type") == "array":
                value: Any = [_coerce(v, schema.get("items", {})) for v in values]
            elif len(values) > 1:
                errors.append(
                    f"query parameter {name} is not an array but was given {len(values)} times"
                )
                continue
            else:
                value = _coerce(values[0], schema)
            errors += self.schema_errors(schema, value, f"query parameter {name}:")
        errors += [
            f"query parameter {name} is not in the spec" for name in query if name not in seen
        ]
        request_body = op.definition.get("requestBody")
        if request_body is None:
            if body is not None:
                errors.append(f"{op.method} {op.template} takes no request body")
        elif body is None:
            if request_body.get("required"):
                errors.append("the request body is required")
        else:
            schema = self._prepare(next(iter(request_body["content"].values()))["schema"])
            errors += self.schema_errors(schema, body, "request body")
        return errors

    def response_errors(
        self,
        method: str,
        path: str,
        status: int,
        body: Any,
        *,
        request_invalid: bool = False,
        content_type: str | None = None,
    ) -> list[str]:
        """Where a response breaks the spec: undeclared status, body not matching its schema."""
        owner = self.owner(method, path)
        if owner is not None and owner is not self:
            return owner.response_errors(
                method,
                path,
                status,
                body,
                request_invalid=request_invalid,
                content_type=content_type,
            )
        op = self.operation(method, path)
        if op is None:
            return [f"{method} {path} is not an operation of the spec"]
        where = f"{op.method} {op.template} -> {status}:"
        responses = op.definition.get("responses", {})
        declared = responses.get(str(status))
        if declared is None and "default" in responses and 200 <= status < 300:
            declared = responses["default"]
        if declared is not None:
            content = declared.get("content")
            if not content or next(iter(content.values())).get("schema") is None:
                if body is not None and status >= 400:
                    return self.schema_errors(EXCEPTION_INFO, body, where)
                return (
                    []
                    if body is None
                    else [f"{where} the spec declares no body, got {body!r:.200}"]
                )
            errors = []
            if content_type is not None and not content_type.startswith("application/json"):
                errors.append(f"{where} content type {content_type!r} is not JSON")
            schema = self._prepare(next(iter(content.values()))["schema"])
            return errors + self.schema_errors(schema, body, where)
        allowed = (
            status in UNDECLARED_ERROR_STATUSES
            or status >= 500
            or (status == 400 and request_invalid)
            or status in SANDBOX_DEVIATIONS.get((op.method, op.template), {})
            or ("default" in responses and 400 <= status < 500)
        )
        if not allowed:
            return [f"{where} status {status} is not declared for this operation"]
        return self.schema_errors(EXCEPTION_INFO, body, where)

    def check_exchange(self, record: Any) -> None:
        """Raise :class:`ContractViolation` if a recorded exchange breaks the spec.

        ``record`` is a ``pleo_export_sandbox.RequestRecord``. The sandbox's own endpoints
        (``/_sandbox/...``) and the OAuth server (``/oauth/...``, Pleo's separate auth host) are
        not part of the Export API spec and are skipped.
        """
        if record.path.startswith(("/_sandbox/", "/oauth/")):
            return
        request = self.request_errors(record.method, record.path, record.query, record.body)
        problems = []
        accepted = record.status == 0 or 200 <= record.status < 300
        if request and accepted:
            problems += [f"request: {e}" for e in request]
        if record.status != 0:
            problems += self.response_errors(
                record.method,
                record.path,
                record.status,
                record.response_body,
                request_invalid=bool(request),
                content_type=record.response_headers.get("content-type"),
            )
        if problems:
            summary = "\n  ".join(problems)
            owner = self.owner(record.method, record.path) or self
            raise ContractViolation(
                f"{record.method} {record.path} ({record.status}) breaks the {owner.title} "
                f"spec:\n  {summary}"
            )


def _coerce(value: str, schema: Mapping[str, Any]) -> Any:
    """A query string value as the JSON type its schema names (left as text if it is not)."""
    kind = schema.get("type")
    if kind == "integer" and re.fullmatch(r"-?\d+", value):
        return int(value)
    if kind == "number":
        try:
            return float(value)
        except ValueError:
            return value
    if kind == "boolean" and value in ("true", "false"):
        return value == "true"
    return value
