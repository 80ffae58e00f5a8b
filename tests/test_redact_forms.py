"""Every recognised secret form is redacted from every stored and served field: audit
records, export, the stream's records, the WAL, and the approvals' message, cwd, reason and
resolved_by."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rampartd.audit.redact import REDACTED, prepare_payload, redact, redact_text
from rampartd.config import Settings
from tests.test_approvals import approval_settings

STRIPE = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"
AWS_SECRET = "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY"
MYSQL = "S3cretMysqlPw"
SSHPASS = "SshPassHunter2"
CURL = "CurlPassw0rd"
HEADER = "hdr-value-0123456789"
URL_TOKEN = "ghx0123456789abcdefTOKEN"
NPM = "npm_abcdefghij0123456789"
AGENT = "rpd_agent_abcdefghijklmnopqrstuvwxyz012345"

# (text, the secret in it, what must be kept)
FORMS: list[tuple[str, str, str]] = [
    (f"curl -H x https://api.stripe.com -d key={STRIPE}", STRIPE, "api.stripe.com"),
    (f"stripe login --api {STRIPE}", STRIPE, "stripe login"),
    (f"aws configure set aws_secret_access_key {AWS_SECRET}", AWS_SECRET,
     "aws configure set aws_secret_access_key"),
    (f"mysql -u root -p{MYSQL} shop", MYSQL, "mysql -u root -p"),
    (f"sshpass -p {SSHPASS} ssh deploy@host", SSHPASS, "ssh deploy@host"),
    (f"sshpass -p'{SSHPASS}' ssh host", SSHPASS, "ssh host"),
    (f"curl -u alice:{CURL} https://x.example", CURL, "curl -u alice:"),
    (f"curl -ualice:{CURL} https://x.example", CURL, "https://x.example"),
    (f"wget --user bob:{CURL} https://x.example", CURL, "wget --user bob:"),
    (f"git clone https://{URL_TOKEN}@github.com/o/r", URL_TOKEN, "@github.com/o/r"),
    (f"npm config set //registry.npmjs.org/:_authToken {NPM}", NPM, "npm config set"),
    (f"npm config set //registry.npmjs.org/:_authToken={NPM}", NPM, "npm config set"),
    (f"export RAMPARTD_TOKEN={AGENT}; rampartd check ls", AGENT, "rampartd check ls"),
    (f"echo {AGENT}", AGENT, "echo "),
]


@pytest.mark.parametrize(("text", "secret", "kept"), FORMS)
def test_each_form_is_redacted(text: str, secret: str, kept: str) -> None:
    out = redact_text(text)
    assert secret not in out
    assert REDACTED in out
    assert kept in out


@pytest.mark.parametrize("text", [
    "mysql -u root -p shop",                    # -p alone: mysql prompts, "shop" is the db
    "docker run -u 1000:1000 alpine",           # -u of another program is not user:password
    "git clone git@github.com:o/r.git",          # ssh user names are not tokens
    "curl https://alice@example.com/x",          # a short user name in a URL
    "npm config set registry https://r.example",
    "git config --global user.name Bob",
    "aws configure set region eu-west-1",
])
def test_look_alikes_are_kept(text: str) -> None:
    assert redact_text(text) == text


def test_header_lists_name_the_secret_beside_the_value() -> None:
    params = {"headers": [{"name": "X-Api-Key", "value": HEADER},
                          {"name": "Accept", "value": "application/json"},
                          {"key": "Authorization", "value": HEADER}]}
    out = redact(params)
    assert HEADER not in json.dumps(out)
    assert out["headers"][1] == {"name": "Accept", "value": "application/json"}
    assert out["headers"][0] == {"name": "X-Api-Key", "value": REDACTED}


def test_known_literals_are_redacted_anywhere() -> None:
    token = "Zm9vYmFyYmF6cXV1eDEyMzQ1Njc4OTAxMjM0NTY3ODk"
    payload = {"request": {"command": f"curl -H 'X: {token}' x", token: 1},
               "detail": {"note": f"used {token}"}}
    out = prepare_payload(payload, known=(token,))
    assert token not in json.dumps(out)
    assert prepare_payload({"request": {"a": "b"}}, known=(token,)) == {"request": {"a": "b"}}
    # A token file holding something short must not mangle every record.
    assert redact_text("a cat sat", known=("a", "")) == "a cat sat"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The ask policy: transfers above 100 need a person."""
    return approval_settings(tmp_path, approval_timeout=60)


