"""Ways around the access check through nginx's own configuration:
subrequests (SSI, auth_request) that skip the access phase, and the portal
under the location nginx chose for it (deny, limit_req)."""

import json
import tempfile
from pathlib import Path

from harness import SIGNIN, VERIFY, Page, location, set_cookies, snippet, \
    write_htpasswd


def write_www(workdir, name, files):
    """A document root of its own (readable by the workers, user nobody)."""
    www = Path(tempfile.mkdtemp(prefix=name + "-www-", dir=workdir))
    for rel, text in files.items():
        path = www / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(0o644)
    for d in [www] + [p for p in www.rglob("*") if p.is_dir()]:
        d.chmod(0o755)
    return www


SUBREQUESTS = """
        location / {{
            twostep on;
            {proxy}
        }}
        location /admin/ {{
            twostep on;
            twostep_max_age 1h;
            {proxy}
        }}
        location /page/ {{
            twostep off;
            ssi on;
            root {www};
        }}
        location /gate/ {{
            twostep off;
            auth_request /check;
            {proxy}
        }}
        location = /check {{
            internal;
            twostep on;
            return 204;
        }}
"""


def subrequest_site(guarded, workdir, name):
    www = write_www(workdir, name, {
        "page/index.html": "<p>public</p>\n"
                           '<!--# include virtual="/admin/secret'
                           '?format=json" -->\n'})
    return guarded(name, users=1,
                   locations=SUBREQUESTS.replace("{www}", str(www)))


def test_ssi_include_of_a_protected_location_needs_the_session(guarded,
                                                               workdir):
    site = subrequest_site(guarded, workdir, "ssi")
    anonymous = site.browser()
    r = anonymous.get("/page/index.html")
    assert r.status_code == 200, snippet(r)
    assert "public" in r.text
    # The include answers 403 inside the page: no content of the app.
    assert '"app": "legacy"' not in r.text, snippet(r)
    assert "/admin/secret" not in r.text, snippet(r)

    # Signed in, the same page includes it: the include itself works.
    user = site.users[0]
    b = site.browser()
    b.sign_in("/admin/", user)
    r = b.get("/page/index.html")
    assert r.status_code == 200, snippet(r)
    included = json.loads(r.text[r.text.index("{"):r.text.rindex("}") + 1])
    assert included["path"] == "/admin/secret?format=json"
    assert included["headers"]["X-Remote-User"] == user.name


def test_auth_request_into_a_protected_location_needs_the_session(
        guarded, workdir):
    site = subrequest_site(guarded, workdir, "authreq")
    r = site.browser().get("/gate/?format=json")
    assert r.status_code == 403, snippet(r)
    assert "legacy" not in r.text

    # A forged or foreign cookie is no session either.
    r = site.get_with_session("forged", "/gate/?format=json")
    assert r.status_code == 403, snippet(r)

    b = site.browser()
    b.sign_in("/", site.users[0])
    r = b.get("/gate/?format=json")
    assert r.status_code == 200, snippet(r)
    assert r.json()["app"] == "legacy"


PORTAL_DENIED = """
        location / {{
            twostep on;
            {proxy}
        }}
        location /.twostep/ {{
            deny all;
        }}
"""


def test_deny_on_the_portal_location_applies(guarded):
    site = guarded("portaldeny", users=1, locations=PORTAL_DENIED)
    b = site.browser()
    r = b.get("/app/")
    assert r.status_code == 302, snippet(r)
    assert location(r).path == SIGNIN
    r = b.follow(r)
    assert r.status_code == 403, snippet(r)
    assert "Sign in" not in r.text
    r = b.post(SIGNIN, {"username": "nobody-here",
                        "password": "Wrong-pw-7Qz!"})
    assert r.status_code == 403, snippet(r)


PORTAL_LIMITED = """
        location / {{
            twostep on;
            try_files $uri @app;
        }}
        location @app {{
            twostep on;
            {proxy}
        }}
        location /.twostep/ {{
            limit_req zone=signin burst=2 nodelay;
            limit_req_status 429;
        }}
"""


