"""Where the portal sends a user afterwards is only ever a path on this
server: a forged return_to falls back to "/"."""

import pytest

from harness import SIGNIN, VERIFY, location, snippet

EVIL = ["//evil.example", "/\\evil.example", "http://evil.example/",
        "https://evil.example", "/%2F/evil.example", "/%5Cevil.example",
        "\t//evil.example", "javascript:alert(1)"]


def assert_on_server(r, site):
    loc = location(r)
    assert loc.scheme == "http" and \
        loc.netloc == "127.0.0.1:%d" % site.ports["main"], \
        "redirect off-server: %r" % r.headers["Location"]
    assert not loc.path.startswith("//") and "\\" not in loc.path, \
        r.headers["Location"]
    return loc


@pytest.mark.parametrize("evil", EVIL)
def test_forged_return_to_never_leaves_server(site, pool, evil):
    user = pool.take()
    b = site.browser()
    r = b.follow(b.get("/app/"))
    r = b.submit_password(r, user.name, user.password, return_to=evil)
    assert r.status_code == 303, snippet(r)
    assert assert_on_server(r, site).path == VERIFY
    r = b.follow(r)
    assert r.status_code == 200, snippet(r)
    r = b.submit_code(r, user.fresh_code(), return_to=evil)
    assert r.status_code == 303, snippet(r)
    loc = assert_on_server(r, site)
    assert loc.path == "/" and not loc.query, r.headers["Location"]


@pytest.mark.parametrize("evil", ["//evil.example", "/\\evil.example",
                                  "http://evil.example/"])
def test_forged_return_to_in_portal_links(site, pool, evil):
    # The same value arriving in the query of the portal's GET pages.
    user = pool.take()
    b = site.browser()
    r = b.get(SIGNIN, params={"return_to": evil, "methods": "totp"})
    assert r.status_code == 200, snippet(r)
    r = b.submit_password(r, user.name, user.password)
    assert r.status_code == 303, snippet(r)
    assert_on_server(r, site)
    r = b.get(VERIFY, params={"return_to": evil, "methods": "totp"})
    assert r.status_code == 200, snippet(r)
    r = b.submit_code(r, user.fresh_code())
    assert r.status_code == 303, snippet(r)
    loc = assert_on_server(r, site)
    assert loc.path == "/" and not loc.query, r.headers["Location"]
