"""Fill a freshly initialised Tryton database with the books the connector tests book into.

Run with the *Tryton* virtual environment's interpreter (not the workspace's), after
``trytond-admin --all -u account_invoice --activate-dependencies`` created the database::

    <tryton-venv>/bin/python tryton_template.py <trytond.conf> <database> <spec.json>

``spec.json`` is written by ``tryton_server.py`` from the Pleo sandbox's demo chart: the
company and its currency, the other currencies, the chart of accounts (codes, names and a
kind per account), the taxes, the vendors and the fiscal years to open. The script creates,
in one transaction:

* the currencies, the company (party with an address) and the admin user's company;
* account types and one account per chart entry (payable accounts reconcilable and with a
  party required), and the default payable and receivable accounts in the configuration;
* one tax per Pleo tax code (named after the code) in a purchase tax group;
* one vendor party per chart vendor: ``code`` = the Pleo vendor code, identifiers (without a
  type) for the external id and the tax number, an invoice address in its country (the
  countries are created: Tryton ships none);
* one analytic root account per chart tag group with a normal account per tag (when the
  spec names ``analytic_account`` among its modules);
* the fiscal years (monthly periods, move and invoice sequences).

It prints one line of JSON with the ids of what it created.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from decimal import Decimal
from typing import Any

KIND_TYPES = {
    # kind: (type name, statement, flags)
    "asset": ("Current Assets", "balance", {"assets": True}),
    "receivable": ("Receivables", "balance", {"assets": True, "receivable": True}),
    "liability": ("Current Liabilities", "balance", {}),
    "payable": ("Payables", "balance", {"payable": True}),
    "income": ("Other Income", "income", {"revenue": True}),
    "expense": ("Expenses", "income", {"expense": True}),
}


def build(spec: dict[str, Any]) -> dict[str, Any]:
    from trytond.pool import Pool
    from trytond.transaction import Transaction

    pool = Pool()
    Currency = pool.get("currency.currency")
    Party = pool.get("party.party")
    Company = pool.get("company.company")
    User = pool.get("res.user")
    AccountType = pool.get("account.account.type")
    Account = pool.get("account.account")
    Configuration = pool.get("account.configuration")
    TaxGroup = pool.get("account.tax.group")
    Tax = pool.get("account.tax")
    FiscalYear = pool.get("account.fiscalyear")
    InvoiceSequence = pool.get("account.fiscalyear.invoice_sequence")
    Sequence = pool.get("ir.sequence.strict")
    ModelData = pool.get("ir.model.data")
    Country = pool.get("country.country")

    # Currencies: Tryton ships none; create the ones the sandbox pays in.
    currencies: dict[str, Any] = {c.code: c for c in Currency.search([])}
    for data in spec["currencies"]:
        if data["code"] not in currencies:
            digits = int(data["digits"])
            (currency,) = Currency.create(
                [
                    {
                        "name": data["name"],
                        "code": data["code"],
                        "symbol": data.get("symbol") or data["code"],
                        "digits": digits,
                        "rounding": Decimal(1).scaleb(-digits),
                    }
                ]
            )
            currencies[data["code"]] = currency

    company_spec = spec["company"]
    (company_party,) = Party.create(
        [
            {
                "name": company_spec["name"],
                "addresses": [("create", [{"city": company_spec.get("city", "London")}])],
            }
        ]
    )
    (company,) = Company.create(
        [{"party": company_party.id, "currency": currencies[company_spec["currency"]].id}]
    )
    (admin,) = User.search([("login", "=", "admin")])
    User.write([admin], {"companies": [("add", [company.id])], "company": company.id})

    with Transaction().set_context(company=company.id, companies=[company.id]):
        # Account types: one per kind, under a balance-sheet and an income-statement root.
        roots = {
            "balance": AccountType(
                name="Balance Sheet", statement="balance", company=company, sequence=10
            ),
            "income": AccountType(
                name="Income Statement", statement="income", company=company, sequence=20
            ),
        }
        AccountType.save(list(roots.values()))
        types: dict[str, Any] = {}
        for kind, (name, statement, flags) in KIND_TYPES.items():
            account_type = AccountType(
                name=name, statement=statement, company=company, parent=roots[statement]
            )
            for flag, value in flags.items():
                setattr(account_type, flag, value)
            types[kind] = account_type
        AccountType.save(list(types.values()))

        accounts: dict[str, Any] = {}
        for data in spec["accounts"]:
            kind = data["kind"]
            account = Account(
                name=data["name"],
                code=data["code"],
                company=company,
                type=types[kind],
                reconcile=kind in ("payable", "receivable"),
                party_required=kind in ("payable", "receivable"),
            )
            accounts[data["code"]] = account
        Account.save(list(accounts.values()))

        configuration = Configuration(1)
        configuration.default_account_payable = accounts[spec["default_payable"]]
        configuration.default_account_receivable = accounts[spec["default_receivable"]]
        configuration.save()

        (group,) = TaxGroup.create([{"name": "Purchase VAT", "code": "PVAT", "kind": "purchase"}])
        taxes: dict[str, int] = {}
        for data in spec["taxes"]:
            account = accounts[data["account"]]
            (tax,) = Tax.create(
                [
                    {
                        "name": data["name"],
                        "description": data["description"],
                        "type": "percentage",
                        "rate": Decimal(data["rate"]),
                        "company": company.id,
                        "group": group.id,
                        "invoice_account": account.id,
                        "credit_note_account": account.id,
                    }
                ]
            )
            taxes[data["name"]] = tax.id

        countries: dict[str, int] = {c.code: c.id for c in Country.search([])}
        wanted = set(spec.get("countries", ())) | {
            v["country"] for v in spec["vendors"] if v.get("country")
        }
        for code in sorted(wanted):
            if code not in countries:
                (country,) = Country.create([{"code": code, "name": code}])
                countries[code] = country.id

        vendors: dict[str, int] = {}
        for data in spec["vendors"]:
            identifiers = [
                {"type": None, "code": value}
                for value in (data.get("external_id"), data.get("tax_number"))
                if value
            ]
            (party,) = Party.create(
                [
                    {
                        "name": data["name"],
                        "code": data.get("code"),
                        "addresses": [
                            (
                                "create",
                                [
                                    {
                                        "street_unstructured": data.get("street", "1 High Street"),
                                        "postal_code": data.get("postal_code", "EC1A 1BB"),
                                        "city": data.get("city", "London"),
                                        "invoice": True,
                                        "country": countries.get(data.get("country") or ""),
                                    }
                                ],
                            )
                        ],
                        "identifiers": [("create", identifiers)],
                    }
                ]
            )
            vendors[data.get("code") or data["name"]] = party.id

        analytic: dict[str, int] = {}
        if "analytic_account" in spec.get("modules", ()):
            Analytic = pool.get("analytic_account.account")
            for group in spec.get("dimensions", ()):
                (root,) = Analytic.create(
                    [
                        {
                            "name": group["name"],
                            "code": group["code"],
                            "type": "root",
                            "company": company.id,
                            "state": "opened",
                        }
                    ]
                )
                analytic[group["code"]] = root.id
                Analytic.create(
                    [
                        {
                            "name": value["name"],
                            "code": value["code"],
                            "type": "normal",
                            "root": root.id,
                            "parent": root.id,
                            "company": company.id,
                            "state": "opened",
                        }
                        for value in group["values"]
                    ]
                )

        move_type = ModelData.get_id("account", "sequence_type_account_move")
        invoice_type = ModelData.get_id("account_invoice", "sequence_type_account_invoice")
        fiscal_years: dict[str, int] = {}
        for year in spec["fiscal_years"]:
            start, end = dt.date(year, 1, 1), dt.date(year, 12, 31)

            def sequence(name: str, sequence_type: int) -> Any:
                (created,) = Sequence.create(
                    [{"name": name, "sequence_type": sequence_type, "company": company.id}]
                )
                return created

            fiscal_year = FiscalYear(
                name=str(year),
                company=company,
                start_date=start,
                end_date=end,
                move_sequence=sequence(f"Moves {year}", move_type),
            )
            fiscal_year.save()
            InvoiceSequence.create(
                [
                    {
                        "company": company.id,
                        "fiscalyear": fiscal_year.id,
                        "in_invoice_sequence": sequence(
                            f"Supplier invoices {year}", invoice_type
                        ).id,
                        "in_credit_note_sequence": sequence(
                            f"Supplier credit notes {year}", invoice_type
                        ).id,
                        "out_invoice_sequence": sequence(f"Invoices {year}", invoice_type).id,
                        "out_credit_note_sequence": sequence(
                            f"Credit notes {year}", invoice_type
                        ).id,
                    }
                ]
            )
            FiscalYear.create_period([fiscal_year])
            fiscal_years[str(year)] = fiscal_year.id

    return {
        "company": company.id,
        "accounts": {code: account.id for code, account in accounts.items()},
        "taxes": taxes,
        "vendors": vendors,
        "analytic": analytic,
        "fiscal_years": fiscal_years,
    }


def main(argv: list[str]) -> int:
    config_file, database, spec_file = argv[1:4]
    with open(spec_file, encoding="utf-8") as handle:
        spec = json.load(handle)

    from trytond import config

    config.update_etc(config_file)

    from trytond.pool import Pool
    from trytond.transaction import Transaction, TransactionError

    pool = Pool(database)
    with Transaction().start(database, 0, readonly=True):
        pool.init()
    extras: dict[str, Any] = {}
    while True:  # Tryton asks to start again with table locks taken (TransactionError)
        with Transaction().start(database, 0, **extras) as transaction:
            try:
                result = build(spec)
                User = pool.get("res.user")
                (admin,) = User.search([("login", "=", "admin")])
                User.write([admin], {"password": spec["admin_password"]})
            except TransactionError as error:
                transaction.rollback()
                error.fix(extras)
                continue
            transaction.commit()
            break
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
