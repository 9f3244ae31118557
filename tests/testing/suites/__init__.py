"""Conformance suites the kit's own tests run in a child pytest (not collected directly)."""
