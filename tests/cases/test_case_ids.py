"""Case ids: the same idempotency key always names the same case, yet the id reveals nothing of
the key without the case API's secret."""

from __future__ import annotations

import hashlib
import stat
from dataclasses import replace
from pathlib import Path

import pytest

from cms.config import load_settings
from cms.errors import StartupError
from services.case_api.case_ids import case_id_for, case_id_secret, write_dev_case_id_secret

NI_NUMBER = "QQ123456C"
SECRET = b"s" * 32


def test_the_same_key_and_secret_name_the_same_case_and_the_id_is_not_a_plain_hash_of_the_key() -> None:
    assert case_id_for(NI_NUMBER, SECRET) == case_id_for(NI_NUMBER, SECRET)
    assert case_id_for(NI_NUMBER, SECRET) != "c" + hashlib.sha256(NI_NUMBER.encode()).hexdigest()[:15]
    assert case_id_for(NI_NUMBER, SECRET) != case_id_for(NI_NUMBER, b"t" * 32)
    assert len(case_id_for(NI_NUMBER, SECRET)) == 16 and case_id_for(NI_NUMBER, SECRET).startswith("c")


def test_the_dev_secret_is_created_once_owner_only_and_then_read(tmp_path: Path) -> None:
    path = tmp_path / "data" / "case-id-secret"
    assert write_dev_case_id_secret(path)
    first = path.read_text()
    assert not write_dev_case_id_secret(path) and path.read_text() == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    settings = replace(load_settings(), case_id_secret="", case_id_secret_file=path)
    assert case_id_secret(settings) == first.encode()


@pytest.mark.parametrize("inline, file_name", [("", "missing"), ("too short", "")])
def test_a_missing_or_weak_secret_stops_the_start_naming_the_setting(tmp_path: Path, inline: str, file_name: str) -> None:
    settings = replace(load_settings(), case_id_secret=inline,
                       case_id_secret_file=tmp_path / file_name if file_name else None)
    with pytest.raises(StartupError, match="CMS_CASE_ID_SECRET"):
        case_id_secret(settings)
