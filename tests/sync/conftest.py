"""The Tryton fixtures (a real trytond on PostgreSQL per test module) for the Tryton sync tests;
they skip with the reason when Tryton or PostgreSQL is missing (and fail under CI)."""

from connectors.tryton.tests.conftest import tryton, tryton_template

__all__ = ["tryton", "tryton_template"]
