"""Signed approval links: show, decide once, and refuse tampered, expired or reused links."""

from __future__ import annotations

import stat
import time
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from rampartd.approvals.links import KEY_FILE, link_url, load_link_key
from rampartd.config import Settings
from tests.test_approvals import approval_settings, ask, call_body, records, tool


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Overrides conftest: the ask policy, a long approval timeout."""
    return approval_settings(tmp_path, approval_timeout=60)


def signed(settings: Settings, approval_id: str, action: str = "approve",
           exp: int | None = None) -> str:
    """The path and query of a signed link (the test client adds its own host)."""
    exp = int(time.time()) + 300 if exp is None else exp
    url = link_url("http://127.0.0.1:9", load_link_key(settings.home), approval_id, action, exp)
    parts = urllib.parse.urlsplit(url)
    return f"{parts.path}?{parts.query}"


def with_query(path: str, **changes: str) -> str:
    """The same link with some query parameters replaced."""
    base, _, raw = path.partition("?")
    params = dict(urllib.parse.parse_qsl(raw))
    params.update(changes)
    return f"{base}?{urllib.parse.urlencode(params)}"


async def test_link_shows_then_approves_once(client: Any, auth: dict[str, str],
                                             settings: Settings) -> None:
    approval_id = await ask(client, auth)
    link = signed(settings, approval_id)
    key_file = settings.home / KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600 and len(key_file.read_bytes()) == 32

    resp = await client.get(link)  # no credential: the signature is the credential
    assert resp.status == 200
    shown = await resp.json()
    assert shown["action"] == "approve" and shown["approval"]["status"] == "pending"
    page = await client.get(link, headers={"Accept": "text/html"})
    assert page.status == 200 and page.content_type == "text/html"
    assert approval_id in await page.text()
    # GET only shows: the approval is still pending
    assert (await (await client.get(f"/v1/approvals/{approval_id}",
                                    headers=auth)).json())["status"] == "pending"

    resp = await client.post(link)
    assert resp.status == 200
    decided = await resp.json()
    assert (decided["status"], decided["resolved_by"]) == ("approved", "signed-link")
    record = (await records(client, auth, "approval.resolved"))[-1]
    assert record["approval"]["via"] == "link" and record["approval"]["id"] == approval_id

    resp = await client.post(link)  # reuse
    assert resp.status == 410
    # the approval leaves only the one-shot retry grant, never a standing rule
    assert (await tool(client, auth, call_body()))[0] == 200
    assert (await tool(client, auth, call_body()))[0] == 202
    assert (await tool(client, auth, call_body(amount=333, tool_call_id="x")))[0] == 202


async def test_deny_link(client: Any, auth: dict[str, str], settings: Settings) -> None:
    approval_id = await ask(client, auth)
    resp = await client.post(signed(settings, approval_id, "deny"))
    assert resp.status == 200 and (await resp.json())["status"] == "denied"
    assert (await tool(client, auth, call_body()))[0] == 202


async def test_tampered_links_are_refused(client: Any, auth: dict[str, str],
                                          settings: Settings) -> None:
    approval_id = await ask(client, auth)
    other_id = await ask(client, auth, amount=999)
    link = signed(settings, approval_id, "deny")
    sig = dict(urllib.parse.parse_qsl(link.partition("?")[2]))["sig"]
    flipped = ("0" if sig[0] != "0" else "1") + sig[1:]
    tampered = [
        with_query(link, action="approve"),  # same signature, other action
        with_query(link, exp=str(int(time.time()) + 99999)),  # extended expiry
        with_query(link, sig=flipped),
        link.replace(approval_id, other_id),  # another approval
    ]
    for bad in tampered:
        for method in ("GET", "POST"):
            resp = await client.request(method, bad)
            assert resp.status == 403, (method, bad)
            assert (await resp.json())["code"] == "bad_signature"
    # a link cut short or garbled is a bad request naming the broken part
    malformed = {"sig": link.partition("&sig=")[0], "exp": with_query(link, exp="soon"),
                 "action": with_query(link, action="maybe")}
    for part, bad in malformed.items():
        for method in ("GET", "POST"):
            resp = await client.request(method, bad)
            body = await resp.json()
            assert resp.status == 400 and body["code"] == "invalid_parameter", (method, bad)
            assert f"'{part}'" in body["error"]
    # a link signed with another key is just as invalid
    other = approval_settings(settings.home.parent / "elsewhere")
    resp = await client.post(signed(other, approval_id))
    assert resp.status == 403
    for one in (approval_id, other_id):
        view = await (await client.get(f"/v1/approvals/{one}", headers=auth)).json()
        assert view["status"] == "pending"


async def test_expired_and_stale_links_are_refused(client: Any, auth: dict[str, str],
                                                   settings: Settings) -> None:
    approval_id = await ask(client, auth)
    expired = signed(settings, approval_id, exp=int(time.time()) - 1)
    for method in ("GET", "POST"):
        resp = await client.request(method, expired)
        assert resp.status == 410 and (await resp.json())["code"] == "link_expired"
    # a valid link for an approval decided elsewhere cannot decide it again
    live = signed(settings, approval_id, "deny")
    resp = await client.post(f"/v1/approvals/{approval_id}/resolve", headers=auth,
                             json={"approved": True, "resolved_by": "alice"})
    assert resp.status == 200
    resp = await client.post(live)
    assert resp.status == 410
    view = await (await client.get(f"/v1/approvals/{approval_id}", headers=auth)).json()
    assert view["status"] == "approved"


async def test_no_request_creates_the_link_key(client: Any, auth: dict[str, str],
                                               settings: Settings) -> None:
    key_file = settings.home / KEY_FILE
    assert key_file.exists()  # made at start, before any request
    approval_id = await ask(client, auth)
    key_file.unlink()
    bogus = f"/v1/approvals/{approval_id}/link?action=approve&exp=9999999999&sig={'0' * 64}"
    for method in ("GET", "POST"):
        resp = await client.request(method, bogus)  # no credential, bad signature
        assert resp.status == 503
        assert (await resp.json())["code"] == "no_link_key"
    assert not key_file.exists()
    view = await (await client.get(f"/v1/approvals/{approval_id}", headers=auth)).json()
    assert view["status"] == "pending"
