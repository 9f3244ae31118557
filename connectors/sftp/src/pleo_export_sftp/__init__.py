"""pleo-export-sftp: Pleo export items as CSV journal-line files on SFTP or in a directory.

Registered under the entry-point group ``pleo_export.connectors`` as ``sftp``. The hledger
rules file for the default layout ships in this package: see :func:`hledger_rules_path`.
"""

from pathlib import Path

from pleo_export_sftp.connector import SftpConnector
from pleo_export_sftp.layout import COLUMNS, LAYOUT_COLUMNS, hledger_rules
from pleo_export_sftp.manifest import Manifest, parse_manifest
from pleo_export_sftp.settings import SftpSettings
from pleo_export_sftp.storage import DeliveryError, Problem

RULES_DIR = Path(__file__).resolve().parent / "hledger"


def hledger_rules_path(layout: str = "journal-lines") -> Path:
    """The shipped hledger CSV rules file for ``layout`` with default settings."""
    return RULES_DIR / f"{layout}.rules"


__all__ = [
    "COLUMNS",
    "LAYOUT_COLUMNS",
    "DeliveryError",
    "Manifest",
    "Problem",
    "SftpConnector",
    "SftpSettings",
    "hledger_rules",
    "hledger_rules_path",
    "parse_manifest",
]
