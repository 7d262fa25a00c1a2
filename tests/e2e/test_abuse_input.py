"""Hostile input never crashes nginx and never grants access: codes that
are not the right ASCII digits, oversized and garbage cookies, and
duplicated session cookies.

Duplicated twostep_session cookies: the module reads the Cookie header
lines itself, by the exact name (not nginx's $cookie_*, which ignore case
and take the first of several). A request with two cookies of the name, in
one line or several, whatever their values, gets no session (fail closed:
which one is genuine cannot be told), and TWOSTEP_SESSION is not ours."""

from harness import (SIGNIN, Page, raw_request, set_cookies, snippet,
                     wait_off_step_boundary)

WRONG_CODE = "That code didn't work"
DIGITS_ONLY = "A code has only digits"

ARABIC_INDIC = "٠١٢٣٤٥٦٧٨٩"
FULLWIDTH = "０１２３４５６７８９"
NO_5XX = "5xx from nginx"


def to_digits(code, digits):
    return "".join(digits[int(c)] for c in code)


def code_page(site, user):
    b = site.browser()
    r = b.follow(b.get("/app/code"))
    r = b.submit_password(r, user.name, user.password)
    assert r.status_code == 303, snippet(r)
    r = b.follow(r)
    assert Page(r).heading == "Enter code", snippet(r)
    return b, r


def test_only_the_right_ascii_digits_are_a_code(guarded):
    # Wrong codes count as failures: no lockout in the way.
    site = guarded("badcode", lockout="100 3s address=1000")
    user = site.users[0]
    wait_off_step_boundary(margin=3)
    right = user.code()
    b, page = code_page(site, user)

    # Anything but ASCII digits is no code at all (look-alike digits
    # of other scripts too): a 400 that says so, no guess to count.
    not_digits = {
        "Arabic-Indic digits": to_digits(right, ARABIC_INDIC),
        "fullwidth digits": to_digits(right, FULLWIDTH),
        "Arabic-Indic sample": "١٢٣٤٥٦",
        "fullwidth sample": "１２３４５６",
        "letters": "abcdef",
        "digits and a letter": right[:5] + "x",
        "letter O for zero": right.replace("0", "O") if "0" in right
        else "O" + right[1:],
        "sign in front": "+" + right,
        "superscript digits": "¹²³⁴⁵⁶",
    }
    for what, code in not_digits.items():
        r = b.submit_code(page, code)
        assert r.status_code == 400, "%s: %s" % (what, snippet(r))
        assert DIGITS_ONLY in Page(r).text, "%s: %s" % (what, snippet(r))
        assert "twostep_session" not in set_cookies(r), what
        page = r

    # ASCII digits, but not the code: a wrong code (counted).
    refused_403 = {
        "7 digits (right code and one more)": right + "7",
        "7 digits (one more in front)": "7" + right,
    }
    for what, code in refused_403.items():
        r = b.submit_code(page, code)
        assert r.status_code == 403, "%s: %s" % (what, snippet(r))
        assert WRONG_CODE in Page(r).text, "%s: %s" % (what, snippet(r))
        assert "twostep_session" not in set_cookies(r), what
        page = r

    # Stranger input: refused one way or another (a malformed form is a
    # 400 page), never a 5xx, never a session.
    odd = {
        "NUL in the code": right[:3] + "\x00" + right[3:],
        "CR LF": right + "\r\n",
        "long run of digits": "1" * 4000,
        "code twice": right + right,
        "percent signs": "%%%%%%",
    }
    for what, code in odd.items():
        r = b.submit_code(page, code)
        assert r.status_code in (400, 403), "%s: %s" % (what, snippet(r))
        assert "twostep_session" not in set_cookies(r), what
        if r.status_code == 403 and Page(r).forms:
            page = r
    assert b.get("/app/").status_code == 302

    # None of it used up the step or locked the account: the code works.
    r = b.submit_code(page, right)
    assert r.status_code == 303, snippet(r)
    assert b.app_view("/app/")["headers"]["X-Remote-User"] == user.name


def session_of(site, user):
    b = site.browser()
    b.sign_in("/app/", user)
    return b.cookie("twostep_session")


def assert_no_access(r, what):
    assert r.status < 500, "%s: %s: %r" % (what, NO_5XX, r)
    assert b'"app": "legacy"' not in r.body, "%s opened the app: %r" % (
        what, r)
    assert r.status in (302, 400), "%s: %r" % (what, r)
    if r.status == 302:
        assert "/.twostep/signin" in r.header("Location"), (what, r)


