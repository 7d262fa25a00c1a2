"""The sign-in a user goes through: redirect to the portal, password, code,
back to the page they asked for, with the app told who they are."""

import re
import time

import pytest

from harness import (SIGNIN, VERIFY, Page, cookie_cleared, location,
                     query, set_cookies, snippet, totp_code)

WRONG_LOGIN = "Wrong user name or password"
WRONG_CODE = "That code didn't work"


def same_server(split, site):
    return split.scheme == "http" and \
        split.netloc == "127.0.0.1:%d" % site.ports["main"]


def path_and_query(split):
    return split.path + ("?" + split.query if split.query else "")


def assert_cookie_attrs(attrs, name):
    assert attrs.get("httponly") is True, "%s lacks HttpOnly: %r" % (
        name, attrs)
    assert str(attrs.get("samesite", "")).lower() == "lax", \
        "%s: SameSite is not Lax: %r" % (name, attrs)
    assert attrs.get("path") == "/", "%s: Path is not /: %r" % (name, attrs)


def wait_off_step_boundary(period=30, margin=2):
    """Code tests must not straddle a time step: the server would see the
    next step. Waits (at most margin + 1 s) if we are near one."""
    while True:
        pos = time.time() % period
        if margin <= pos <= period - margin:
            return
        time.sleep(0.2)


# ------------------------------------------------------------- redirect

ALL_METHODS = "totp,push,call,sms,webauthn,recovery,remembered"


def test_protected_page_redirects_to_signin(site, browser):
    target = "/app/page?x=1&y=a%20b"
    r = browser.get(target)
    assert r.status_code == 302, snippet(r)
    loc = location(r)
    assert same_server(loc, site), r.headers["Location"]
    assert loc.path == SIGNIN
    q = query(loc)
    assert q["return_to"] == target
    # No twostep_methods in this location: every method counts.
    assert q["methods"] == ALL_METHODS
    assert "twostep_session" not in set_cookies(r)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "HEAD"])
def test_other_methods_do_not_slip_through(site, browser, method):
    r = browser.http.request(method, browser.url("/app/x?format=json"),
                             data="a=1", allow_redirects=False, timeout=15)
    assert r.status_code in (302, 303), snippet(r)
    assert location(r).path == SIGNIN
    assert "legacy" not in r.text


def test_portal_uri_moves_the_portal(site, user):
    b = site.browser("portal")
    r = b.get("/app/p?q=1")
    assert r.status_code == 302, snippet(r)
    loc = location(r)
    assert loc.path == "/auth/signin"
    assert query(loc)["return_to"] == "/app/p?q=1"
    r = b.sign_in("/app/p?q=1", user)
    assert path_and_query(location(r)) == "/app/p?q=1"
    assert b.app_view("/app/p")["headers"]["X-Remote-User"] == user.name
    # The default portal path is nothing special on this server.
    r = b.get("/.twostep/signin")
    assert r.status_code == 200 and "Legacy App" in r.text, snippet(r)


def test_unprotected_location_passes_through_without_identity(browser):
    seen = browser.app_view("/public/page?a=1")
    assert seen["path"] == "/public/page?a=1&format=json"
    assert seen["headers"] == {"X-Remote-User": None,
                               "X-Twostep-Method": None,
                               "X-Twostep-Auth-Time": None}
    # A client cannot claim an identity: proxy_set_header replaces it.
    r = browser.get("/public/x?format=json",
                    headers={"X-Remote-User": "mallory",
                             "X-Twostep-Method": "totp"})
    assert r.status_code == 200
    assert r.json()["headers"]["X-Remote-User"] is None
    assert r.json()["headers"]["X-Twostep-Method"] is None
    r = browser.get("/static/hello.txt")
    assert r.status_code == 200 and r.text == "hello, static\n"


# ------------------------------------------------------------- sign-in page

