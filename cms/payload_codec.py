"""Encryption of workflow payloads at rest in Temporal's history (AES-256-GCM).

A case's history holds incomes, addresses and notes. Temporal stores whatever the client sends,
so every client and worker encodes payloads with `EncryptionCodec` before they leave the process:
the server, its database and anyone reading raw history see only ciphertext. The Temporal UI sees
clear values only through the codec server (services/codec_server), which needs its own token.

Keys form a `KeyRing`: one current key encrypts; every key in the ring decrypts, so a key is
rotated by adding a new one as current and keeping the old ones until no history needs them.
Each encrypted payload carries the id of the key that sealed it in its metadata. A payload
without the `binary/encrypted` encoding (histories recorded before encryption) passes through
unchanged; a payload sealed with a key the ring lacks is refused, never shown as stored.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from cms.config import Settings
from cms.errors import StartupError

ENCODING = b"binary/encrypted"
KEY_ID_METADATA = "encryption-key-id"
_NONCE_BYTES = 12
_KEY_BYTES = 32


class PayloadKeyError(ValueError):
    """The keys cannot be read, or a payload names a key the ring does not hold."""


@dataclass(frozen=True)
class KeyRing:
    """Key id -> 32-byte AES key, and the id of the key new payloads are sealed with."""

    keys: dict[str, bytes]
    current: str

    def __post_init__(self) -> None:
        if self.current not in self.keys:
            raise PayloadKeyError(f"the current key id {self.current!r} is not among the keys")
        for key_id, key in self.keys.items():
            if len(key) != _KEY_BYTES:
                raise PayloadKeyError(f"key {key_id!r} is {len(key)} bytes; AES-256 needs {_KEY_BYTES}")

    @classmethod
    def from_json(cls, text: str) -> KeyRing:
        """`{"current": "2026-12", "keys": {"2026-12": "<base64 of 32 bytes>", ...}}`."""
        try:
            document = json.loads(text)
            keys = {str(key_id): base64.b64decode(value, validate=True)
                    for key_id, value in document["keys"].items()}
            return cls(keys=keys, current=str(document["current"]))
        except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as error:
            if isinstance(error, PayloadKeyError):
                raise
            raise PayloadKeyError(
                'payload keys must be JSON {"current": "<key id>", "keys": {"<key id>": "<base64 of 32 bytes>"}}'
            ) from None

    def to_json(self) -> str:
        return json.dumps({"current": self.current,
                           "keys": {key_id: base64.b64encode(key).decode() for key_id, key in self.keys.items()}},
                          indent=2)

    def rotated(self, new_key_id: str, new_key: bytes | None = None) -> KeyRing:
        """The ring with a new current key; the old keys stay so older history still decrypts."""
        return KeyRing(keys={**self.keys, new_key_id: new_key or AESGCM.generate_key(bit_length=256)},
                       current=new_key_id)


def new_key_ring(key_id: str = "dev-1") -> KeyRing:
    return KeyRing(keys={key_id: AESGCM.generate_key(bit_length=256)}, current=key_id)


def write_dev_key_file(path: Path) -> bool:
    """Creates a key file with one fresh key, readable by its owner only (0600), unless one is
    there already (its keys seal history that must stay readable). True when it was created."""
    if path.exists():
        return False
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_owner_only(path, new_key_ring(f"dev-{secrets.token_hex(4)}").to_json())
    return True


def write_owner_only(path: Path, text: str) -> None:
    """Writes a new secret file created 0600 from the first byte, not chmod-ed afterwards, so it is
    never readable by anyone but its owner; refuses to replace an existing file."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)


class EncryptionCodec(PayloadCodec):
    """AES-256-GCM over each whole payload (its metadata and data), so even the encoding of a
    value is hidden. A fresh random nonce per payload, stored in front of the ciphertext."""

    def __init__(self, key_ring: KeyRing):
        self._ring = key_ring
        self._ciphers = {key_id: AESGCM(key) for key_id, key in key_ring.keys.items()}

    @property
    def current_key_id(self) -> str:
        return self._ring.current

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(payload) for payload in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(payload) for payload in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        key_id = self._ring.current
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = self._ciphers[key_id].encrypt(nonce, payload.SerializeToString(), key_id.encode())
        return Payload(metadata={"encoding": ENCODING, KEY_ID_METADATA: key_id.encode()}, data=nonce + sealed)

    def decrypt(self, payload: Payload) -> Payload:
        if not is_encrypted(payload):
            return payload  # recorded before encryption, or never encoded: passed through as is
        key_id = payload.metadata.get(KEY_ID_METADATA, b"").decode(errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise PayloadKeyError(f"payload is encrypted with key id {key_id!r}, which is not among the "
                                  f"configured payload keys ({', '.join(sorted(self._ciphers))})")
        nonce, sealed = payload.data[:_NONCE_BYTES], payload.data[_NONCE_BYTES:]
        try:
            clear = cipher.decrypt(nonce, sealed, key_id.encode())
        except InvalidTag:
            raise PayloadKeyError(f"payload sealed with key id {key_id!r} fails authentication: "
                                  "the key differs from the one that sealed it, or the payload was altered") from None
        return Payload.FromString(clear)


def is_encrypted(payload: Payload) -> bool:
    return payload.metadata.get("encoding") == ENCODING


async def decode_payloads_in(message: Message, codec: PayloadCodec) -> None:
    """Decodes, in place, every Payload anywhere inside a protobuf message (a whole History, one
    event): what a fetched history needs before it is kept as a plain replay fixture."""
    for field, value in message.ListFields():
        kind = field.message_type
        if field.type != FieldDescriptor.TYPE_MESSAGE or kind is None:
            continue
        if kind.GetOptions().map_entry:
            children = list(value.values()) if kind.fields_by_name["value"].message_type else []
        elif field.is_repeated:
            children = list(value)
        else:
            children = [value]
        for child in children:
            if isinstance(child, Payload):
                child.CopyFrom((await codec.decode([child]))[0])
            else:
                await decode_payloads_in(child, codec)


def key_ring_from_settings(settings: Settings) -> KeyRing:
    """The ring named by the settings: CMS_PAYLOAD_KEYS inline, else the file CMS_PAYLOAD_KEYS_FILE.
    Anything missing or malformed is a StartupError naming the setting: a client that cannot
    encrypt must not start, or it would write clear personal data into history."""
    if settings.payload_keys:
        try:
            return KeyRing.from_json(settings.payload_keys)
        except PayloadKeyError as error:
            raise StartupError(f"CMS_PAYLOAD_KEYS is not a usable key ring: {error}") from None
    path = settings.payload_keys_file
    if path is None or not path.is_file():
        raise StartupError(f"the payload key file CMS_PAYLOAD_KEYS_FILE={path} does not exist; "
                           "`make run` creates a development one, or set CMS_PAYLOAD_KEYS_FILE / CMS_PAYLOAD_KEYS")
    try:
        return KeyRing.from_json(path.read_text())
    except PayloadKeyError as error:
        raise StartupError(f"the payload key file CMS_PAYLOAD_KEYS_FILE={path} is not usable: {error}") from None
