"""Local infrastructure for development and tests: child processes, PostgreSQL, Temporal."""
