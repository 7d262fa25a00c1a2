"""The session cookie: only an intact, unexpired one signed by one of the
server's keys opens a protected page."""

import time

import pytest
import requests

from harness import (LOGOUT, SIGNIN, Page, cookie_cleared, location,
                     set_cookies, snippet)

B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def get_with_session(site, value, server="main", path="/app/s"):
    """GET `path` presenting exactly this twostep_session value, nothing
    else (no cookie jar: its expiry handling must not hide the server's)."""
    return requests.get(site.url(server) + path, allow_redirects=False,
                        timeout=15,
                        headers={"Cookie": "twostep_session=" + value})


def assert_sent_to_signin(r):
    assert r.status_code == 302, snippet(r)
    assert location(r).path == SIGNIN, r.headers["Location"]


def assert_opens(r, user):
    assert r.status_code == 200, snippet(r)
    assert r.json()["headers"]["X-Remote-User"] == user.name


def signed_in_session(site, user, server="main"):
    b = site.browser(server)
    b.sign_in("/app/", user)
    value = b.cookie("twostep_session")
    assert value
    return b, value


def mutate(value, pos):
    while value[pos] not in B64URL:
        pos += 1
    c = value[pos]
    repl = B64URL[(B64URL.index(c) + 17) % len(B64URL)]
    return value[:pos] + repl + value[pos + 1:]


def tampered_variants(value):
    n = len(value)
    return {
        "byte at 1/4 changed": mutate(value, n // 4),
        "byte at 1/2 changed": mutate(value, n // 2),
        "byte at 3/4 changed": mutate(value, 3 * n // 4),
        "truncated": value[:-6],
        "extended": value + "AAAA",
        "empty": "",
        "garbage": "not-a-session",
        "parts swapped": ".".join(reversed(value.split("."))),
    }


def test_tampered_session_cookie_never_opens(site, user):
    _, value = signed_in_session(site, user)
    assert_opens(get_with_session(site, value, path="/app/s?format=json"),
                 user)
    for what, bad in tampered_variants(value).items():
        assert bad != value
        r = get_with_session(site, bad)
        assert r.status_code == 302, "%s: %s" % (what, snippet(r))
        assert location(r).path == SIGNIN


def test_session_signed_by_unknown_key_never_opens(site, user):
    _, value = signed_in_session(site, user, server="other")
    assert_opens(get_with_session(site, value, server="other",
                                  path="/app/s?format=json"), user)
    assert_sent_to_signin(get_with_session(site, value, server="main"))


def test_every_listed_key_verifies_only_first_signs(site, pool):
    # Signed with the old key (that server has only it): main, whose second
    # twostep_cookie_key is the old one, accepts it.
    old_user = pool.take()
    _, old_value = signed_in_session(site, old_user, server="oldkey")
    assert_opens(get_with_session(site, old_value, server="main",
                                  path="/app/s?format=json"), old_user)
    # Main signs with its first key (new), which the old-key server lacks.
    new_user = pool.take()
    _, new_value = signed_in_session(site, new_user, server="main")
    assert_sent_to_signin(get_with_session(site, new_value,
                                           server="oldkey"))


def test_expired_session_never_opens(site, user):
    # twostep_session_ttl 2s on that server.
    b, value = signed_in_session(site, user, server="short")
    seen = b.app_view("/app/ttl")
    assert seen["headers"]["X-Remote-User"] == user.name
    auth_time = int(seen["headers"]["X-Twostep-Auth-Time"])
    # Past auth_time + 2 s whatever the rounding: the cookie has expired.
    time.sleep(max(0.0, auth_time + 3.2 - time.time()))
    assert_sent_to_signin(get_with_session(site, value, server="short"))
    assert_sent_to_signin(b.get("/app/ttl"))


def test_pending_cookie_is_not_a_session(site, user):
    b = site.browser()
    r = b.follow(b.get("/app/"))
    before_password = b.cookie("twostep_pending")
    r = b.submit_password(r, user.name, user.password)
    assert r.status_code == 303, snippet(r)
    after_password = b.cookie("twostep_pending")
    assert before_password and after_password
    for value in (before_password, after_password):
        assert_sent_to_signin(get_with_session(site, value))


def test_logout_clears_session(site, user):
    b, _ = signed_in_session(site, user)
    assert b.get("/app/").status_code == 200
    # The sign-out form (GET shows it, with its anti-forgery token).
    r = b.get(LOGOUT)
    assert r.status_code == 200, snippet(r)
    form = Page(r).form(LOGOUT)
    assert form.method == "post"
    r = b.post(LOGOUT, dict(form.fields))
    assert r.status_code in (200, 303), snippet(r)
    cookies = set_cookies(r)
    assert "twostep_session" in cookies, r.headers
    assert cookie_cleared(*cookies["twostep_session"]), \
        cookies["twostep_session"]
    assert b.cookie("twostep_session") is None
    assert_sent_to_signin(b.get("/app/"))


@pytest.mark.parametrize("fields", [{"form_token": "forged-token"},
                                    {"confirm": "1"}],
                         ids=["forged token", "no token"])
def test_logout_needs_form_token(site, user, fields):
    # A sign-out forged by another site (its form has no valid token).
    b, _ = signed_in_session(site, user)
    r = b.post(LOGOUT, fields)
    assert r.status_code == 403, snippet(r)
    assert "twostep_session" not in set_cookies(r)
    assert b.get("/app/").status_code == 200
