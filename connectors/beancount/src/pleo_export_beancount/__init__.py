"""Beancount connector for pleo-export (work in progress)."""