def test_signin_page_shows_form_and_sets_pending_cookie(site, browser):
    r = browser.follow(browser.get("/app/?q=1"))
    assert r.status_code == 200, snippet(r)
    assert r.headers["Content-Type"].startswith("text/html")
    page = Page(r)
    assert page.heading == "Sign in"
    form = page.form(SIGNIN)
    assert form.method == "post"
    types = {name: t for name, t, _ in form.inputs}
    assert "username" in types
    assert types.get("password") == "password"
    for hidden in ("return_to", "methods", "form_token"):
        assert types.get(hidden) == "hidden", (hidden, form.inputs)
    assert form.fields["return_to"] == "/app/?q=1"
    assert form.fields["methods"] == ALL_METHODS
    assert len(form.fields["form_token"]) >= 16
    cookies = set_cookies(r)
    assert "twostep_pending" in cookies, r.headers
    value, attrs = cookies["twostep_pending"]
    assert value
    assert_cookie_attrs(attrs, "twostep_pending")
    assert "secure" not in attrs


def test_full_signin_reaches_app_with_identity(site, browser, user):
    target = "/app/report?id=42&view=full"
    r = browser.follow(browser.get(target))
    first_pending = browser.cookie("twostep_pending")
    assert first_pending

    # Password step.
    r = browser.submit_password(r, user.name, user.password)
    assert r.status_code == 303, snippet(r)
    loc = location(r)
    assert same_server(loc, site) and loc.path == VERIFY, \
        r.headers["Location"]
    assert query(loc)["return_to"] == target
    assert query(loc)["methods"] == ALL_METHODS
    cookies = set_cookies(r)
    assert "twostep_pending" in cookies, "no new pending cookie"
    value, attrs = cookies["twostep_pending"]
    assert value and value != first_pending
    assert_cookie_attrs(attrs, "twostep_pending")
    assert "twostep_session" not in cookies

    # Code step.
    r = browser.follow(r)
    assert r.status_code == 200, snippet(r)
    page = Page(r)
    assert page.heading == "Enter code"
    form = page.form(VERIFY)
    names = [name for name, _, _ in form.inputs]
    assert "code" in names and "password" not in names
    assert form.fields["return_to"] == target

    before = int(time.time())
    r = browser.submit_code(r, user.fresh_code())
    after = int(time.time())
    assert r.status_code == 303, snippet(r)
    loc = location(r)
    assert same_server(loc, site)
    assert path_and_query(loc) == target
    cookies = set_cookies(r)
    assert "twostep_session" in cookies, r.headers
    value, attrs = cookies["twostep_session"]
    assert value
    assert_cookie_attrs(attrs, "twostep_session")
    assert "secure" not in attrs, "Secure cookie on plain http: " + \
        str(attrs)
    assert "twostep_pending" in cookies, "pending cookie not cleared"
    assert cookie_cleared(*cookies["twostep_pending"]), \
        cookies["twostep_pending"]

    # The app sees who it is, and a client cannot override that.
    r = browser.follow(r)
    assert r.status_code == 200, snippet(r)
    assert "Legacy App" in r.text
    seen = browser.app_view(target)
    assert seen["path"] == target + "&format=json"
    assert seen["headers"]["X-Remote-User"] == user.name
    assert seen["headers"]["X-Twostep-Method"] == "totp"
    auth_time = int(seen["headers"]["X-Twostep-Auth-Time"])
    assert before <= auth_time <= after
    r = browser.get("/app/x?format=json",
                    headers={"X-Remote-User": "mallory"})
    assert r.json()["headers"]["X-Remote-User"] == user.name


def test_wrong_password_shows_form_again(browser, user):
    r = browser.follow(browser.get("/app/"))
    r = browser.submit_password(r, user.name, "not-" + user.password)
    assert r.status_code == 403, snippet(r)
    page = Page(r)
    assert page.heading == "Sign in"
    assert WRONG_LOGIN in page.text
    form = page.form(SIGNIN)
    assert form.fields.get("username") == user.name
    assert "twostep_session" not in set_cookies(r)
    # The page's own form works for the next try.
    r = browser.submit_password(r, user.name, user.password)
    assert r.status_code == 303, snippet(r)
    assert location(r).path == VERIFY


def test_unknown_user_looks_like_wrong_password(browser, user):
    r = browser.follow(browser.get("/app/"))
    r = browser.submit_password(r, "nosuchuser", user.password)
    assert r.status_code == 403, snippet(r)
    page = Page(r)
    assert page.heading == "Sign in"
    assert WRONG_LOGIN in page.text
    page.form(SIGNIN)


