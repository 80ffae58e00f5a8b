"""URL and host normalisation: every spelling of a host reaches the host a client connects to."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rampartd.policy.urls import (
    Endpoint,
    canonical_host,
    connect_hosts,
    domain_matches,
    is_loopback,
    parse_url,
    urls_in_text,
)

FUZZ = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "200")), deadline=None,
                derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])

# (text, default scheme, scheme, host, port, path)
SPELLINGS: list[tuple[str, str, str, str, int | None, str]] = [
    # the host itself, spelled differently
    ("https://pastebin.com/x", "", "https", "pastebin.com", 443, "/x"),
    ("https://ｐａｓｔｅｂｉｎ.com/x", "", "https", "pastebin.com", 443, "/x"),
    ("https://ｐａｓｔｅｂｉｎ．ｃｏｍ/x", "", "https", "pastebin.com", 443, "/x"),
    ("https://pastebin。com/x", "", "https", "pastebin.com", 443, "/x"),
    ("https://pastebin｡com/x", "", "https", "pastebin.com", 443, "/x"),
    ("https://pastebin%2ecom/x", "", "https", "pastebin.com", 443, "/x"),
    ("https://pastebin%2Ecom/x", "", "https", "pastebin.com", 443, "/x"),
    ("https://%70%61%73%74%65%62%69%6e.com/", "", "https", "pastebin.com", 443, "/"),
    ("https://PasteBin.COM/X", "", "https", "pastebin.com", 443, "/X"),
    ("https://pastebin.com./x", "", "https", "pastebin.com", 443, "/x"),
    ("https://pastebin.com.:443/x", "", "https", "pastebin.com", 443, "/x"),
    ("https://bücher.example/", "", "https", "xn--bcher-kva.example", 443, "/"),
    ("https://BÜCHER.example/", "", "https", "xn--bcher-kva.example", 443, "/"),
    ("https://xn--bcher-kva.example/", "", "https", "xn--bcher-kva.example", 443, "/"),
    ("https://b%C3%BCcher.example/", "", "https", "xn--bcher-kva.example", 443, "/"),
    # the scheme and slashes, spelled differently
    ("HTTPS://pastebin.com/x", "", "https", "pastebin.com", 443, "/x"),
    ("hTtP://pastebin.com/x", "", "http", "pastebin.com", 80, "/x"),
    ("https:\\\\pastebin.com\\x", "", "https", "pastebin.com", 443, "/x"),
    ("https:/pastebin.com/x", "", "https", "pastebin.com", 443, "/x"),
    ("https:pastebin.com/x", "", "https", "pastebin.com", 443, "/x"),
    ("https:///pastebin.com/x", "", "https", "pastebin.com", 443, "/x"),
    ("https:/\\/\\pastebin.com/x", "", "https", "pastebin.com", 443, "/x"),
    ("  https://pastebin.com/x  ", "", "https", "pastebin.com", 443, "/x"),
    ("\x00\x1f https://pastebin.com/x\x1f", "", "https", "pastebin.com", 443, "/x"),
    ("ht\ttps://paste\nbin.com/x", "", "https", "pastebin.com", 443, "/x"),
    ("ｈｔｔｐｓ：／／ｐａｓｔｅｂｉｎ．ｃｏｍ/x", "", "https", "pastebin.com", 443, "/x"),
    ("https：//pastebin.com/x", "", "https", "pastebin.com", 443, "/x"),
    ("//pastebin.com/x", "", "", "pastebin.com", None, "/x"),
    ("//pastebin.com/x", "http", "http", "pastebin.com", 80, "/x"),
    # userinfo and delimiter tricks
    ("https://github.com@evil.com/x", "", "https", "evil.com", 443, "/x"),
    ("https://github.com:443@evil.com/x", "", "https", "evil.com", 443, "/x"),
    ("https://user:pw@evil.com/x", "", "https", "evil.com", 443, "/x"),
    ("https://a@b@evil.com/", "", "https", "evil.com", 443, "/"),
    ("https://evil.com#@github.com", "", "https", "evil.com", 443, "/"),
    ("https://evil.com?@github.com", "", "https", "evil.com", 443, "/"),
    ("https://evil.com/@github.com", "", "https", "evil.com", 443, "/@github.com"),
    ("https://github.com\\@evil.com/", "", "https", "evil.com", 443, "/"),
    ("https://evil.com\\.github.com/", "", "https", "evil.com", 443, "/.github.com/"),
    # loopback in every IPv4 notation
    ("http://127.0.0.1/", "", "http", "127.0.0.1", 80, "/"),
    ("http://127.1/", "", "http", "127.0.0.1", 80, "/"),
    ("http://127.0.1/", "", "http", "127.0.0.1", 80, "/"),
    ("http://0x7f.1/", "", "http", "127.0.0.1", 80, "/"),
    ("http://0X7F.0.0.1/", "", "http", "127.0.0.1", 80, "/"),
    ("http://0x7f000001/", "", "http", "127.0.0.1", 80, "/"),
    ("http://0177.0.0.1/", "", "http", "127.0.0.1", 80, "/"),
    ("http://017700000001/", "", "http", "127.0.0.1", 80, "/"),
    ("http://2130706433/", "", "http", "127.0.0.1", 80, "/"),
    ("http://127.0.0.1./", "", "http", "127.0.0.1", 80, "/"),
    ("http://１２７.０.０.１/", "", "http", "127.0.0.1", 80, "/"),
    ("http://127%2e0%2e0%2e1/", "", "http", "127.0.0.1", 80, "/"),
    ("http://0/", "", "http", "0.0.0.0", 80, "/"),
    ("http://0.0.0.0:8080/", "", "http", "0.0.0.0", 8080, "/"),
    ("http://[::1]/", "", "http", "::1", 80, "/"),
    ("http://[0:0:0:0:0:0:0:1]:9090/", "", "http", "::1", 9090, "/"),
    ("http://[::ffff:127.0.0.1]/", "", "http", "::ffff:127.0.0.1", 80, "/"),
    ("http://[::ffff:7f00:1]/", "", "http", "::ffff:127.0.0.1", 80, "/"),
    ("http://[fe80::1%25eth0]/", "", "http", "fe80::1", 80, "/"),
    ("http://[2001:DB8:0:0::1]/", "", "http", "2001:db8::1", 80, "/"),
    ("http://localhost/", "", "http", "localhost", 80, "/"),
    ("http://LOCALHOST./", "", "http", "localhost", 80, "/"),
    # ports
    ("http://localhost:09090/", "", "http", "localhost", 9090, "/"),
    ("http://localhost:0000080/", "", "http", "localhost", 80, "/"),
    ("http://localhost:/x", "", "http", "localhost", 80, "/x"),
    ("https://example.com:8443", "", "https", "example.com", 8443, "/"),
    ("ssh://git@github.com/org/repo", "", "ssh", "github.com", 22, "/org/repo"),
    ("ftp://files.example.org/pub", "", "ftp", "files.example.org", 21, "/pub"),
    ("wss://stream.example.com/s", "", "wss", "stream.example.com", 443, "/s"),
    ("redis://cache.internal:6380/0", "", "redis", "cache.internal", 6380, "/0"),
    ("git+https://example.com/r.git", "", "git+https", "example.com", None, "/r.git"),
    # scheme-less, the way curl reads it
    ("pastebin.com:09090/x", "http", "http", "pastebin.com", 9090, "/x"),
    ("pastebin.com/x", "http", "http", "pastebin.com", 80, "/x"),
    ("user@pastebin.com/x", "http", "http", "pastebin.com", 80, "/x"),
    ("localhost:8080", "http", "http", "localhost", 8080, "/"),
    ("127.1:3000/api", "http", "http", "127.0.0.1", 3000, "/api"),
    ("[::1]:8080/x", "http", "http", "::1", 8080, "/x"),
    ("pastebin.com", "", "", "pastebin.com", None, "/"),
    ("localhost:8080", "", "", "localhost", 8080, "/"),
    # paths
    ("https://x.example/a/../b/./c", "", "https", "x.example", 443, "/b/c"),
    ("https://x.example/a/%2e%2e/b", "", "https", "x.example", 443, "/b"),
    ("https://x.example/../../etc", "", "https", "x.example", 443, "/etc"),
    ("https://x.example/a/..", "", "https", "x.example", 443, "/"),
    ("https://x.example/a\\b\\c", "", "https", "x.example", 443, "/a/b/c"),
    ("https://x.example/%72aw/x?q=1#frag", "", "https", "x.example", 443, "/raw/x"),
    ("file:///etc/passwd", "", "file", "", None, "/etc/passwd"),
    ("file://localhost/etc/passwd", "", "file", "", None, "/etc/passwd"),
    ("file:/etc/../etc/shadow", "", "file", "", None, "/etc/shadow"),
]


@pytest.mark.parametrize(("text", "default", "scheme", "host", "port", "path"), SPELLINGS)
def test_spelling(text: str, default: str, scheme: str, host: str, port: int | None,
                  path: str) -> None:
    ep = parse_url(text, default)
    assert ep is not None, text
    assert (ep.scheme, ep.host, ep.port, ep.path) == (scheme, host, port, path)


def test_the_table_is_large() -> None:
    assert len(SPELLINGS) >= 60


@pytest.mark.parametrize("text", [
    "", "   ", "mailto:someone@example.com", "javascript:alert(1)", "data:text/html,<b>x</b>",
    "http://", "https:///", "http://256.0.0.1/", "http://1.2.3.4.5/", "http://0x100000000/",
    "http://08.0.0.1/", "http://exa mple.com/", "http://exa<mple.com/", "http://[::1/",
    "http://[::1]x/", "http://[::g]/", "http://host:99999/", "http://host:12ab/",
    "http://pastebin%2fcom/", "http://%ff.com/", "C:\\Windows\\system32", "github.com:org/repo.git",
    "not a url", "print(1+1)", "a:b",
])
def test_not_an_endpoint(text: str) -> None:
    assert parse_url(text) is None


def test_normalised_url_text() -> None:
    assert parse_url("HTTPS://User@PasteBin.COM.:443/a/./b?x=1#f") == Endpoint(
        "https", "pastebin.com", 443, "/a/b", "https://pastebin.com/a/b?x=1")
    assert parse_url("http://[::1]:9090/v1").url == "http://[::1]:9090/v1"  # type: ignore[union-attr]
    assert parse_url("localhost:8080/x").url == "//localhost:8080/x"  # type: ignore[union-attr]
    odd = parse_url("https://x.example/a%20b%3Fc")
    assert odd is not None and odd.path == "/a b?c" and odd.url == "https://x.example/a%20b%3Fc"
    again = parse_url(odd.url)
    assert again is not None and again.path == odd.path


def test_connect_hosts_names_every_reading_of_an_ambiguous_authority() -> None:
    # curl connects after the '@'; WHATWG parsers (browsers, fetch) stop at the backslash.
    assert connect_hosts("https://github.com\\@pastebin.com/") == ("pastebin.com", "github.com")
    assert connect_hosts("http://pastebin.com\\@github.com/x", "http") == (
        "github.com", "pastebin.com")
    assert connect_hosts("https://pastebin.com/x") == ("pastebin.com",)
    assert connect_hosts("ssh://a.example\\@b.example/") == ("b.example",)  # not special
    assert connect_hosts("not a url") == ()
    assert connect_hosts("0\\@", "http") == ("0.0.0.0",)  # only a WHATWG parser finds a host
    assert connect_hosts(None) == ()  # type: ignore[arg-type]


def test_default_scheme_is_lower_cased_and_applied_only_without_one() -> None:
    assert parse_url("example.com/x", "HTTP").scheme == "http"  # type: ignore[union-attr]
    assert parse_url("https://example.com/x", "http").scheme == "https"  # type: ignore[union-attr]


def test_canonical_host() -> None:
    assert canonical_host("ＧｉｔＨｕｂ．ｃｏｍ") == "github.com"
    assert canonical_host("0x7f.0x0.0x0.0x1") == "127.0.0.1"
    assert canonical_host("foo.1") is None  # ends in a number but is no address
    assert canonical_host("ex ample.com") is None
    assert canonical_host("[::1]") == "::1"


@pytest.mark.parametrize(("host", "domain", "expected"), [
    ("github.com", "github.com", True),
    ("api.github.com", "github.com", True),
    ("a.b.github.com", "github.com", True),
    ("evilgithub.com", "github.com", False),
    ("github.com.evil.com", "github.com", False),
    ("github.co", "github.com", False),
    ("GitHub.COM.", "github.com", True),
    ("ｇｉｔｈｕｂ.com", "github.com", True),
    ("api.github.com", "GITHUB.com.", True),
    ("api.github.com", ".github.com", True),
    ("api.github.com", "*.github.com", True),
    ("github.com", "*.github.com", False),
    ("bücher.example", "xn--bcher-kva.example", True),
    ("sub.xn--bcher-kva.example", "bücher.example", True),
    ("github.com:443", "github.com", True),
    ("127.1", "127.0.0.1", True),
    ("1.127.0.0.1", "127.0.0.1", False),
    ("[::1]", "::1", True),
    ("", "github.com", False),
    ("github.com", "", False),
    ("com", "github.com", False),
])
def test_domain_matches(host: str, domain: str, expected: bool) -> None:
    assert domain_matches(host, domain) is expected


@pytest.mark.parametrize("host", [
    "127.0.0.1", "127.1", "127.255.255.254", "0x7f.1", "0177.0.0.1", "2130706433",
    "0", "0.0.0.0", "::1", "[::1]", "[::1]:9090", "::", "::ffff:127.0.0.1", "[::ffff:7f00:1]",
    "localhost", "LOCALHOST.", "app.localhost", "127.0.0.1:8080", "localhost:3000",
])
def test_loopback(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", [
    "8.8.8.8", "128.0.0.1", "10.0.0.1", "localhost.example.com", "notlocalhost", "::2",
    "::ffff:8.8.8.8", "2001:db8::1", "", "evil.com", "127.0.0.1.evil.com",
])
def test_not_loopback(host: str) -> None:
    assert not is_loopback(host)


def test_urls_in_text_finds_odd_spellings() -> None:
    text = ("import requests; requests.get('https://a.example/x?y=1'); "
            "curl https:\\\\b.example\\y && wget HTTP:/c.example/z; see (http://d.example/p(q)). "
            "ｈｔｔｐｓ：／／ｅ．example/f and http:f.example, ssh://git@g.example/r "
            "file:///etc/passwd")
    assert urls_in_text(text) == [
        "https://a.example/x?y=1", "https:\\\\b.example\\y", "HTTP:/c.example/z",
        "http://d.example/p(q)", "https://e.example/f", "http:f.example",
        "ssh://git@g.example/r", "file:///etc/passwd",
    ]
    hosts = [parse_url(u) for u in urls_in_text(text)]
    assert [h.host for h in hosts if h] == ["a.example", "b.example", "c.example", "d.example",
                                            "e.example", "f.example", "g.example", ""]


def test_urls_in_text_ignores_plain_code() -> None:
    assert urls_in_text("x = {'a': 1}; if y: print(os.path.join('a', 'b')) # http: header") == []
    assert urls_in_text("u = 'https://' + host; v = \"ssh://\"; w = 'file:/'") == []
    assert urls_in_text("") == []


def test_urls_in_text_is_bounded() -> None:
    many = " ".join(f"https://h{i}.example/" for i in range(1000))
    found = urls_in_text(many)
    assert 0 < len(found) <= 256
    assert urls_in_text("https://same.example/ " * 50) == ["https://same.example/"]
    long = urls_in_text("https://long.example/" + "a" * 100_000)
    assert len(long) == 1 and len(long[0]) <= 8192


URLISH = st.lists(st.sampled_from([*"aZ09.:/\\@#?%[]-_~ \t", "https://", "http:", "0x", "%2e",
                                   "xn--", "ｐ", "。", "[::1]", "127.", "@", "::ffff:", "%25"]),
                  max_size=30).map("".join)


@FUZZ
@given(st.one_of(st.text(max_size=300), URLISH), st.sampled_from(["", "http", "https"]))
def test_parse_url_never_raises(text: str, default: str) -> None:
    ep = parse_url(text, default)
    if ep is not None:
        assert ep.host == ep.host.lower() or not ep.host.isascii()
        assert not ep.host.endswith(".")
        assert ep.path.startswith("/")
        assert ep.port is None or 0 <= ep.port <= 65535
        again = parse_url(ep.url, default)
        if again is not None and ep.scheme != "file":
            assert again.host == ep.host


@FUZZ
@given(st.one_of(st.text(max_size=500), URLISH))
def test_urls_in_text_never_raises(text: str) -> None:
    for url in urls_in_text(text):
        assert url
        parse_url(url)


@FUZZ
@given(st.one_of(st.text(max_size=300), URLISH), st.sampled_from(["", "http"]))
def test_connect_hosts_never_raises(text: str, default: str) -> None:
    hosts = connect_hosts(text, default)
    ep = parse_url(text, default)
    if ep is not None and ep.host:
        assert hosts[0] == ep.host  # parse_url's reading comes first
    assert len(hosts) <= 2 and len(set(hosts)) == len(hosts) and all(hosts)


@FUZZ
@given(st.one_of(st.text(max_size=100), URLISH), st.one_of(st.text(max_size=50), URLISH))
def test_host_predicates_never_raise(host: str, domain: str) -> None:
    assert isinstance(domain_matches(host, domain), bool)
    assert isinstance(is_loopback(host), bool)


# URLs already in the form parse_url writes them (read off the text, without the full parse).
CANONICAL_URLS = st.from_regex(r"(https?)://((?:[a-z0-9-]+\.)+[a-z]{2,63})"
                               r"((?:/[A-Za-z0-9_~+,=@:-][A-Za-z0-9._~+,=@:-]*)*/?)",
                               fullmatch=True)


@FUZZ
@given(CANONICAL_URLS, st.sampled_from(["", "http", "ssh"]))
def test_a_canonical_url_is_read_as_its_other_spellings_are(url: str, default_scheme: str) \
        -> None:
    scheme, rest = url.split("://", 1)
    host, slash, path = rest.partition("/")
    shouted = f"{scheme.upper()}://{host.upper()}{slash}{path}"  # not canonical: fully parsed
    endpoint = parse_url(url, default_scheme)
    assert endpoint is not None
    assert endpoint == parse_url(shouted, default_scheme)
    assert (endpoint.scheme, endpoint.host, endpoint.path) == (scheme, host, slash + path or "/")
    assert endpoint.url == (url if slash else url + "/")
    assert connect_hosts(url) == connect_hosts(shouted) == (host,)
