"""The data converter every client and worker uses: Temporal's default, except that a message
marked `__strict_json__` (see workflows/case_messages.py) refuses unknown keys instead of dropping
them, so a caseworker's typo in the UI's update form is an error, not a silently lost field.

`data_converter(codec)` adds the payload codec that encrypts what history stores (cms/payload_codec.py)
and moves a failure's message and stack trace into an encoded payload, so an error that quotes a
value is no clearer in history than the value itself. Workflow code never sees the codec: it runs
outside the sandbox, on the way in and out of the worker."""

from __future__ import annotations

import dataclasses
from typing import Any

import temporalio.converter
from temporalio.converter import (
    CompositePayloadConverter,
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    DefaultPayloadConverter,
    JSONPlainPayloadConverter,
    JSONTypeConverter,
    PayloadCodec,
)


class _RejectUnknownKeys(JSONTypeConverter):
    def to_typed_value(self, hint: type, value: Any) -> Any:
        if getattr(hint, "__strict_json__", False) and isinstance(value, dict):
            allowed = {f.name for f in dataclasses.fields(hint)}
            unknown = sorted(set(value) - allowed)
            if unknown:
                raise TypeError(f"unknown field(s) {', '.join(unknown)}; "
                                f"{hint.__name__} takes {', '.join(sorted(allowed))}")
        return JSONTypeConverter.Unhandled


class _StrictJSONPlain(JSONPlainPayloadConverter):
    def __init__(self) -> None:
        super().__init__(custom_type_converters=[_RejectUnknownKeys()])


class StrictPayloadConverter(CompositePayloadConverter):
    def __init__(self) -> None:
        super().__init__(*(
            _StrictJSONPlain() if isinstance(c, JSONPlainPayloadConverter) else c
            for c in DefaultPayloadConverter.default_encoding_payload_converters
        ))


STRICT_DATA_CONVERTER = dataclasses.replace(
    temporalio.converter.default(), payload_converter_class=StrictPayloadConverter
)


def data_converter(codec: PayloadCodec | None) -> DataConverter:
    """The strict converter with `codec` on every payload and failures' attributes encoded.
    Clients and workers get it from cms.temporal.data_converter_for(settings), with the keys."""
    return dataclasses.replace(STRICT_DATA_CONVERTER, payload_codec=codec,
                               failure_converter_class=DefaultFailureConverterWithEncodedAttributes)
