"""The data converter of the tests' clients and workers: the product's own (cms.temporal.data_converter_for),
with the session's payload keys, which tests/conftest.py puts in CMS_PAYLOAD_KEYS for this process
and every service or worker it starts."""

from __future__ import annotations

from collections.abc import Sequence

from temporalio.api.history.v1 import History, HistoryEvent
from temporalio.converter import DataConverter

from cms.config import load_settings
from cms.payload_codec import decode_payloads_in
from cms.temporal import data_converter_for


def codec_data_converter() -> DataConverter:
    return data_converter_for(load_settings())


async def assert_sealed(events: Sequence[HistoryEvent], planted: list[str]) -> None:
    """A history's `events` as fetched without the codec (as the server, its database or a client
    without the keys has them) show none of `planted`; decoded with the keys they show at least
    one, so the values were really there to find and the check can fail."""
    stored = History(events=events)
    assert [value for value in planted if value.encode() in stored.SerializeToString()] == []
    codec = codec_data_converter().payload_codec
    assert codec is not None
    opened = History()
    opened.CopyFrom(stored)
    await decode_payloads_in(opened, codec)
    clear = opened.SerializeToString()
    assert [value for value in planted if value.encode() in clear], "none of the planted values was in the history"