async def test_every_stored_and_served_field_is_redacted(
        client: Any, auth: dict[str, str], admin_token: str, settings: Settings) -> None:
    secrets = [STRIPE, AWS_SECRET, MYSQL, SSHPASS, CURL, HEADER, URL_TOKEN, NPM, AGENT,
               admin_token]
    command = " && ".join(text for text, _, _ in FORMS) + f" && echo {admin_token}"
    body = {"agent": "a", "session": "s", "run_id": "r", "tool_call_id": "t1",
            "cwd": f"/tmp/{admin_token}/password={MYSQL}",
            "params": {"amount": 500, "note": command,
                       "headers": [{"name": "X-Api-Key", "value": HEADER}]}}
    resp = await client.post("/v1/tool/transfer_funds", json=body, headers=auth)
    assert resp.status == 202, await resp.text()
    approval_id = (await resp.json())["approval_id"]

    operator = {"agent": "a", "session": "s", "run_id": "r", "tool_call_id": "t2",
                "tool": "transfer_funds", "params": {"amount": 1},
                "message": f"payout, creds: curl -u bob:{CURL} and {STRIPE}"}
    resp = await client.post("/v1/approvals", json=operator, headers=auth)
    assert resp.status == 201, await resp.text()
    second = (await resp.json())["id"]

    resp = await client.post(f"/v1/approvals/{approval_id}/resolve", headers=auth, json={
        "approved": False, "resolved_by": f"alice {AGENT}",
        "reason": f"do not paste {admin_token} or sshpass -p {SSHPASS} here"})
    assert resp.status == 200, await resp.text()
    resolved = await resp.json()
    assert resolved["resolved_by"] == f"alice {REDACTED}"
    assert resolved["cwd"] == f"/tmp/{REDACTED}/password={REDACTED}"

    served = []
    for path in (f"/v1/approvals/{approval_id}", f"/v1/approvals/{second}",
                 "/v1/approvals?status=all", "/v1/audit/events?limit=500", "/v1/audit/export"):
        resp = await client.get(path, headers=auth)
        assert resp.status == 200, path
        served.append(await resp.text())
    text = "\n".join(served)
    assert "payout, creds: curl -u bob:" in text  # the operator's message is kept, redacted
    for secret in secrets:
        assert secret not in text
    await client.post("/v1/policy/reload", headers=auth)  # one more commit through the WAL
    stored = b"".join(p.read_bytes() for p in settings.home.glob("rampartd.db*"))
    for secret in secrets:
        assert secret.encode() not in stored, secret


def test_bulky_payloads_are_recognised_cheaply() -> None:
    from rampartd.audit.redact import is_bulky

    assert not is_bulky({"command": "ls", "n": list(range(100))})
    assert is_bulky({"a": [{"k": i} for i in range(2000)]})
    assert is_bulky({"text": "x" * 200_000})


async def test_a_bulky_call_is_redacted_like_any_other(client: Any, auth: dict[str, str],
                                                       admin_token: str) -> None:
    params: dict[str, Any] = {f"k{i}": i for i in range(3000)}
    params["note"] = f"echo {STRIPE} {admin_token}"
    params["amount"] = 1
    body = {"agent": "a", "session": "s", "params": params}
    resp = await client.post("/v1/tool/transfer_funds", json=body, headers=auth)
    assert resp.status == 200, await resp.text()
    record = (await (await client.get("/v1/audit/events?limit=1", headers=auth)).json())
    request = record["events"][0]["request"]
    assert request["k2999"] == 2999  # kept whole: it fits a record
    assert request["note"] == f"echo {REDACTED} {REDACTED}"
