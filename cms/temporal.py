"""Connecting to Temporal and making sure the custom search attributes exist."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.service import RPCError, TLSConfig

from cms.config import Settings
from cms.errors import StartupError
from cms.search_attributes import SEARCH_ATTRIBUTE_TYPES

_INDEXED_TYPE = {
    "Keyword": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    "Datetime": IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
    "Int": IndexedValueType.INDEXED_VALUE_TYPE_INT,
    "Bool": IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
}


def data_converter_for(settings: Settings) -> DataConverter:
    """The converter of every client and worker: strict JSON (a message typed into the Temporal UI
    with an unknown key is rejected instead of the key being dropped), payloads encrypted with the
    configured keys, failure messages encoded. StartupError when the keys are missing."""
    from cms.payload_codec import EncryptionCodec, key_ring_from_settings
    from workflows.converter import data_converter

    return data_converter(EncryptionCodec(key_ring_from_settings(settings)))


def security_options(settings: Settings) -> dict[str, Any]:
    """`Client.connect` options for a secured cluster: `tls` from TEMPORAL_TLS_CERT/KEY/CA (a
    client certificate for mutual TLS, a CA for the server's certificate), `api_key` from
    TEMPORAL_API_KEY (always over TLS). Nothing set: plain gRPC, as the local dev server speaks.
    StartupError naming the setting when a file cannot be read or a certificate lacks its key."""
    cert, key, ca = settings.temporal_tls_cert, settings.temporal_tls_key, settings.temporal_tls_ca
    if (cert is None) != (key is None):
        raise StartupError("TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY go together: set both for mutual TLS, or neither")
    options: dict[str, Any] = {}
    if cert or ca or settings.temporal_api_key:
        options["tls"] = TLSConfig(
            server_root_ca_cert=_read_pem(ca, "TEMPORAL_TLS_CA"),
            client_cert=_read_pem(cert, "TEMPORAL_TLS_CERT"),
            client_private_key=_read_pem(key, "TEMPORAL_TLS_KEY"),
            domain=settings.temporal_tls_server_name or None,
        )
    if settings.temporal_api_key:
        options["api_key"] = settings.temporal_api_key
    return options


def _read_pem(path: Path | None, setting: str) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as error:
        raise StartupError(f"{setting}={path} cannot be read: {error.strerror}") from None


def connect_options(settings: Settings) -> dict[str, Any]:
    """Everything `Client.connect` needs besides the address: namespace, converter, security."""
    return {"namespace": settings.temporal_namespace, "data_converter": data_converter_for(settings),
            **security_options(settings)}


async def connect(settings: Settings, ready_within: float = 0.0) -> Client:
    """The one way every client and worker connects: `settings`' namespace, converter (with the
    payload codec) and security (TLS / API key). `ready_within`: for a server started a moment
    ago, keep trying that long until it serves."""
    options = connect_options(settings)
    address = settings.temporal_address
    try:
        if ready_within:
            return await connect_when_ready(address, ready_within, **options)
        return await Client.connect(address, **options)
    except RuntimeError as error:
        raise StartupError(
            f"cannot reach Temporal at {settings.temporal_address} ({error}); start it with `make run` "
            "or point TEMPORAL_ADDRESS at a running server"
        ) from None


async def connect_when_ready(address: str, timeout: float = 60.0, **options) -> Client:
    """A client to a dev server this process just started: its port opens before its frontend
    answers, even to connect, so connecting is retried until `timeout`, then it must serve."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            client = await Client.connect(address, **options)
            break
        except RuntimeError:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.5)
    await wait_until_serving(client, timeout)
    return client


async def wait_until_serving(client: Client, timeout: float = 30.0) -> None:
    """A freshly started dev server opens its port a moment before its frontend is healthy:
    wait for a real answer (a visibility count) before anything else talks to it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            await client.count_workflows()
            return
        except RPCError as error:
            if loop.time() > deadline:
                raise StartupError(f"Temporal at {client.service_client.config.target_host} never became healthy") from error
            await asyncio.sleep(0.5)


async def ensure_search_attributes(client: Client, namespace: str) -> list[str]:
    """Registers any of our search attributes the namespace lacks; returns those it added.

    Must run before a worker upserts them: an unregistered attribute wedges the workflow task.
    """
    existing = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    missing = {
        name: _INDEXED_TYPE[kind]
        for name, kind in SEARCH_ATTRIBUTE_TYPES.items()
        if name not in existing.custom_attributes
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=missing)
        )
    return sorted(missing)
