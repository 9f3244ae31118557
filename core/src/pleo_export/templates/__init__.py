"""Templates shipped with pleo-export (package data; see ``pleo_export.new_connector``)."""
