"""A signing key for one benchmark run: the services a benchmark starts verify tokens with its
JWKS (`CMS_AUTH_JWKS`), and `token_for` issues the callers' tokens, as `make run` does."""

from __future__ import annotations

import os
from pathlib import Path

from cms.auth import ensure_dev_keys, issue_token


class BenchIdentity:
    def __init__(self, folder: Path):
        key_file, jwks_file = ensure_dev_keys(folder / "auth")
        self._key = key_file.read_text()
        os.environ["CMS_AUTH_JWKS"] = str(jwks_file)
        self.jwks_file = jwks_file

    def token_for(self, subject: str, role: str) -> str:
        return issue_token(self._key, subject, role)
