"""What `make run` needs for encrypted payloads on a developer's machine: a payload key and a
codec server token, each created once under .data/ (mode 0600) and kept, since the history in
.data/temporal.db stays sealed with that key. An operator's own CMS_PAYLOAD_KEYS(_FILE) or
CMS_CODEC_SERVER_TOKEN is used as given and never replaced."""

from __future__ import annotations

import os
import secrets

from cms.config import Settings
from cms.payload_codec import key_ring_from_settings, write_dev_key_file, write_owner_only

TOKEN_FILE = "codec-server-token"


def prepare_dev_codec(settings: Settings) -> dict[str, str]:
    """Creates what is missing and returns the environment the worker, the services and the codec
    server get. StartupError (naming the setting) when configured keys cannot be read."""
    if not (os.environ.get("CMS_PAYLOAD_KEYS") or os.environ.get("CMS_PAYLOAD_KEYS_FILE")) \
            and settings.payload_keys_file is not None:
        write_dev_key_file(settings.payload_keys_file)
    key_ring_from_settings(settings)  # fails here, in one line, rather than in every child
    token = settings.codec_server_token
    if not token:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        token_file = settings.data_dir / TOKEN_FILE
        if not token_file.exists():
            write_owner_only(token_file, secrets.token_urlsafe(24))
        token = f"dev-operator={token_file.read_text().strip()}"
    env = {"CMS_CODEC_SERVER_TOKEN": token, "CODEC_SERVER_PORT": str(settings.codec_server_port),
           "CMS_CODEC_UI_ORIGIN": settings.codec_server_ui_origin}
    if not settings.payload_keys and settings.payload_keys_file is not None:
        env["CMS_PAYLOAD_KEYS_FILE"] = str(settings.payload_keys_file)
    return env


def codec_endpoint(settings: Settings) -> str:
    """Where the UI (in the browser) reaches the codec server: same host name as the UI's origin,
    so the sign-in cookie of /login is same-site."""
    return f"http://localhost:{settings.codec_server_port}"
