"""`python -m services.codec_server`: the codec server on CODEC_SERVER_PORT (default 8081)."""

from __future__ import annotations

from aiohttp import web

from cms.config import load_settings
from cms.errors import StartupError
from cms.log import configure_logging
from cms.payload_codec import EncryptionCodec, key_ring_from_settings
from services.codec_server.app import build_app, parse_tokens


def main() -> None:
    settings = load_settings()
    log = configure_logging("codec_server")
    tokens = parse_tokens(settings.codec_server_token)
    try:
        codec = EncryptionCodec(key_ring_from_settings(settings))
        if not tokens:
            raise StartupError("CMS_CODEC_SERVER_TOKEN is not set: the codec server serves no caller without a "
                               "bearer token (`make run` creates a development one)")
    except StartupError as error:
        raise SystemExit(f"error: codec_server: {error}") from None
    app = build_app(codec, tokens, settings.codec_server_ui_origin, log)
    log.info("codec_server_started", port=settings.codec_server_port, ui_origin=settings.codec_server_ui_origin,
             callers=[token.label for token in tokens])
    # No access log: the structured audit lines above are the record, and say who.
    web.run_app(app, host=settings.grpc_host, port=settings.codec_server_port, access_log=None, print=None)


if __name__ == "__main__":
    main()
