"""`python -m services.codec_server` as `make run` starts it: refuses to start, in one line naming
the setting, without its keys; with them, answers the UI's origin on CODEC_SERVER_PORT."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from cms.config import REPO_ROOT
from cms.infra.processes import free_port
from cms.payload_codec import write_dev_key_file


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CMS_PAYLOAD_KEYS")}
    return {**env, "PYTHONPATH": str(REPO_ROOT), **extra}


def test_without_its_key_file_it_exits_with_one_line_naming_the_setting(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "services.codec_server"], capture_output=True, text=True, timeout=60,
                          env=_env(CMS_PAYLOAD_KEYS_FILE=str(tmp_path / "absent.json"), CMS_CODEC_SERVER_TOKEN="t"))
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0
    assert "CMS_PAYLOAD_KEYS_FILE" in done.stderr


@pytest.mark.asyncio(loop_scope="session")
async def test_with_its_keys_and_token_it_serves_the_ui(tmp_path: Path) -> None:
    keys, port = tmp_path / "keys.json", free_port()
    write_dev_key_file(keys)
    process = subprocess.Popen([sys.executable, "-m", "services.codec_server"], stderr=subprocess.PIPE,
                               env=_env(CMS_PAYLOAD_KEYS_FILE=str(keys), CMS_CODEC_SERVER_TOKEN="ops=s3cret",
                                        CODEC_SERVER_PORT=str(port)))
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(200):
                try:
                    async with session.post(f"http://127.0.0.1:{port}/decode", json={"payloads": []},
                                            headers={"Authorization": "Bearer s3cret",
                                                     "Origin": "http://localhost:8233"}) as response:
                        assert response.status == 200
                        assert response.headers["Access-Control-Allow-Origin"] == "http://localhost:8233"
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
            else:
                pytest.fail("the codec server never answered")
    finally:
        process.terminate()
        process.wait(timeout=30)
