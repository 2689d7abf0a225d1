"""Thin, idempotent activity adapters that call the services or PostgreSQL."""
