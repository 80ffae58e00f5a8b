"""A small synchronous client for the CLI commands that talk to a running daemon."""

from __future__ import annotations

import http.client
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

import click

from rampartd.config import Settings
from rampartd.errors import RampartdError, Unavailable
from rampartd.home import check_token, read_token
from rampartd.instance import check_url, daemon_url, running_url

URL_ENV = "RAMPARTD_URL"


class DaemonError(RampartdError):
    """The daemon answered with an error; message and code are the daemon's."""

    def __init__(self, status: int, message: str, code: str, *, body: Any = None) -> None:
        super().__init__(message, code=code)
        self.status = status
        self.body = body  # the decoded answer when it was not an error object


def find_url(settings: Settings, url: str | None = None) -> str:
    """Where the daemon is: url (--url), else $RAMPARTD_URL, else the address the home's
    running daemon published, else the configured host and port."""
    if url is not None:
        return check_url(url, "--url")
    if os.environ.get(URL_ENV):
        return check_url(os.environ[URL_ENV], URL_ENV)
    return running_url(settings.home) or daemon_url(settings.host, settings.port)


class DaemonClient:
    """Calls the daemon (see find_url for where) with the admin token."""

    def __init__(self, settings: Settings, *, token: str | None = None, timeout: float = 70.0,
                 url: str | None = None):
        self.base_url = find_url(settings, url)
        self._token = check_token(token.strip(), "RAMPARTD_TOKEN") if token is not None \
            else read_token(settings.token_path)
        self.timeout = timeout

    def url(self, path: str, params: Mapping[str, Any] | None = None) -> str:
        """Absolute URL for a path with optional query parameters (None values dropped)."""
        query = {k: v for k, v in (params or {}).items() if v is not None}
        return self.base_url + path + (("?" + urllib.parse.urlencode(query)) if query else "")

    def headers(self) -> dict[str, str]:
        """Headers carrying the credential."""
        return {"Authorization": f"Bearer {self._token}", "Accept": "application/json"}

    def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                body: Any = None) -> Any:
        """Send one request; returns decoded JSON (None for 204) or raises DaemonError."""
        try:
            with self.open(method, path, params=params, body=body) as resp:
                raw = resp.read()
            return json.loads(raw) if raw else None
        except (http.client.HTTPException, ValueError) as exc:  # cut off, or not JSON
            raise Unavailable(f"no valid answer from {self.base_url} "
                              f"({exc.__class__.__name__})") from None

    def open(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
             body: Any = None, headers: Mapping[str, str] | None = None,
             timeout: float | None = None) -> Any:
        """Send one request and return the open response (for streaming bodies)."""
        data = None
        all_headers = {**self.headers(), **(headers or {})}
        if body is not None:
            data = json.dumps(body).encode()
            all_headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.url(path, params), data=data,  # noqa: S310
                                     method=method, headers=all_headers)
        try:
            # The URL is always http://<host>:<port> from settings, never user-supplied.
            return urllib.request.urlopen(  # noqa: S310
                req, timeout=self.timeout if timeout is None else timeout)
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                err = json.loads(raw)
            except ValueError:
                err = None
            if isinstance(err, dict) and "error" in err and "code" in err:
                raise DaemonError(exc.code, str(err["error"]), str(err["code"])) from None
            # Not the error shape: an answer such as a tool call's 403 decision.
            raise DaemonError(exc.code, f"HTTP {exc.code}", "http_error", body=err) from None
        except OSError as exc:
            raise Unavailable(f"cannot reach rampartd at {self.base_url}: "
                              f"{getattr(exc, 'reason', exc)}") from None
        except http.client.HTTPException as exc:  # not an HTTP server, or a cut-off answer
            raise Unavailable(f"no valid answer from {self.base_url} "
                              f"({exc.__class__.__name__})") from None


def _set_url(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None:
        try:
            os.environ[URL_ENV] = check_url(value, "--url")
        except RampartdError as exc:
            raise click.BadParameter(exc.message, ctx=ctx, param=param) from None


def url_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """`--url URL`: reach the daemon there instead of the address its home publishes."""
    return click.option("--url", metavar="URL", expose_value=False, callback=_set_url,
                        is_eager=True,
                        help="daemon base URL (default: $RAMPARTD_URL, else the address the "
                             "running daemon wrote into its home, else host and port "
                             "settings)")(func)
