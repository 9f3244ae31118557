"""pleo-export-report: an HTML and a CSV report after each export job, with a reconciliation
of Pleo's figures against what the accounting system booked.

Registered under the entry-point group ``pleo_export.plugins`` as ``report``; settings in
``[plugins.report]`` (:class:`ReportSettings`).
"""

from pleo_export_report.collect import ItemRow, JobData, Line, Outcome
from pleo_export_report.plugin import ReportPlugin, ReportSettings, file_stem
from pleo_export_report.reconcile import Reconciliation, reconcile
from pleo_export_report.render import render_html
from pleo_export_report.table import render_csv

__all__ = [
    "ItemRow",
    "JobData",
    "Line",
    "Outcome",
    "Reconciliation",
    "ReportPlugin",
    "ReportSettings",
    "file_stem",
    "reconcile",
    "render_csv",
    "render_html",
]
