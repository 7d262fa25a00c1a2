"""What the module logs, for fail2ban and the like: sign-ins at [notice],
wrong passwords, wrong codes, lockouts and replayed codes at [warn], each
with the user name and the client address; never a password, a code, a
TOTP secret, a cookie value or a form token."""

import re

import harness
from harness import Page, snippet, wait_off_step_boundary


def lines(text, event):
    return [l for l in text.splitlines() if "twostep: " + event in l]


def expect(text, level, event, user):
    """The log lines of `event` for `user`; at least one, all at `level`,
    all naming the client."""
    pattern = re.compile(
        r'\[%s\] \d+#\d+: \*\d+ twostep: %s, user: "%s", client: '
        r'127\.0\.0\.1, server: ' % (level, re.escape(event),
                                     re.escape(user)))
    found = [l for l in lines(text, event) if '"%s"' % user in l]
    assert found, "no %r line for %s in:\n%s" % (event, user, text[-3000:])
    for l in found:
        assert pattern.search(l), "expected [%s] ... client: 127.0.0.1: %s" \
            % (level, l)
    return found


def test_security_events_are_logged_without_secrets(guarded):
    site = guarded("logging", lockout="2 3s address=1000")
    user = site.users[0]
    mark = site.nginx.log_size()
    wait_off_step_boundary(margin=3)
    wrong_password = "Wr0ng-pass-" + user.secret[:8].lower()
    harness.remember_sensitive("password", wrong_password)

    # A wrong password, then a full sign-in (which resets the count).
    b = site.browser()
    r = b.follow(b.get("/app/"))
    r = b.submit_password(r, user.name, wrong_password)
    assert r.status_code == 403, snippet(r)
    code = user.code()
    r = b.sign_in("/app/", user, code=code)
    session = b.cookie("twostep_session")

    # The same code again (replay), then a wrong code: 2 failures, locked.
    b2 = site.browser()
    r = b2.follow(b2.get("/app/"))
    r = b2.follow(b2.submit_password(r, user.name, user.password))
    r = b2.submit_code(r, code)
    assert r.status_code == 403 and "already been used" in Page(r).text, \
        snippet(r)
    near = {user.code(steps=s) for s in (-1, 0, 1)}
    wrong_code = next(c for c in ("000000", "999999", "123123")
                      if c not in near)
    replay_page = r
    r = b2.submit_code(replay_page, wrong_code)
    assert r.status_code in (403, 429), snippet(r)
    r = b2.submit_code(replay_page, wrong_code)
    assert r.status_code == 429, snippet(r)

    # A name not in the store is never echoed: it may be a password typed
    # into the wrong field, or a forged log line (no log injection).
    forged = 'x", client: 6.6.6.6\n2030/01/01 00:00:00 [notice] forged'
    typed_password = "Hunter2-" + user.secret[:10].lower()
    harness.remember_sensitive("password", typed_password)
    for name in ("no-such-user", forged, typed_password):
        b3 = site.browser()
        r = b3.follow(b3.get("/app/"))
        r = b3.submit_password(r, name, wrong_password)
        assert r.status_code == 403, snippet(r)

    text = site.nginx.log_text(mark)
    expect(text, "warn", "wrong user name or password", user.name)
    expect(text, "notice", "password accepted", user.name)
    expect(text, "notice", "signed in", user.name)
    expect(text, "warn", "code used again", user.name)
    expect(text, "warn", "wrong code", user.name)
    expect(text, "warn", "locked out", user.name)
    unknown = expect(text, "warn", "wrong user name or password",
                     "(unknown)")
    assert len(unknown) == 3, unknown
    assert "forged" not in text and "6.6.6.6" not in text
    assert "no-such-user" not in text
    assert typed_password not in text

    # Every line the module logs about a request names the client.
    for l in text.splitlines():
        if "twostep: " in l:
            assert "client: 127.0.0.1" in l, l

    # Nothing secret: what was typed, the secret, every cookie and form
    # token the browsers were given (the error-log guard checks these for
    # every test; here they are spelled out).
    secrets = {"password": user.password, "wrong password": wrong_password,
               "code": code, "wrong code": wrong_code,
               "password typed as a name": typed_password,
               "secret": user.secret, "session cookie": session}
    for what, value in secrets.items():
        assert value not in text, "the error log contains the %s" % what
    for value in harness.SENSITIVE["cookie"]:
        assert value not in text, "the error log contains a cookie value"
