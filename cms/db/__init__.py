"""PostgreSQL access shared by the services: connection pools and the migration runner."""
