"""The HTML report: one self-contained page, no JavaScript, every value escaped.

Everything that comes from Pleo, the connector or the accounting system (vendor names,
messages, references, URLs) goes through :func:`esc`; a link is only made of an ``http``,
``https`` or ``file`` URL, anything else is shown as text.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from urllib.parse import urlsplit

from pleo_export import format_minor
from pleo_export_report.collect import ItemRow, JobData, Outcome
from pleo_export_report.reconcile import Reconciliation, Total

LINK_SCHEMES = frozenset({"http", "https", "file"})

STYLE = """
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
  color: #1d2330; background: #fff; margin: 24px 32px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 8px; padding-bottom: 4px; border-bottom: 2px solid #d9dde6; }
p.meta { color: #5a6272; margin: 0 0 16px; }
table { border-collapse: collapse; margin: 6px 0 12px; }
th, td { border: 1px solid #d9dde6; padding: 4px 8px; text-align: left; vertical-align: top; }
td { overflow-wrap: anywhere; }
th { background: #f1f3f7; font-weight: 600; white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.ref, td.mono, .code { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace;
  font-size: 12px; }
td.ref, td.date { white-space: nowrap; }
td.msg { overflow-wrap: anywhere; }
tr.detail td { border-top: none; padding-top: 0; }
tr.failed:not(.detail) td { border-bottom: none; }
td.ext { max-width: 16em; overflow-wrap: anywhere; font-size: 12px; }
.code { color: #8a1f1f; font-weight: 600; margin-right: 8px; }
table.summary th { text-align: left; }
table.items { width: 100%; }
tr.failed td { background: #fdf0f0; }
tr.diff td { background: #fff6e0; }
.badge { display: inline-block; padding: 0 6px; border-radius: 3px; font-size: 12px;
  font-weight: 600; white-space: nowrap; }
.posted { background: #dff3e4; color: #1b5e2b; }
.recovered { background: #e3ecfa; color: #1c3f7a; }
.failed { background: #f8d7d7; color: #8a1f1f; }
.pending { background: #eceef2; color: #434b5a; }
.ok { color: #1b5e2b; font-weight: 600; }
.bad { color: #8a1f1f; font-weight: 600; }
.note { color: #5a6272; }
.dry-run { background: #fff3c4; color: #6b4e00; border: 2px solid #e0b400; padding: 8px 12px;
  font-weight: 600; margin: 8px 0 16px; }
@media print { body { margin: 0; } tr { break-inside: avoid; } }
"""

_BADGES = {
    Outcome.POSTED: "posted",
    Outcome.RECOVERED: "recovered",
    Outcome.FAILED: "failed",
    Outcome.WOULD_POST: "pending",
    Outcome.PREPARED: "pending",
}


def esc(value: object) -> str:
    """``value`` as HTML text, safe in element content and in quoted attributes."""
    return html.escape("" if value is None else str(value), quote=True)


def money(amount: int | None, currency: str) -> str:
    if amount is None or not currency:
        return ""
    try:
        return f"{format_minor(amount, currency)} {currency}"
    except (ValueError, KeyError):
        return f"{amount} (minor units) {currency}"


def link(url: str, text: str) -> str:
    """An ``<a>`` for a URL of a known scheme; anything else as plain text."""
    if not url:
        return esc(text)
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        scheme = ""
    if scheme not in LINK_SCHEMES:
        return esc(text or url)
    return f'<a href="{esc(url)}" rel="noopener noreferrer">{esc(text or url)}</a>'


def _summary(data: JobData) -> str:
    report = data.report
    rows: list[tuple[str, str]] = [("Job", data.job_id), ("Company", data.company_id)]
    if report is None:
        rows.append(("State", "the job did not finish"))
    else:
        if report.dry_run:
            state = "dry run: nothing was written and nothing was sent to Pleo"
        elif report.final_event is None:
            state = "not finished (the job ended on Pleo's side first)"
        else:
            state = report.final_event
        rows.append(("Result", state))
        if report.resumed:
            rows.append(("Resumed", "yes: an interrupted run of this job was continued"))
        rows += [("Items in the job", str(report.items_total))]
        if report.dry_run:
            rows.append(("Would be posted", str(report.would_post)))
        else:
            rows.append(("Posted now", str(report.posted)))
        rows += [
            ("Already in the accounting system", str(report.recovered)),
            ("Failed", str(report.failed)),
        ]
        if report.already_final:
            rows.append(("Already final in Pleo", str(report.already_final)))
        if report.unacknowledged:
            rows.append(("Outcomes Pleo did not take", str(report.unacknowledged)))
        if report.failure_reason:
            reason = f"{report.failure_reason_type or ''}: {report.failure_reason}"
            rows.append(("Job failure", reason))
    body = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows)
    return f'<table class="summary">{body}</table>'


def _item_row(index: int, row: ItemRow) -> str:
    badge = _BADGES[row.outcome]
    reason = f'<span class="code">{esc(row.reason_type)}</span>' if row.reason_type else ""
    external = link(row.external_url, row.external_id or row.external_url)
    cells = [
        f'<td class="num">{index}</td>',
        f'<td><span class="badge {badge}">{esc(row.outcome.value)}</span></td>',
        f'<td class="ref">{esc(row.reference)}</td>',
        f'<td class="date">{esc(row.date)}</td>',
        f"<td>{esc(row.vendor)}</td>",
        f"<td>{esc(row.description)}</td>",
        f'<td class="num">{esc(money(row.amount, row.currency))}</td>',
        f'<td class="ext">{external}</td>',
    ]
    css = ' class="failed"' if row.outcome is Outcome.FAILED else ""
    line = f"<tr{css}>{''.join(cells)}</tr>"
    if row.reason_type or row.message:
        span = len(cells) - 1
        kind = "detail failed" if css else "detail"
        line += (
            f'<tr class="{kind}"><td></td>'
            f'<td class="msg" colspan="{span}">{reason}{esc(row.message)}</td></tr>'
        )
    return line


def _items(data: JobData) -> str:
    rows = data.ordered_rows()
    parts = [f'<h2 id="items">Items ({len(rows)} listed)</h2>']
    report = data.report
    if report is not None and report.resumed:
        parts.append(
            '<p class="note">This run continued an interrupted one: items whose outcome was '
            "recorded by the earlier run are counted above but not listed.</p>"
        )
    if not rows:
        parts.append('<p class="note">No item was worked on in this run.</p>')
        return "".join(parts)
    head = (
        '<th class="num">#</th><th>Outcome</th><th>Reference</th><th>Date</th><th>Vendor</th>'
        '<th>Description</th><th class="num">Amount</th><th>In the accounting system</th>'
    )
    body = "\n".join(_item_row(i, row) for i, row in enumerate(rows, 1))
    parts.append(
        f'<table class="items"><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table>'
    )
    return "".join(parts)


def _count(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _total_row(total: Total) -> str:
    css = ' class="diff"' if total.difference else ""
    return (
        f'<tr{css}><td class="mono">{esc(total.account)}</td>'
        f'<td class="mono">{esc(total.tax_code)}</td><td>{esc(total.currency)}</td>'
        f'<td class="num">{esc(money(total.pleo, total.currency))}</td>'
        f'<td class="num">{esc(money(total.booked, total.currency))}</td>'
        f'<td class="num">{esc(money(total.difference, total.currency))}</td></tr>'
    )


def _reconciliation(data: JobData) -> str:
    parts = ['<h2 id="reconciliation">Reconciliation</h2>']
    rec: Reconciliation | None = data.reconciliation
    report = data.report
    if rec is None:
        if report is not None and report.dry_run:
            text = "Not reconciled: this was a dry run, so nothing was booked."
        elif report is not None and report.succeeded == 0:
            text = "Not reconciled: no item was booked in this job."
        else:
            text = "Not reconciled: what the accounting system booked was not read back."
        parts.append(f'<p class="note" id="reconciliation-status">{esc(text)}</p>')
        return "".join(parts)
    if not rec.available:
        text = f"Not reconciled: {rec.problem or 'the connector cannot read back'}."
        parts.append(f'<p class="bad" id="reconciliation-status">{esc(text)}</p>')
        return "".join(parts)
    if rec.balanced and rec.compared == 0:
        status = (
            '<p class="note" id="reconciliation-status">Nothing to compare: '
            f"{_count(len(rec.not_compared), 'item')} found in the accounting system, booked "
            "by an earlier run, so Pleo's lines were not prepared in this run.</p>"
        )
    elif rec.balanced:
        status = (
            f'<p class="ok" id="reconciliation-status">Balanced: the {rec.compared} items '
            "compared are booked exactly as Pleo's figures say.</p>"
        )
    else:
        differences = _count(len(rec.differences), "difference")
        status = (
            f'<p class="bad" id="reconciliation-status">{differences} '
            f"in {_count(rec.compared, 'item')} compared; {_count(len(rec.missing), 'item')} "
            "with nothing booked.</p>"
        )
    parts.append(status)
    parts.append(
        '<p class="note">Pleo: the items\' lines as prepared for the accounting system '
        "(accounts resolved, a debit positive, a credit negative). Booked: what the "
        "accounting system holds under the same references, read back after the job.</p>"
    )
    head = (
        '<th>Account</th><th>Tax code</th><th>Currency</th><th class="num">Pleo</th>'
        '<th class="num">Booked</th><th class="num">Difference</th>'
    )
    body = "".join(_total_row(t) for t in rec.totals)
    parts.append("<h3>Totals per account, tax code and currency</h3>")
    parts.append(
        f'<table class="totals"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
    )
    parts.append(f'<h3 id="differences">Differences ({len(rec.differences)})</h3>')
    if rec.differences:
        dhead = (
            "<th>Reference</th><th>Account</th><th>Tax code</th>"
            '<th class="num">Pleo</th><th class="num">Booked</th><th class="num">Difference</th>'
            "<th>What</th>"
        )
        dbody = "".join(
            f'<tr class="diff"><td class="ref">{esc(d.reference)}</td>'
            f'<td class="mono">{esc(d.account)}</td><td class="mono">{esc(d.tax_code)}</td>'
            f'<td class="num">{esc(money(d.pleo, d.currency))}</td>'
            f'<td class="num">{esc(money(d.booked, d.currency))}</td>'
            f'<td class="num">{esc(money(d.difference, d.currency))}</td>'
            f"<td>{esc(d.note)}</td></tr>"
            for d in rec.differences
        )
        parts.append(
            f'<table class="differences"><thead><tr>{dhead}</tr></thead><tbody>{dbody}</tbody>'
            "</table>"
        )
    else:
        parts.append('<p class="ok">None.</p>')
    if rec.not_compared:
        listed = ", ".join(esc(r) for r in rec.not_compared)
        parts.append(
            f'<p class="note" id="not-compared">Not compared ({len(rec.not_compared)}): booked '
            "by an earlier run and found by reference, so Pleo's lines were not prepared in "
            f"this run: {listed}</p>"
        )
    return "".join(parts)


def render_html(data: JobData, *, csv_name: str | None = None) -> str:
    """The whole page for ``data``."""
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    title = f"Pleo export report: job {data.job_id}"
    banner = ""
    if data.dry_run:
        title = f"DRY RUN: {title}"
        banner = (
            '<p class="dry-run" id="dry-run">DRY RUN: a preview. Nothing was written to the '
            "accounting system and nothing was sent to Pleo; the real run writes its own "
            "report.</p>\n"
        )
    csv_note = (
        f' The same items as a spreadsheet: <a href="{esc(csv_name)}">{esc(csv_name)}</a>.'
        if csv_name
        else ""
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; img-src 'none'; script-src 'none'\">"
        f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>\n"
        f"<h1>{esc(title)}</h1>{banner}"
        f'<p class="meta">Written by pleo-export-report on {esc(generated)}.{csv_note}</p>\n'
        f'<h2 id="summary">Summary</h2>{_summary(data)}\n'
        f"{_items(data)}\n{_reconciliation(data)}\n</body></html>\n"
    )
