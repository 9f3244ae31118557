"""Durable engine state: the per-item outbox."""
