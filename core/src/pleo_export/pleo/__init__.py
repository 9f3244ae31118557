"""Pleo Export API v3: typed models, errors and the async client."""
