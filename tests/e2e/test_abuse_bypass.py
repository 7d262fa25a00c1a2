"""Ways around the access check through nginx's own configuration: the
portal under the location nginx chose for it (deny, limit_req)."""

from harness import SIGNIN, Page, location, snippet


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
