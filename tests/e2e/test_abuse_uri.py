"""Which location protects a request is decided on the URI as nginx has
normalized it (percent-decoded, dot segments and double slashes resolved),
so spellings of /admin/ that start in a public location never reach the app
without a session. The requests go out on raw sockets: HTTP libraries would
normalize some of these paths themselves.

Spellings that nginx does not resolve to /admin/ (`/public/..;/admin/`,
`/public/%252e%252e/admin/`, `/public/..\\admin/`, `/ADMIN/`) stay in the
public location they start in and are passed on as sent: an application
that decodes or resolves them differently must protect itself (or be put
under a protected location as a whole)."""

from urllib.parse import urlsplit

import pytest

from harness import SIGNIN, LegacyApp, raw_request, snippet

LOCATIONS = """
        location / {{
            twostep off;
            {proxy}
        }}
        location /public/ {{
            twostep off;
            {proxy}
        }}
        location /admin/ {{
            twostep on;
            {proxy}
        }}"""

ADMIN_SPELLINGS = [
    "/public/../admin/x",
    "/public/%2e%2e/admin/x",
    "/public/%2E%2E/admin/x",
    "/public/.%2e/admin/x",
    "/public/..%2fadmin/x",
    "/public/%2e%2e%2fadmin/x",
    "/public%2f..%2fadmin/x",
    "//admin/x",
    "/admin//x",
    "/./admin/x",
    "/%61dmin/x",
    "/admin%2fx",
    "/public/./../admin/x",
    "/public/x/../../admin/x",
]

# nginx refuses to go above the root.
ABOVE_ROOT = ["/../admin/x", "/public/../../admin/x"]


@pytest.fixture
def loud_app(workdir):
    """A legacy app that logs every request it receives."""
    a = LegacyApp(workdir, quiet=False, name="uri_app").start()
    yield a
    a.stop()


def test_policy_uses_the_normalized_uri(guarded, loud_app):
    site = guarded("uri", locations=LOCATIONS, app=loud_app)
    port = site.port

    # The app logs what it gets, and the public locations reach it.
    r = raw_request(port, "/public/ok?format=json")
    assert r.status == 200 and b'"app": "legacy"' in r.body, r
    r = raw_request(port, "/elsewhere?format=json")
    assert r.status == 200 and b'"app": "legacy"' in r.body, r

    problems = []
    for path in ADMIN_SPELLINGS + ABOVE_ROOT:
        for target in (path + "?format=json",
                       "http://127.0.0.1:%d%s" % (port, path)):
            r = raw_request(port, target)
            if b'"app": "legacy"' in r.body or b"Legacy App" in r.body:
                problems.append("%s reached the app: %r" % (target, r))
            elif path in ABOVE_ROOT:
                if r.status != 400:
                    problems.append("%s: expected 400: %r" % (target, r))
            elif r.status != 302 or \
                    urlsplit(r.header("Location") or "").path != SIGNIN:
                problems.append("%s: expected 302 to sign-in: %r"
                                % (target, r))

    seen = loud_app.requests_seen()
    assert any("/public/ok" in line for line in seen), seen
    for line in seen:
        if "admin" in line:
            problems.append("the app received " + line)
    assert not problems, "\n".join(problems)

    # With a session the same spellings do reach /admin/.
    b = site.browser()
    b.sign_in("/admin/x", site.users[0])
    r = b.get("/admin/x?format=json")
    assert r.status_code == 200, snippet(r)
    assert r.json()["headers"]["X-Remote-User"] == site.users[0].name
    cookie = "twostep_session=" + b.cookie("twostep_session")
    r = raw_request(port, "/public/%2e%2e/admin/y?format=json",
                    headers=[("Cookie", cookie)])
    assert r.status == 200 and site.users[0].name.encode() in r.body, r
