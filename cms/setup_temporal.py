"""Registers our custom search attributes on an existing Temporal (compose / Kubernetes job)."""

import asyncio

from cms.config import load_settings
from cms.errors import StartupError
from cms.temporal import connect, ensure_search_attributes


async def _main() -> None:
    settings = load_settings()
    client = await connect(settings)
    added = await ensure_search_attributes(client, settings.temporal_namespace)
    print(f"search attributes added: {added or 'none (all present)'}")
    from cms.schedules import ensure_schedules

    print(f"schedules created: {await ensure_schedules(client) or 'none (all present)'}")


if __name__ == "__main__":
    try:
        asyncio.run(_main())
    except StartupError as error:
        raise SystemExit(f"error: {error}") from None
