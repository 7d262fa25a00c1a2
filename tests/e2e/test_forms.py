"""Malformed and oversized form posts to the portal: refused before any
password or code is looked at."""

from urllib.parse import quote

import pytest

from harness import SIGNIN, VERIFY, Page, set_cookies, snippet


def encode(pairs):
    return "&".join("%s=%s" % (k, quote(v, safe="")) for k, v in pairs)


def signin_state(site, user):
    """A browser on the sign-in page: (browser, fields of its form)."""
    b = site.browser()
    r = b.follow(b.get("/app/"))
    fields = dict(Page(r).form(SIGNIN).fields,
                  username=user.name, password=user.password)
    return b, fields


def verify_state(site, user):
    """A browser on the code page, password given: (browser, fields)."""
    b = site.browser()
    r = b.follow(b.get("/app/"))
    r = b.follow(b.submit_password(r, user.name, user.password))
    assert r.status_code == 200, snippet(r)
    fields = dict(Page(r).form(VERIFY).fields, code=user.code(),
                  method="totp")
    return b, fields


STATES = {SIGNIN: signin_state, VERIFY: verify_state}


def post_raw(browser, path, body):
    return browser.http.post(
        browser.url(path), data=body, allow_redirects=False, timeout=15,
        headers={"Content-Type": "application/x-www-form-urlencoded"})


def malformed(fields, how):
    pairs = list(fields.items())
    if how == "duplicate field":
        first = pairs[0]
        return encode(pairs + [first]).encode()
    if how == "bad %-escape":
        return (encode(pairs) + "&extra=%zz").encode()
    if how == "truncated %-escape":
        return (encode(pairs) + "&extra=ab%4").encode()
    if how == "%00":
        return (encode(pairs) + "&extra=a%00b").encode()
    if how == "raw NUL":
        return encode(pairs).encode() + b"&extra=a\x00b"
    raise ValueError(how)


@pytest.mark.parametrize("path", [SIGNIN, VERIFY])
@pytest.mark.parametrize("how", ["duplicate field", "bad %-escape",
                                 "truncated %-escape", "%00", "raw NUL"])
def test_malformed_body_is_400(site, pool, path, how):
    user = pool.take()
    b, fields = STATES[path](site, user)
    r = post_raw(b, path, malformed(fields, how))
    assert r.status_code == 400, snippet(r)
    assert "twostep_session" not in set_cookies(r)
    # Nothing was spent: the same form, well-formed, still goes through.
    r = post_raw(b, path, encode(fields.items()).encode())
    assert r.status_code == 303, snippet(r)


@pytest.mark.parametrize("path", [SIGNIN, VERIFY])
def test_oversized_body_is_413(site, pool, path):
    user = pool.take()
    b, fields = STATES[path](site, user)
    body = encode(fields.items()) + "&" + "&".join(
        "pad%d=%s" % (i, "x" * 1000) for i in range(9))
    assert len(body) > 8192
    r = post_raw(b, path, body.encode())
    assert r.status_code == 413, snippet(r)
    assert "twostep_session" not in set_cookies(r)


@pytest.mark.parametrize("path", [SIGNIN, VERIFY])
def test_empty_body_is_refused_as_such(site, pool, path):
    # "Content-Length: 0" is a form without fields: no token, so the
    # "expired" page (403), not "413 Request Entity Too Large".
    user = pool.take()
    b, _ = STATES[path](site, user)
    r = post_raw(b, path, b"")
    assert r.request.headers.get("Content-Length") == "0"
    assert r.status_code == 403, snippet(r)
    assert "twostep_session" not in set_cookies(r)
