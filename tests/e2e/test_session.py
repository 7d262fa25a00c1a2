"""The session cookie: only an intact, unexpired one signed by one of the
server's keys opens a protected page."""

import time

import pytest
import requests

from harness import (LOGOUT, SIGNIN, Browser, Page, cookie_cleared,
                     free_port, location, on_both_workers, proxy_to,
                     raw_request, set_cookies, snippet, write_key,
                     write_users)

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
    # Signed with the old key (that server has only it, and the same
    # session audience as main): main, whose second twostep_cookie_key is
    # the old one, accepts it.
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


def test_only_the_exact_cookie_name_once_opens(site, user):
    """OWASP ASVS 3.4.4 and fail closed: the session is read from the
    Cookie header by its exact name (nginx's $cookie_* ignore case, so a
    "TWOSTEP_SESSION" planted first would be taken for it), and a request
    with two session cookies, whichever is valid, gets no session."""
    _, value = signed_in_session(site, user)
    port = site.ports["main"]

    def status(*cookie_headers):
        r = raw_request(port, "/app/s", headers=[("Cookie", c)
                                                 for c in cookie_headers])
        return r.status

    assert status("a=1; twostep_session=%s; b=2" % value) == 200
    for name in ("TWOSTEP_SESSION", "Twostep_Session", "twostep_Session",
                 "__Host-twostep_session", " twostep_session2"):
        assert status("%s=%s" % (name, value)) == 302, name
    for pair in (("twostep_session=%s; twostep_session=%s" % (value, value),),
                 ("twostep_session=x.y.z; twostep_session=%s" % value,),
                 ("twostep_session=%s; twostep_session=x.y.z" % value,),
                 ("twostep_session=%s" % value, "twostep_session=x.y.z"),
                 ("twostep_session=%s" % value,
                  "twostep_session=%s" % value)):
        assert status(*pair) == 302, pair


def test_a_session_opens_only_its_own_server(nginx_factory, workdir, app,
                                             pool):
    """A session is bound to its server (its server_name, else - none or
    "_" - its listen address, or twostep_session_audience): with one key
    for the whole http block, a cookie from A opens neither B, nor E (also
    "_"), nor a server with a shorter twostep_session_ttl, while two servers
    naming the same audience share sessions."""
    user = pool.take()
    d = workdir / "audience"
    d.mkdir()
    d.chmod(0o755)
    ports = {n: free_port()
             for n in ("a", "b", "c", "d", "e")}
    servers = {"a": "server_name _;", "b": "twostep_session_ttl 5s;",
               "c": "twostep_session_audience shared;",
               "d": "twostep_session_audience shared;",
               "e": "server_name _;"}
    body = """
    twostep_users {users};
    twostep_cookie_key {key};
""".format(users=write_users(d / "users.json", [user]),
           key=write_key(d / "key"))
    for name, extra in servers.items():
        body += """
    server {{
        listen 127.0.0.1:{port};
        {extra}
        location / {{
            twostep on;
            {proxy}
        }}
    }}
""".format(port=ports[name], extra=extra, proxy=proxy_to(app.port))
    nginx = nginx_factory("audience", body, list(ports.values()))

    def url(name):
        return nginx.url(ports[name])

    def get(name, value):
        return requests.get(url(name) + "/app/s?format=json",
                            allow_redirects=False, timeout=15,
                            headers={"Cookie": "twostep_session=" + value})

    a = Browser(url("a"))
    a.sign_in("/app/", user)
    from_a = a.cookie("twostep_session")
    assert_opens(get("a", from_a), user)
    assert_sent_to_signin(get("b", from_a))
    assert_sent_to_signin(get("c", from_a))
    # "_" (nginx's catch-all) names no host: known by its listen address.
    assert_sent_to_signin(get("e", from_a))

    c = Browser(url("c"))
    c.sign_in("/app/", user)
    from_c = c.cookie("twostep_session")
    assert_opens(get("d", from_c), user)
    assert_sent_to_signin(get("a", from_c))


def test_a_lower_session_ttl_applies_to_existing_sessions(guarded):
    """twostep_session_ttl is checked on every request against when the
    session began: lowered to 2s and reloaded, it ends sessions older than
    that on every worker (they were made under 12 h); new ones get 2 s."""
    site = guarded("ttl", users=2)
    old, new = site.users
    b = site.browser()
    b.sign_in("/app/", old)
    value = b.cookie("twostep_session")
    began = time.time()
    on_both_workers(lambda: site.get_with_session(value),
                    lambda r: assert_opens(r, old))
    time.sleep(max(0.0, began + 3.5 - time.time()))
    on_both_workers(lambda: site.get_with_session(value),
                    lambda r: assert_opens(r, old))

    site.server_extra = "twostep_session_ttl 2s;"
    site.reload(["a"])
    on_both_workers(lambda: site.get_with_session(value),
                    assert_sent_to_signin)
    b2 = site.browser()
    b2.sign_in("/app/", new)
    assert_opens(site.get_with_session(b2.cookie("twostep_session")), new)
