"""The data converter every client and worker uses: Temporal's default, except that a message
marked `__strict_json__` (see workflows/case_messages.py) refuses unknown keys instead of dropping
them, so a caseworker's typo in the UI's update form is an error, not a silently lost field."""

from __future__ import annotations

import dataclasses
from typing import Any

import temporalio.converter
from temporalio.converter import (
    CompositePayloadConverter,
    DefaultPayloadConverter,
    JSONPlainPayloadConverter,
    JSONTypeConverter,
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


