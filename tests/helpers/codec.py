"""The data converter of the tests' clients and workers: the product's own (cms.temporal.data_converter_for),
with the session's payload keys, which tests/conftest.py puts in CMS_PAYLOAD_KEYS for this process
and every service or worker it starts."""

from __future__ import annotations

from temporalio.converter import DataConverter

from cms.config import load_settings
from cms.temporal import data_converter_for


def codec_data_converter() -> DataConverter:
    return data_converter_for(load_settings())