def test_huge_and_garbage_cookies(guarded):
    site = guarded("cookies")
    valid = session_of(site, site.users[0])
    port = site.port
    path = "/app/c?format=json"

    cases = {
        "7 KiB value": "twostep_session=" + "A" * 7 * 1024,
        "valid value and 7 KiB more": "twostep_session=" + valid
        + "A" * 7 * 1024,
        "7 KiB of dots": "twostep_session=" + "." * 7 * 1024,
        "empty": "twostep_session=",
        "no =": "twostep_session",
        "only =": "twostep_session==",
        "quoted valid": 'twostep_session="%s"' % valid,
        "valid reversed": "twostep_session=" + valid[::-1],
        "valid upper-cased": "twostep_session=" + valid.upper(),
        "valid with a space": "twostep_session=" + valid[:10] + " "
        + valid[10:],
        "valid, percent-encoded dots": "twostep_session="
        + valid.replace(".", "%2E"),
        "many dots": "twostep_session=" + ".".join(["a"] * 500),
        "binary bytes": "twostep_session=\x01\x7f\xff\xfe" + valid[4:],
        "name with a prefix": "xtwostep_session=" + valid,
        "name with a suffix": "twostep_session_=" + valid,
        "name upper-cased, garbage": "TWOSTEP_SESSION=garbage.garbage",
        "pending name": "twostep_pending=" + valid,
        "300 other cookies": "; ".join("c%d=%d" % (i, i)
                                       for i in range(300)),
    }
    for what, cookie in cases.items():
        assert_no_access(raw_request(port, path,
                                     headers=[("Cookie", cookie)]), what)

    # Names are exact (RFC 6265 5.4): the valid value under another case
    # or prefix is no session.
    for name in ("TWOSTEP_SESSION", "Twostep_Session",
                 "__Host-twostep_session"):
        assert_no_access(raw_request(port, path, headers=[
            ("Cookie", "%s=%s" % (name, valid))]), name)

    # Larger than nginx's header buffers (large_client_header_buffers 4 8k):
    # nginx's own 400 "Request Header Or Cookie Too Large". (nginx logs the
    # start of such a header line at [info], so the value is junk here.)
    for size in (20 * 1024, 64 * 1024):
        r = raw_request(port, path, headers=[
            ("Cookie", "twostep_session=" + "B" * size)])
        assert r.status == 400, r
        assert b"Too Large" in r.body, r

    # The portal with an oversized or garbage pending cookie: a fresh
    # sign-in page, never a 5xx.
    for cookie in ("twostep_pending=" + "A" * 7 * 1024,
                   "twostep_pending=" + valid,
                   "twostep_pending=\x01\xff"):
        r = raw_request(port, SIGNIN, headers=[("Cookie", cookie)])
        assert r.status == 200, r
        r = raw_request(port, "/.twostep/verify?return_to=%2F",
                        headers=[("Cookie", cookie)])
        assert r.status == 303 and SIGNIN in r.header("Location"), r
        r = raw_request(port, "/.twostep/verify", method="POST",
                        headers=[("Cookie", cookie), ("Content-Type",
                                 "application/x-www-form-urlencoded")],
                        body=b"code=123456&form_token=x&method=totp")
        assert r.status == 403 and b"twostep_session" not in r.body, r

    # After all that, the valid cookie still works (nothing crashed).
    r = site.get_with_session(valid)
    assert r.status_code == 200, snippet(r)


def test_duplicated_session_cookies(guarded):
    site = guarded("dupcookies")
    alice, bob = site.users[0], site.users[1]
    va, vb = session_of(site, alice), session_of(site, bob)
    port = site.port
    path = "/app/d?format=json"

    def who(*cookie_lines):
        r = raw_request(port, path,
                        headers=[("Cookie", c) for c in cookie_lines])
        assert r.status < 500, "%s: %r" % (cookie_lines, r)
        if r.status == 200:
            assert b'"app": "legacy"' in r.body, r
            for u in (alice, bob):
                if ('"X-Remote-User": "%s"' % u.name).encode() in r.body:
                    return u.name
            raise AssertionError("200 without a known user: %r" % r)
        assert r.status == 302 and SIGNIN in r.header("Location"), r
        return None

    g = "twostep_session=garbage.garbage"
    s = "twostep_session="
    # One header line, both orders.
    assert who("%s%s; %s" % (s, va, g)) is None
    assert who("%s; %s%s" % (g, s, va)) is None
    # Two Cookie header lines, both orders.
    assert who(s + va, g) is None
    assert who(g, s + va) is None
    # Two valid sessions, the same one twice: no session either.
    assert who("%s%s; %s%s" % (s, va, s, vb)) is None
    assert who("%s%s; %s%s" % (s, vb, s, va)) is None
    assert who(s + va, s + va) is None
    # Garbage twice, an empty one before a valid one.
    assert who("%s; %s" % (g, g)) is None
    assert who("%s; %s%s" % (s, s, va)) is None
    # Other cookies around a valid one change nothing.
    assert who("a=1; %s%s; b=2" % (s, va)) == alice.name
    assert who("a=1", s + vb, "TWOSTEP_SESSION=" + va) == bob.name
