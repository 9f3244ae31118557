"""The export engine: Pleo's seven-step lifecycle over a connector and a state store."""

from pleo_export.engine.report import ItemFailure, JobReport, RunReport
from pleo_export.engine.runner import EngineOptions, ExportEngine

__all__ = ["EngineOptions", "ExportEngine", "ItemFailure", "JobReport", "RunReport"]