def test_limit_req_on_the_portal_location_applies(guarded):
    site = guarded("portallimit", users=1, locations=PORTAL_LIMITED,
                   http_extra="limit_req_zone $binary_remote_addr "
                              "zone=signin:1m rate=1r/m;")
    b = site.browser()
    # One request and a burst of two: the sign-in page itself, answered
    # by the portal (try_files in the protected location does not divert).
    for _ in range(3):
        r = b.get(SIGNIN)
        assert r.status_code == 200, snippet(r)
        assert Page(r).form(SIGNIN) is not None
    r = b.get(SIGNIN)
    assert r.status_code == 429, snippet(r)
    r = b.post(SIGNIN, {"username": "nobody-here",
                        "password": "Wrong-pw-7Qz!"})
    assert r.status_code == 429, snippet(r)
    # The protected pages themselves are not limited by it.
    r = b.get("/app/")
    assert r.status_code == 302, snippet(r)


SATISFY_ANY = """
        location / {{
            twostep on;
            {proxy}
        }}
        location /office/ {{
            satisfy any;
            allow 192.0.2.0/24;
            deny all;
            twostep on;
            {proxy}
        }}
        location /loopback/ {{
            satisfy any;
            allow 127.0.0.1;
            deny all;
            twostep on;
            {proxy}
        }}
"""


def test_satisfy_any_lets_an_allowed_address_skip_two_step(guarded):
    """As nginx.conf says and nginx -t warns: with "satisfy any", an
    address that "allow" lets in is not asked for two-step; one that is
    denied still has to sign in (the README's caveat)."""
    site = guarded("satisfyany", users=1, locations=SATISFY_ANY)
    b = site.browser()
    r = b.get("/loopback/s?format=json")
    assert r.status_code == 200, snippet(r)
    r = b.get("/office/")
    assert r.status_code == 302, snippet(r)
    assert location(r).path == SIGNIN
    b.sign_in("/office/", site.users[0])
    r = b.get("/office/s?format=json")
    assert r.status_code == 200, snippet(r)


def identity_site(guarded, workdir, name):
    """/sso/ takes $remote_user from auth_basic, whose realm a nested
    location turns "off" at run time; / wants the password."""
    d = Path(tempfile.mkdtemp(prefix=name + "-htpasswd-", dir=workdir))
    d.chmod(0o755)
    user = "%s-u0" % name
    secret = "basic-pw-%s-4Rt" % name
    htpasswd = write_htpasswd(d / "htpasswd", {user: secret})
    locations = """
        location / {{
            twostep on;
            {proxy}
        }}
        location /sso/ {{
            set $sso_realm SSO;
            auth_basic $sso_realm;
            auth_basic_user_file %s;
            twostep on;
            twostep_identity $remote_user;
            {proxy}
            location /sso/open/ {{
                set $sso_realm off;
                {proxy}
            }}
        }}
""" % htpasswd
    return guarded(name, users=1, locations=locations), secret


def test_identity_is_not_trusted_where_auth_basic_is_off(guarded, workdir):
    site, secret = identity_site(guarded, workdir, "realmoff")
    user = site.users[0]
    forged = (user.name, "not-" + secret)
    b = site.browser()
    assert b.get("/sso/", auth=forged).status_code == 401
    # auth_basic is off here: the forged header names the user, nobody
    # checked it. No sign-in starts from it, no pending token is minted.
    r = b.get("/sso/open/", auth=forged)
    assert r.status_code == 403, snippet(r)
    assert "twostep_pending" not in set_cookies(r)
    assert "auth_basic" in site.nginx.log_text()

    # With the real password the code is owed, as before.
    r = b.get("/sso/", auth=(user.name, secret))
    assert r.status_code == 302, snippet(r)
    assert location(r).path == VERIFY
