"""Pre-export validation: the journals, accounts and taxes the settings name exist in Tryton."""

from __future__ import annotations

from pleo_export import ExportJob, JobRejected
from pleo_export import ExportJobFailureReasonType as JobReason
from pleo_export_tryton.base import TrytonBase
from pleo_export_tryton.errors import to_connector_error
from pleo_export_tryton.rpc import TrytonError


class TrytonCheck(TrytonBase):
    """``check``: the Tryton setup a job needs, before anything is written."""

    async def check(self, job: ExportJob) -> None:
        """The journals, the accounts named in the settings and an open fiscal year exist."""
        try:
            await self._check(job)
        except TrytonError as error:
            raise self._job_level(to_connector_error(error, "checking the Tryton setup")) from error

    async def _check(self, job: ExportJob) -> None:
        _, books = self._require()
        s = self.settings
        company = books.company
        problems: list[str] = []
        if not await books.open_fiscal_years():
            raise JobRejected(
                JobReason.MISSING_CONFIGURATION,
                f"Tryton company {company.name} has no open fiscal year: create the fiscal "
                "year of the expenses (Financial > Configuration > Fiscal Years) with its "
                "periods, then export again",
            )
        journals: list[tuple[str, str, set[str] | None]] = [
            ("journal", s.journal, {"general", "situation"})
        ]
        if job.vendor_based_bookkeeping:
            journals += [
                ("invoice_journal", s.invoice_journal, {"expense"}),
                ("payment_journal", s.payment_journal, None),
            ]
        for setting, code, types in journals:
            journal = await books.journal(code)
            if journal is None:
                problems.append(
                    f"journal {code} (setting {setting}) does not exist: create it in Tryton "
                    "or set it to the code of an existing journal"
                )
            elif types is not None and journal.type not in types:
                problems.append(
                    f"journal {code} (setting {setting}) is of type {journal.type}; use a "
                    f"journal of type {' or '.join(sorted(types))}"
                )
        accounts: list[tuple[str, str]] = [
            ("out_of_pocket_account", s.out_of_pocket_account),
            ("contra_account", s.contra_account),
            ("rounding_account", s.rounding_account),
        ]
        for setting in ("wallet_account", "payable_account", "vat_input_account"):
            value = getattr(s, setting)
            if value:
                accounts.append((setting, value))
        if s.vat_output_account:
            accounts.append(("vat_output_account", s.vat_output_account))
        for item_type, roles in s.counter_accounts.items():
            for role, code in roles.items():
                accounts.append((f"counter_accounts.{item_type.value}.{role}", code))
        for setting, code in accounts:
            account = await books.account(code)
            if account is None:
                problems.append(
                    f"account {code} (setting {setting}) does not exist in company "
                    f"{company.name}: create it in Tryton or correct the setting"
                )
            elif not account.postable:
                problems.append(
                    f"account {account.label} (setting {setting}) is closed or has no type, "
                    "so nothing can be booked on it: reopen it or choose another account"
                )
        if s.payable_account is None and await books.default_payable() is None:
            problems.append(
                "there is no payable account for items without a vendor: set payable_account, "
                "or a default payable account in Tryton's accounting configuration"
            )
        for pleo_code, name in s.tax_map.items():
            if await books.tax(name) is None:
                problems.append(
                    f"tax {name!r} (tax_map[{pleo_code!r}]) does not exist in company "
                    f"{company.name}: create it or correct tax_map"
                )
        if problems:
            raise JobRejected(
                JobReason.MISSING_CONFIGURATION,
                f"the Tryton setup for company {company.name} is incomplete: "
                + "; ".join(problems),
            )
