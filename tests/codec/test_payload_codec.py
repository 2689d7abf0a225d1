"""The payload codec: what it seals only its keys open, a rotated ring still opens the old
payloads, an unknown key id is refused by name, and payloads from before encryption pass."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.exceptions import ApplicationError

from cms.config import Settings
from cms.errors import StartupError
from cms.payload_codec import (
    ENCODING,
    KEY_ID_METADATA,
    EncryptionCodec,
    KeyRing,
    PayloadKeyError,
    key_ring_from_settings,
    new_key_ring,
    write_dev_key_file,
)
from workflows.converter import data_converter

INCOME = b'{"annual_income_pence": 4817263}'


def plain(data: bytes = INCOME) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=data)


async def test_a_sealed_payload_hides_its_value_and_opens_to_the_same_payload() -> None:
    codec = EncryptionCodec(new_key_ring("k1"))
    sealed, = await codec.encode([plain()])
    assert sealed.metadata["encoding"] == ENCODING
    assert sealed.metadata[KEY_ID_METADATA] == b"k1"
    assert b"4817263" not in sealed.SerializeToString()
    assert b"json/plain" not in sealed.SerializeToString(), "the value's own encoding is sealed too"
    assert await codec.decode([sealed]) == [plain()]
    again, = await codec.encode([plain()])
    assert again.data != sealed.data, "a fresh nonce for every payload"


async def test_after_rotation_the_new_key_seals_and_the_old_key_still_opens() -> None:
    old_ring = new_key_ring("2026-01")
    sealed_before, = await EncryptionCodec(old_ring).encode([plain()])
    rotated = EncryptionCodec(old_ring.rotated("2026-07"))
    sealed_after, = await rotated.encode([plain()])
    assert sealed_after.metadata[KEY_ID_METADATA] == b"2026-07"
    assert await rotated.decode([sealed_before, sealed_after]) == [plain(), plain()]
    # The old ring alone cannot open what the new key sealed.
    with pytest.raises(PayloadKeyError, match="2026-07"):
        await EncryptionCodec(old_ring).decode([sealed_after])


async def test_a_payload_sealed_with_an_unknown_key_is_refused_naming_the_key_never_passed_as_stored() -> None:
    sealed, = await EncryptionCodec(new_key_ring("retired-2024")).encode([plain()])
    with pytest.raises(PayloadKeyError, match="'retired-2024'"):
        await EncryptionCodec(new_key_ring("current")).decode([sealed])


async def test_a_payload_under_a_known_key_id_but_another_key_fails_authentication() -> None:
    sealed, = await EncryptionCodec(new_key_ring("k1")).encode([plain()])
    with pytest.raises(PayloadKeyError, match="fails authentication"):
        await EncryptionCodec(new_key_ring("k1")).decode([sealed])


async def test_a_payload_from_before_encryption_passes_through_unchanged() -> None:
    codec = EncryptionCodec(new_key_ring())
    assert await codec.decode([plain(), Payload(metadata={"encoding": b"binary/null"})]) == \
        [plain(), Payload(metadata={"encoding": b"binary/null"})]


async def test_a_failure_message_is_moved_into_an_encrypted_payload() -> None:
    converter = data_converter(EncryptionCodec(new_key_ring()))
    failure = Failure()
    await converter.encode_failure(ApplicationError("income 4817263 not matched"), failure)
    assert b"4817263" not in failure.SerializeToString()
    assert failure.message == "Encoded failure"
    assert "income 4817263 not matched" in str(await converter.decode_failure(failure))


def test_a_key_ring_reads_back_from_its_json_and_rejects_a_short_key() -> None:
    ring = new_key_ring("a").rotated("b")
    assert KeyRing.from_json(ring.to_json()) == ring
    with pytest.raises(PayloadKeyError, match="32"):
        KeyRing(keys={"a": b"short"}, current="a")
    with pytest.raises(PayloadKeyError, match="current"):
        KeyRing.from_json('{"current": "x", "keys": {}}')
    with pytest.raises(PayloadKeyError, match="JSON"):
        KeyRing.from_json("not json")


def test_the_dev_key_file_is_created_once_owner_only_and_never_replaced(tmp_path: Path) -> None:
    path = tmp_path / "data" / "payload-keys.json"
    assert write_dev_key_file(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    first = path.read_text()
    assert not write_dev_key_file(path)
    assert path.read_text() == first
    assert key_ring_from_settings(Settings(payload_keys_file=path)) == KeyRing.from_json(first)


def test_a_missing_key_file_is_a_one_line_startup_error_naming_the_setting(tmp_path: Path) -> None:
    with pytest.raises(StartupError, match="CMS_PAYLOAD_KEYS_FILE") as error:
        key_ring_from_settings(Settings(payload_keys_file=tmp_path / "absent.json"))
    assert "\n" not in str(error.value)
    with pytest.raises(StartupError, match="CMS_PAYLOAD_KEYS"):
        key_ring_from_settings(Settings(payload_keys='{"current": "x"}'))


def test_the_settings_never_show_the_keys_or_the_token() -> None:
    secret = new_key_ring().to_json()
    shown = repr(Settings(payload_keys=secret, codec_server_token="s3cret-token"))
    assert secret not in shown and "s3cret-token" not in shown
