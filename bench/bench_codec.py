"""Payload codec throughput: what `EncryptionCodec` adds to AES-256-GCM itself.

The payloads are the ones a case sends most: its input (CaseInput, a few hundred bytes) and a
caseworker's note, converted by the product's converter, plus larger ones (a read-model-sized
timeline) so the figure is not only per-call overhead. The baseline encrypts and decrypts the
very same serialised payloads with `AESGCM` directly, same key, same run: the ratio is the codec's
own cost (key lookup, metadata, protobuf framing). MB/s counts the clear payload bytes.
Run alone: ``python -m bench.bench_codec [--quick]``.
"""

from __future__ import annotations

import asyncio
import secrets
import sys
import time
from collections.abc import Callable

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload

from cms.payload_codec import EncryptionCodec, new_key_ring
from workflows.case_messages import CaseInput, ChildFacts, NoteRequest
from workflows.converter import STRICT_DATA_CONVERTER

_NONCE_BYTES = 12


def case_payloads(count: int) -> list[Payload]:
    """`count` payloads as a case's history holds them: inputs, notes and a long timeline."""
    converter = STRICT_DATA_CONVERTER.payload_converter
    values: list[object] = []
    for i in range(count):
        kind = i % 3
        if kind == 0:
            values.append(CaseInput(case_id=f"c{i:015x}", application_date="2025-01-10", receiving_parent_id=f"rp-{i}",
                                    paying_parent_id=f"pp-{i}", children=[ChildFacts(f"ch-{i}", "2015-03-01")]))
        elif kind == 1:
            values.append(NoteRequest(text=f"Paying parent called about arrears, note {i} " * 4, author="cw-1"))
        else:
            values.append([{"at": "2025-02-01T09:00:00Z", "event": "payment received", "pence": 12_345 + j}
                           for j in range(200)])
    return converter.to_payloads(values)


def _rate(total_bytes: int, action: Callable[[], object], rounds: int) -> float:
    action()  # warm-up
    started = time.perf_counter()
    for _ in range(rounds):
        action()
    return total_bytes * rounds / (time.perf_counter() - started) / 1e6


def measure(count: int, rounds: int) -> dict[str, float]:
    payloads = case_payloads(count)
    ring = new_key_ring("bench")
    codec = EncryptionCodec(ring)
    cipher = AESGCM(ring.keys[ring.current])
    clear = [payload.SerializeToString() for payload in payloads]
    total = sum(len(data) for data in clear)
    nonce = secrets.token_bytes(_NONCE_BYTES)  # the baseline's one nonce: it is only timed, never stored
    sealed_raw = [cipher.encrypt(nonce, data, None) for data in clear]
    sealed = asyncio.run(codec.encode(payloads))

    def raw_encrypt() -> object:
        return [cipher.encrypt(secrets.token_bytes(_NONCE_BYTES), data, None) for data in clear]

    def raw_decrypt() -> object:
        return [cipher.decrypt(nonce, data, None) for data in sealed_raw]

    return {
        "bytes": total,
        "codec_encode": _rate(total, lambda: [codec.encrypt(p) for p in payloads], rounds),
        "raw_encrypt": _rate(total, raw_encrypt, rounds),
        "codec_decode": _rate(total, lambda: [codec.decrypt(p) for p in sealed], rounds),
        "raw_decrypt": _rate(total, raw_decrypt, rounds),
    }


def run(quick: bool) -> list[dict]:
    figures = measure(count=300 if quick else 3000, rounds=5 if quick else 20)
    size = f"{figures['bytes'] / 1e6:.2f} MB of case payloads"
    return [
        {"benchmark": f"codec encode ({size})", "value": figures["codec_encode"], "unit": "MB/s",
         "baseline": figures["raw_encrypt"], "ratio": figures["codec_encode"] / figures["raw_encrypt"],
         "target": "measured (vs raw AES-GCM, same payloads)"},
        {"benchmark": f"codec decode ({size})", "value": figures["codec_decode"], "unit": "MB/s",
         "baseline": figures["raw_decrypt"], "ratio": figures["codec_decode"] / figures["raw_decrypt"],
         "target": "measured (vs raw AES-GCM, same payloads)"},
    ]


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(row)
