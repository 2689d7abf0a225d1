"""Runs the caseworker console: `python -m services.console` (CONSOLE_PORT, default 8080)."""

from services.console.app import main

if __name__ == "__main__":
    main()
