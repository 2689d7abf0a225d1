"""The codec server the Temporal UI calls: bearer token required, CORS for the UI's origin only,
bad bodies refused without being logged, every decode audited without its values."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
import structlog
from aiohttp.test_utils import TestClient, TestServer
from google.protobuf import json_format
from structlog.testing import capture_logs
from temporalio.api.common.v1 import Payload, Payloads

from cms.payload_codec import EncryptionCodec, new_key_ring
from services.codec_server.app import build_app, parse_tokens

pytestmark = pytest.mark.asyncio(loop_scope="session")

UI = "http://localhost:8233"
TOKEN = "codec-test-secret"
NOTE = b'"Called the paying parent about 4817263"'
CODEC = EncryptionCodec(new_key_ring("k1"))


@pytest_asyncio.fixture(loop_scope="session")
async def http() -> AsyncIterator[TestClient]:
    app = build_app(CODEC, parse_tokens(f"cw-team={TOKEN}"), UI, structlog.get_logger(service="codec_server"))
    async with TestClient(TestServer(app)) as client:
        yield client


def as_json(*payloads: Payload) -> dict:
    return json_format.MessageToDict(Payloads(payloads=payloads))


async def sealed_note() -> Payload:
    return (await CODEC.encode([Payload(metadata={"encoding": b"json/plain"}, data=NOTE)]))[0]


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "X-Namespace": "default", "Origin": UI}


async def test_decode_answers_the_clear_payload_and_audits_who_and_which_namespace_without_values(http) -> None:
    with capture_logs() as logs:
        response = await http.post("/decode", json=as_json(await sealed_note()), headers=auth())
    assert response.status == 200
    decoded = json_format.ParseDict(await response.json(), Payloads())
    assert decoded.payloads[0].data == NOTE
    audit = [line for line in logs if line["event"] == "payloads_decoded"]
    assert audit == [{"service": "codec_server", "event": "payloads_decoded", "log_level": "info", "who": "cw-team", "namespace": "default",
                      "workflow_id": None, "referer": None, "payload_count": 1}]
    assert "4817263" not in json.dumps(logs)


async def test_encode_seals_what_the_ui_sends(http) -> None:
    clear = Payload(metadata={"encoding": b"json/plain"}, data=NOTE)
    response = await http.post("/encode", json=as_json(clear), headers=auth())
    assert response.status == 200
    sealed = json_format.ParseDict(await response.json(), Payloads()).payloads[0]
    assert b"4817263" not in sealed.data
    assert await CODEC.decode([sealed]) == [clear]


async def test_the_endpoints_also_answer_under_a_prefix(http) -> None:
    response = await http.post("/default/decode", json=as_json(await sealed_note()), headers=auth())
    assert response.status == 200


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong-secret"}, {"Authorization": TOKEN},
                                     {"Authorization": "Basic " + base64.b64encode(TOKEN.encode()).decode()}],
                         ids=["none", "wrong", "no-scheme", "basic"])
async def test_without_a_valid_bearer_token_nothing_is_decoded(http, headers) -> None:
    with capture_logs() as logs:
        response = await http.post("/decode", json=as_json(await sealed_note()), headers=headers)
    assert response.status == 401
    assert "4817263" not in await response.text()
    assert [line["event"] for line in logs] == ["codec_call_refused"]


@pytest.mark.parametrize("body", [b"not json 4817263", b'["4817263"]', b'{"payloads": "4817263"}',
                                  b'{"payloads": [{"data": 4817263}]}',
                                  b'{"payloads": [{"unknown": "4817263"}]}'],
                         ids=["not-json", "a-list", "not-a-list", "data-not-text", "unknown-field"])
async def test_a_bad_body_is_refused_and_nothing_of_it_is_logged(http, body) -> None:
    with capture_logs() as logs:
        response = await http.post("/decode", data=body, headers={**auth(), "Content-Type": "application/json"})
    assert response.status == 400
    assert logs and logs[0]["event"] == "codec_call_refused"
    assert "4817263" not in json.dumps(logs)
    assert "4817263" not in await response.text()


async def test_a_payload_under_an_unknown_key_is_refused_naming_the_key(http) -> None:
    foreign, = await EncryptionCodec(new_key_ring("retired-2024")).encode([Payload(data=NOTE)])
    response = await http.post("/decode", json=as_json(foreign), headers=auth())
    assert response.status == 422
    assert "retired-2024" in (await response.json())["error"]


async def test_cors_headers_go_to_the_configured_ui_origin_only(http) -> None:
    preflight = {"Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization,content-type,x-namespace"}
    allowed = await http.options("/decode", headers={**preflight, "Origin": UI})
    assert allowed.headers["Access-Control-Allow-Origin"] == UI
    assert "Authorization" in allowed.headers["Access-Control-Allow-Headers"]
    other = await http.options("/decode", headers={**preflight, "Origin": "http://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers
    answered = await http.post("/decode", json=as_json(await sealed_note()),
                               headers={**auth(), "Origin": "http://evil.example"})
    assert "Access-Control-Allow-Origin" not in answered.headers


async def test_tokens_are_labelled_for_the_audit_and_an_empty_secret_never_counts() -> None:
    assert [(t.label, t.secret) for t in parse_tokens("s1")] == [("shared-token", "s1")]
    assert [(t.label, t.secret) for t in parse_tokens("ops=a, audit=b,empty=")] == [("ops", "a"), ("audit", "b")]
    with pytest.raises(ValueError, match="CMS_CODEC_SERVER_TOKEN"):
        build_app(CODEC, parse_tokens(""), UI, structlog.get_logger())


async def test_signing_in_with_the_token_lets_the_ui_decode_with_its_session_cookie(http) -> None:
    refused = await http.post("/login", data={"token": "wrong-secret"}, allow_redirects=False)
    assert refused.status == 401 and "cms_codec_session" not in refused.cookies
    signed_in = await http.post("/login", data={"token": TOKEN}, allow_redirects=False)
    assert signed_in.status == 303 and signed_in.headers["Location"] == UI
    cookie = signed_in.cookies["cms_codec_session"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict"
    http.session.cookie_jar.clear()  # each call below carries only the cookie it names
    headers = {"Origin": UI, "X-Namespace": "default", "Cookie": f"cms_codec_session={cookie.value}"}
    with capture_logs() as logs:
        response = await http.post("/decode", json=as_json(await sealed_note()), headers=headers)
    assert response.status == 200
    assert [line["who"] for line in logs if line["event"] == "payloads_decoded"] == ["cw-team"]
    forged = await http.post("/decode", json=as_json(await sealed_note()),
                             headers={**headers, "Cookie": "cms_codec_session=forged"})
    assert forged.status == 401