@pytest.mark.parametrize("case", ["no form_token", "forged form_token",
                                  "no pending cookie",
                                  "token of another sign-in",
                                  "foreign Origin"])
def test_password_post_needs_token_and_pending_cookie(site, browser, user,
                                                       case):
    r = browser.follow(browser.get("/app/"))
    form = Page(r).form(SIGNIN)
    data = dict(form.fields, username=user.name, password=user.password)
    if case == "no form_token":
        del data["form_token"]
    elif case == "forged form_token":
        data["form_token"] = "A" * len(data["form_token"])
    elif case == "no pending cookie":
        browser.drop_cookie("twostep_pending")
    elif case == "token of another sign-in":
        other = site.browser()
        form2 = Page(other.follow(other.get("/app/"))).form(SIGNIN)
        data["form_token"] = form2.fields["form_token"]
    headers = {}
    if case == "foreign Origin":
        headers["Origin"] = "http://evil.example"
    r = browser.post(SIGNIN, data, headers=headers)
    assert r.status_code == 403, snippet(r)
    assert "twostep_session" not in set_cookies(r)
    assert "Location" not in r.headers


# ------------------------------------------------------------- code page

def test_code_page_needs_password_step(site):
    # No cookie at all.
    b = site.browser()
    r = b.get(VERIFY + "?return_to=%2Fapp%2F&methods=totp")
    assert r.status_code in (302, 303), snippet(r)
    assert location(r).path == SIGNIN
    # A pending cookie from the sign-in page, password not given yet.
    b.follow(b.get("/app/"))
    assert b.cookie("twostep_pending")
    r = b.get(VERIFY + "?return_to=%2Fapp%2F&methods=totp")
    assert r.status_code in (302, 303), snippet(r)
    assert location(r).path == SIGNIN


def test_code_post_without_password_step_opens_nothing(site, user):
    b = site.browser()
    page = b.follow(b.get("/app/"))
    form = Page(page).form(SIGNIN)
    r = b.post(VERIFY, {"code": user.code(), "method": "totp",
                        "return_to": "/app/", "methods": "totp",
                        "form_token": form.fields["form_token"]})
    assert "twostep_session" not in set_cookies(r), snippet(r)
    if r.status_code in (302, 303):
        assert location(r).path == SIGNIN, r.headers["Location"]
    else:
        assert r.status_code == 403, snippet(r)
    assert b.get("/app/").status_code == 302


def test_wrong_code_shows_code_form_again(browser, user):
    wait_off_step_boundary()
    r = browser.follow(browser.get("/app/w?x=1"))
    r = browser.follow(browser.submit_password(r, user.name, user.password))
    good = {user.code(steps=s) for s in (-1, 0, 1)}
    wrong = next(c for c in ("000000", "123456", "999999")
                 if c not in good)
    r = browser.submit_code(r, wrong)
    assert r.status_code == 403, snippet(r)
    page = Page(r)
    assert page.heading == "Enter code"
    assert WRONG_CODE in page.text
    form = page.form(VERIFY)
    assert "code" in [n for n, _, _ in form.inputs]
    assert "twostep_session" not in set_cookies(r)
    assert browser.get("/app/w?x=1").status_code == 302
    # The right code on that page still works.
    r = browser.submit_code(r, user.fresh_code())
    assert r.status_code == 303, snippet(r)
    assert path_and_query(location(r)) == "/app/w?x=1"


def test_code_with_letters_says_so_and_is_not_a_guess(browser, user):
    r = browser.follow(browser.get("/app/l"))
    r = browser.follow(browser.submit_password(r, user.name, user.password))
    # More tries than twostep_lockout's 5: none counts as a wrong code.
    for typed in ("12345O", "l23456", "abc def", "123-456", "OOOOOO", "x1"):
        r = browser.submit_code(r, typed)
        assert r.status_code == 400, snippet(r)
        page = Page(r)
        assert page.heading == "Enter code"
        assert "A code has only digits. Check for letters (like O for 0) " \
            "and enter the digits the app shows." in page.text, page.text
        assert WRONG_CODE not in page.text
        # The error is tied to the field for screen readers.
        assert re.search(r'<input[^>]* id="code"[^>]* aria-invalid="true"'
                         r'[^>]* aria-describedby="code-help error"', r.text)
        assert re.search(r'<p class="alert" id="error" role="alert">',
                         r.text)
    r = browser.submit_code(r, user.fresh_code())
    assert r.status_code == 303, snippet(r)
    assert path_and_query(location(r)) == "/app/l"


