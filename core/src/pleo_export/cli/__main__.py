"""``python -m pleo_export.cli`` runs the ``pleo-export`` command."""

from pleo_export.cli import main

main()
