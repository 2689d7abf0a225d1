"""The console's configuration from the environment, beside the platform's (cms.config)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from cms.config import Settings, load_settings
from services.console.assets import node_modules

HERE = Path(__file__).resolve().parent
DEFAULT_PORT = 8080
# A session lasts as long as the token the dev issuer gives a person (cms/auth.py).
SESSION_SECONDS = 3600


@dataclass(frozen=True)
class ConsoleSettings:
    platform: Settings
    host: str = "127.0.0.1"               # CONSOLE_HOST
    port: int = DEFAULT_PORT               # CONSOLE_PORT
    # The npm packages `make assets` installs (services/console/assets.py; CMS_CONSOLE_NODE_MODULES).
    node_modules: Path = field(default_factory=node_modules)
    # The Temporal UI, linked from a case for the operations role (CMS_TEMPORAL_UI_URL).
    temporal_ui_url: str = "http://localhost:8233"
    # Cookies marked Secure: on behind TLS (CMS_CONSOLE_SECURE_COOKIES=1); a request that arrived
    # over https gets Secure cookies whatever this says.
    secure_cookies: bool = False
    session_seconds: int = SESSION_SECONDS

    @property
    def dev_sign_in(self) -> bool:
        """The dev issuer's sign-in page: only where its key is configured (make run, tests)."""
        return self.platform.dev_issuer_key is not None


def load_console_settings(platform: Settings | None = None) -> ConsoleSettings:
    platform = platform or load_settings()
    port = os.environ.get("CONSOLE_PORT", "").strip()
    return ConsoleSettings(
        platform=platform,
        host=os.environ.get("CONSOLE_HOST") or "127.0.0.1",
        port=int(port) if port else DEFAULT_PORT,
        node_modules=node_modules(),
        temporal_ui_url=(os.environ.get("CMS_TEMPORAL_UI_URL") or f"http://localhost:{platform.temporal_ui_port}").rstrip("/"),
        secure_cookies=os.environ.get("CMS_CONSOLE_SECURE_COOKIES") == "1",
    )
