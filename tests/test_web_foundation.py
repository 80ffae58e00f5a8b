"""Auth, Host check, error shape and status routes through the real app."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from rampartd.config import Settings
from rampartd.home import rotate_token
from rampartd.web.app import create_app
from rampartd.web.keys import ROUTE_AUTH
from rampartd.web.scopes import RouteAuth


def assert_error_shape(body: Any, code: str | None = None) -> None:
    assert set(body) == {"error", "code"}, body
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["code"], str) and body["code"]
    if code is not None:
        assert body["code"] == code


async def test_healthz_is_public(client: Any) -> None:
    resp = await client.get("/healthz")
    assert resp.status == 200
    body = await resp.json()
    assert body["status"] == "ok"
    assert body["mode"] == "enforce"
    assert body["uptime_seconds"] >= 0
    assert body["version"]


async def test_status_needs_admin(client: Any, auth: dict[str, str]) -> None:
    resp = await client.get("/v1/status")
    assert resp.status == 401
    assert_error_shape(await resp.json(), "unauthorized")
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    resp = await client.get("/v1/status", headers={"Authorization": "Bearer wrong"})
    assert resp.status == 401
    assert_error_shape(await resp.json(), "unauthorized")
    resp = await client.get("/v1/status", headers={"Authorization": "Basic abc"})
    assert resp.status == 401
    resp = await client.get("/v1/status", headers=auth)
    assert resp.status == 200
    assert (await resp.json())["mode"] == "enforce"


async def test_query_token_refused_outside_stream_routes(client: Any, admin_token: str) -> None:
    resp = await client.get("/v1/status", params={"token": admin_token})
    assert resp.status == 401
    body = await resp.json()
    assert_error_shape(body, "unauthorized")
    assert admin_token not in body["error"]


async def test_foreign_host_header_refused(client: Any, auth: dict[str, str]) -> None:
    for host in ("evil.example.com", "evil.example.com:9090", "10.0.0.5:9090"):
        resp = await client.get("/healthz", headers={"Host": host})
        assert resp.status == 403, host
        assert_error_shape(await resp.json(), "bad_host")
    for host in ("localhost:9090", "127.0.0.1", "[::1]:9090", "127.0.0.2:80"):
        resp = await client.get("/v1/status", headers={**auth, "Host": host})
        assert resp.status == 200, host


async def test_rotation_takes_effect_without_restart(client: Any, settings: Settings,
                                                     auth: dict[str, str]) -> None:
    assert (await client.get("/v1/status", headers=auth)).status == 200
    rotate_token(settings.token_path)
    assert (await client.get("/v1/status", headers=auth)).status == 401
    new = settings.token_path.read_text().strip()
    resp = await client.get("/v1/status", headers={"Authorization": f"Bearer {new}"})
    assert resp.status == 200


async def test_every_error_path_has_one_shape(aiohttp_client: Any, settings: Settings,
                                              auth: dict[str, str]) -> None:
    app = create_app(settings)

    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("secret internal detail /etc/passwd")

    async def echo(request: web.Request) -> web.Response:
        from rampartd.web.parse import read_json

        return web.json_response(await read_json(request))

    app.router.add_get("/v1/_boom", boom)
    app.router.add_post("/v1/_echo", echo)
    app[ROUTE_AUTH][boom] = RouteAuth("admin")
    app[ROUTE_AUTH][echo] = RouteAuth("admin")
    client = await aiohttp_client(app)

    cases: list[tuple[str, str, dict[str, Any], int, str]] = [
        ("GET", "/v1/status", {}, 401, "unauthorized"),
        ("GET", "/nope", {"headers": auth}, 404, "not_found"),
        ("GET", "/v1/nope", {}, 404, "not_found"),
        ("DELETE", "/v1/status", {"headers": auth}, 405, "method_not_allowed"),
        ("POST", "/v1/_echo", {"headers": auth, "data": b"{not json"}, 400, "invalid_json"),
        ("POST", "/v1/_echo", {"headers": auth, "data": b"[1,2]"}, 400, "invalid_json"),
        ("POST", "/v1/_echo", {"headers": auth, "data": b"x" * (1024 * 1024 + 1)}, 413,
         "payload_too_large"),
        ("GET", "/v1/_boom", {"headers": auth}, 500, "internal"),
        ("GET", "/healthz", {"headers": {"Host": "attacker.test"}}, 403, "bad_host"),
    ]
    for method, path, kwargs, status, code in cases:
        resp = await client.request(method, path, **kwargs)
        assert resp.status == status, (method, path, resp.status)
        assert resp.content_type == "application/json"
        body = await resp.json()
        assert_error_shape(body, code)
        assert "Traceback" not in body["error"] and "passwd" not in body["error"]

    resp = await client.post("/v1/_echo", headers=auth, json={"ok": 1})
    assert resp.status == 200


async def test_method_not_allowed_names_the_allowed_methods(client: Any,
                                                           auth: dict[str, str]) -> None:
    cases = {("DELETE", "/v1/status"): "GET", ("PUT", "/v1/approvals"): "GET, POST",
             ("POST", "/v1/agents/6f1c0000-0000-4000-8000-000000000000"): "DELETE, GET, PATCH",
             ("GET", "/v1/tool/exec"): "POST"}
    for (method, path), allow in cases.items():
        for headers in (auth, {}):  # the route's methods are no secret: same before auth
            resp = await client.request(method, path, headers=headers)
            assert resp.status == 405, (method, path)
            assert resp.headers["Allow"] == allow, (method, path)
            assert_error_shape(await resp.json(), "method_not_allowed")


async def test_chunked_oversized_body_is_413(aiohttp_client: Any, settings: Settings,
                                             auth: dict[str, str]) -> None:
    app = create_app(settings)

    async def echo(request: web.Request) -> web.Response:
        from rampartd.web.parse import read_json

        return web.json_response(await read_json(request))

    app.router.add_post("/v1/_echo", echo)
    app[ROUTE_AUTH][echo] = RouteAuth("admin")
    client = await aiohttp_client(app)

    async def chunks() -> Any:
        for _ in range(20):
            yield b" " * 65536 * 2

    resp = await client.post("/v1/_echo", headers=auth, data=chunks())
    assert resp.status == 413
    assert_error_shape(await resp.json(), "payload_too_large")
