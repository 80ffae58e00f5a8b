"""Rampartd-HMAC through the real app: who may sign, what a signed answer proves, and the
token rotation the daemon follows."""

from __future__ import annotations

import json
import os
import time
from typing import Any

from rampartd import proof
from rampartd.config import Settings
from rampartd.home import read_token, rotate_token

CALL = {"agent": "a", "session": "signed", "params": {"command": "git status"}}


def signed(token: str, path: str, body: bytes, nonce: str, method: str = "POST") -> dict[str, str]:
    header = proof.authorization(proof.key_id(token), proof.proof_key(token), method, path,
                                 str(int(time.time() * 1000)), nonce, body)
    return {"Authorization": header, "Content-Type": "application/json"}


async def test_a_signed_call_is_answered_with_a_proof_for_its_nonce(client: Any,
                                                                    admin_token: str) -> None:
    body = json.dumps(CALL).encode()
    for path in ("/v1/tool/exec", "/v1/preflight/exec", "/v1/tool/exec?ask=host"):
        nonce = os.urandom(16).hex()
        resp = await client.post(path, data=body, headers=signed(admin_token, path, body, nonce))
        answer = await resp.json()
        assert resp.status == 200, answer
        assert proof.verify(proof.proof_key(admin_token), nonce, answer), path
    # the MAC covers the query: the same signature on another target is refused
    nonce = os.urandom(16).hex()
    resp = await client.post("/v1/tool/exec?ask=host", data=body,
                             headers=signed(admin_token, "/v1/tool/exec", body, nonce))
    assert resp.status == 401


async def test_a_nonce_header_beside_a_signature_is_refused(client: Any,
                                                             admin_token: str) -> None:
    body = json.dumps(CALL).encode()
    nonce = os.urandom(16).hex()
    headers = {**signed(admin_token, "/v1/tool/exec", body, nonce),
               proof.NONCE_HEADER: os.urandom(16).hex()}
    resp = await client.post("/v1/tool/exec", data=body, headers=headers)
    answer = await resp.json()
    assert resp.status == 400 and answer["code"] == "invalid_parameter"
    assert proof.NONCE_HEADER in answer["error"]


async def test_an_oversized_signed_body_is_413(client: Any, admin_token: str) -> None:
    body = json.dumps({**CALL, "params": {"command": "x" * (1 << 20)}}).encode()
    resp = await client.post("/v1/tool/exec", data=body,
                             headers=signed(admin_token, "/v1/tool/exec", body, "o" * 32))
    assert resp.status == 413


async def test_an_agent_signs_with_its_own_key_until_its_token_is_rotated(
        client: Any, auth: dict[str, str]) -> None:
    resp = await client.post("/v1/agents", json={"name": "signer"}, headers=auth)
    created = await resp.json()
    token = created["token"]
    body = json.dumps(CALL).encode()
    nonce = os.urandom(16).hex()
    resp = await client.post("/v1/tool/exec", data=body,
                             headers=signed(token, "/v1/tool/exec", body, nonce))
    answer = await resp.json()
    assert resp.status == 200 and proof.verify(proof.proof_key(token), nonce, answer)
    resp = await client.post(f"/v1/agents/{created['id']}/token", headers=auth)
    new_token = (await resp.json())["token"]
    resp = await client.post("/v1/tool/exec", data=body,
                             headers=signed(token, "/v1/tool/exec", body, os.urandom(16).hex()))
    assert resp.status == 401  # the old key went with the old token
    resp = await client.post("/v1/tool/exec", data=body, headers=signed(
        new_token, "/v1/tool/exec", body, os.urandom(16).hex()))
    assert resp.status == 200


async def test_the_admin_key_follows_a_rotation(client: Any, settings: Settings,
                                                admin_token: str) -> None:
    body = json.dumps(CALL).encode()
    rotate_token(settings.token_path)
    rotated = read_token(settings.token_path)
    resp = await client.post("/v1/tool/exec", data=body, headers=signed(
        admin_token, "/v1/tool/exec", body, os.urandom(16).hex()))
    assert resp.status == 401
    resp = await client.post("/v1/tool/exec", data=body, headers=signed(
        rotated, "/v1/tool/exec", body, os.urandom(16).hex()))
    assert resp.status == 200


async def test_signatures_are_for_evaluation_calls_only(client: Any, admin_token: str) -> None:
    for method, path in (("GET", "/v1/status"), ("GET", "/v1/events/stream"),
                         ("GET", "/v1/audit/events")):
        resp = await client.request(method, path, headers=signed(
            admin_token, path, b"", os.urandom(16).hex(), method))
        assert resp.status == 401, path
        assert "Bearer" in (await resp.json())["error"]