def test_after_a_wrong_password_the_password_field_is_focused(browser,
                                                              user):
    r = browser.follow(browser.get("/app/p"))
    r = browser.submit_password(r, user.name, "wrong " + user.password)
    assert r.status_code == 403, snippet(r)
    user_field = re.search(r'<input[^>]* id="username"[^>]*>', r.text).group(0)
    pass_field = re.search(r'<input[^>]* id="password"[^>]*>', r.text).group(0)
    assert 'value="%s"' % user.name in user_field
    assert " autofocus" in pass_field and " autofocus" not in user_field
    for field in (user_field, pass_field):
        assert 'aria-invalid="true"' in field and \
            'aria-describedby="error"' in field, field


# ------------------------------------------------------------- TOTP details

@pytest.mark.parametrize("steps,accepted", [(-1, True), (1, True),
                                            (-2, False), (2, False)])
def test_clock_drift_of_one_step_accepted_two_refused(pool, site, steps,
                                                      accepted):
    user = pool.take()
    wait_off_step_boundary()
    now = time.time()
    code = user.code(at=now, steps=steps)
    if not accepted:
        # Vanishingly rare, but a far code could equal a near one.
        while code in {user.code(at=now, steps=s) for s in (-1, 0, 1)}:
            user = pool.take()
            code = user.code(at=now, steps=steps)
    b = site.browser()
    r = b.follow(b.get("/app/drift"))
    r = b.follow(b.submit_password(r, user.name, user.password))
    r = b.submit_code(r, code)
    if accepted:
        assert r.status_code == 303, snippet(r)
        assert path_and_query(location(r)) == "/app/drift"
        assert b.app_view("/app/drift")["headers"]["X-Remote-User"] == \
            user.name
    else:
        assert r.status_code == 403, snippet(r)
        assert Page(r).heading == "Enter code"
        assert "twostep_session" not in set_cookies(r)


@pytest.mark.parametrize("prefix", ["sha256-", "sha512-"])
def test_totp_algorithm_and_digits_from_user_store(pool, site, prefix):
    user = pool.take(prefix)
    code = user.fresh_code()
    assert len(code) == user.digits
    b = site.browser()
    r = b.sign_in("/app/alg", user, code=code)
    assert path_and_query(location(r)) == "/app/alg"
    seen = b.app_view("/app/alg")
    assert seen["headers"]["X-Remote-User"] == user.name
    # A SHA1 code of the same secret is not the right code.
    other = pool.take(prefix)
    b = site.browser()
    r = b.follow(b.get("/app/alg"))
    r = b.follow(b.submit_password(r, other.name, other.password))
    sha1 = totp_code(other.secret, time.time(), "SHA1", other.digits)
    if sha1 not in {other.code(steps=s) for s in (-1, 0, 1)}:
        r = b.submit_code(r, sha1)
        assert r.status_code == 403, snippet(r)


def test_code_cannot_be_replayed(site, user):
    """RFC 6238 section 5.2: a verifier MUST NOT accept the second attempt
    of the same OTP after a successful validation (beyond the brief: the
    core's totp_verify returns the time step for exactly this)."""
    wait_off_step_boundary()
    code = user.code()
    first = site.browser()
    r = first.sign_in("/app/once", user, code=code)
    assert path_and_query(location(r)) == "/app/once"
    # Someone who saw the code (shoulder, phishing proxy) and the password.
    second = site.browser()
    r = second.follow(second.get("/app/once"))
    r = second.follow(second.submit_password(r, user.name, user.password))
    r = second.submit_code(r, code)
    assert r.status_code == 403, "the same code worked twice: " + snippet(r)
    assert "twostep_session" not in set_cookies(r)
