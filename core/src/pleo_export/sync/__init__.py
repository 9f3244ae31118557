"""Master-data sync: the accounting system's vendors, tax codes and dimensions into Pleo.

:mod:`~pleo_export.sync.diff` plans (pure), :mod:`~pleo_export.sync.apply` writes through
:class:`~pleo_export.pleo.masterdata.PleoMasterData`, :mod:`~pleo_export.sync.runner` does both
for the kinds asked, :mod:`~pleo_export.sync.drafts` handles vendors created in Pleo as drafts
and :mod:`~pleo_export.sync.drift` finds what would make export items fail. See
``docs/master-data.md``.
"""

from pleo_export.sync.diff import Action, Change, Entity, FieldChange, Kind, SyncPlan
from pleo_export.sync.runner import KindOutcome, SyncReport, missing_capabilities, run_sync

__all__ = [
    "Action",
    "Change",
    "Entity",
    "FieldChange",
    "Kind",
    "KindOutcome",
    "SyncPlan",
    "SyncReport",
    "missing_capabilities",
    "run_sync",
]
