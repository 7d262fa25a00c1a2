"""Sign-out ends the session everywhere: a copy of the cookie kept by
someone else (another client, another worker) opens nothing afterwards. A
step-up re-verification (twostep_max_age) replaces the session, and the
replaced cookie stops working too."""

import json
import socket
import time

from harness import (LOGOUT, SIGNIN, Page, cookie_cleared, location,
                     on_both_workers, set_cookies, snippet)


def opens_as(user):
    def check(r):
        assert r.status_code == 200, snippet(r)
        assert r.json()["headers"]["X-Remote-User"] == user.name
    return check


def sent_to_signin(r):
    assert r.status_code == 302, snippet(r)
    assert location(r).path == SIGNIN, r.headers["Location"]


def test_signout_revokes_every_copy_on_every_worker(guarded):
    site = guarded("signout")
    user, other = site.users[0], site.users[1]
    b = site.browser()
    b.sign_in("/app/", user)
    value = b.cookie("twostep_session")
    b2 = site.browser()
    b2.sign_in("/app/", other)

    copy = lambda: site.get_with_session(value)   # noqa: E731
    on_both_workers(copy, opens_as(user))

    r = b.get(LOGOUT)
    assert r.status_code == 200, snippet(r)
    page = Page(r)
    assert page.heading == "Sign out"
    form = page.form(LOGOUT)
    assert form.method == "post"
    assert len(form.fields.get("form_token", "")) >= 16, form
    r = b.post(LOGOUT, dict(form.fields))
    assert r.status_code == 200, snippet(r)
    assert Page(r).heading == "You have signed out"
    cookies = set_cookies(r)
    assert "twostep_session" in cookies and \
        cookie_cleared(*cookies["twostep_session"]), r.headers
    assert b.cookie("twostep_session") is None

    # The copy, sent by another client to either worker: revoked.
    on_both_workers(copy, sent_to_signin)
    on_both_workers(lambda: site.get_with_session(value, "/fresh/x"),
                    sent_to_signin)
    # The sign-out page no longer knows it either.
    r = site.get_with_session(value, LOGOUT)
    assert r.status_code == 200 and Page(r).heading == "You have signed out"
    # Someone else's session is not affected.
    on_both_workers(lambda: site.get_with_session(
        b2.cookie("twostep_session")), opens_as(other))


def test_stepup_revokes_the_replaced_session(guarded):
    site = guarded("stepup")
    user = site.users[0]
    b = site.browser()
    b.sign_in("/app/", user)
    old = b.cookie("twostep_session")
    seen = b.app_view("/app/")
    auth_time = int(seen["headers"]["X-Twostep-Auth-Time"])

    # /fresh/ has twostep_max_age 2s: older than that whatever the rounding.
    time.sleep(max(0.0, auth_time + 3.2 - time.time()))
    r = b.get("/fresh/panel")
    sent_to_signin(r)
    r = b.follow(r)                         # session stands for the password
    assert r.status_code == 303, snippet(r)
    r = b.follow(r)
    assert Page(r).heading == "Enter code", snippet(r)
    r = b.submit_code(r, user.fresh_code())
    assert r.status_code == 303, snippet(r)
    assert location(r).path == "/fresh/panel"
    new = b.cookie("twostep_session")
    assert new and new != old

    on_both_workers(lambda: site.get_with_session(new, "/fresh/x?format=json"),
                    opens_as(user))
    # The cookie the step-up replaced opens nothing any more, not even
    # where no freshness is asked for.
    on_both_workers(lambda: site.get_with_session(old), sent_to_signin)


def test_a_request_let_in_names_its_user_even_if_signed_out_meanwhile(
        guarded):
    """$twostep_user names the session the access check allowed: a sign-out
    while the request's body is still arriving does not make the request
    it let through reach the app as anonymous (the session is kept in the
    request's context when the configuration names a $twostep_* variable,
    here proxy_set_header X-Remote-User)."""
    site = guarded("midrequest")
    user = site.users[0]
    b = site.browser()
    b.sign_in("/app/", user)
    value = b.cookie("twostep_session")

    body = b"field=1"
    conn = socket.create_connection(("127.0.0.1", site.port), timeout=10)
    conn.sendall(("POST /app/late?format=json HTTP/1.1\r\n"
                  "Host: localhost\r\n"
                  "Cookie: twostep_session=%s\r\nContent-Length: %d\r\n"
                  "Content-Type: application/x-www-form-urlencoded\r\n"
                  "Connection: close\r\n\r\n" % (value, len(body))).encode())
    time.sleep(0.5)    # nginx has let it in and waits for the body

    form = Page(b.get(LOGOUT)).form(LOGOUT)
    r = b.post(LOGOUT, dict(form.fields))
    assert Page(r).heading == "You have signed out", snippet(r)
    on_both_workers(lambda: site.get_with_session(value), sent_to_signin)

    conn.sendall(body)
    answer = b""
    while True:
        chunk = conn.recv(65536)
        if not chunk:
            break
        answer += chunk
    conn.close()
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    assert json.loads(payload)["headers"]["X-Remote-User"] == user.name
