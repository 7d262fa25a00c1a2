"""Second step only: a location that wants a fresh code (twostep_max_age),
and a location whose first factor is someone else's (twostep_identity after
auth_basic)."""

import time

from harness import SIGNIN, VERIFY, Page, location, query, set_cookies, \
    snippet


def path_and_query(split):
    return split.path + ("?" + split.query if split.query else "")


def test_max_age_asks_for_a_fresh_code_only(site, browser, user):
    target = "/fresh/panel?tab=keys"
    r = browser.sign_in(target, user)
    assert path_and_query(location(r)) == target
    first = browser.app_view(target)
    assert first["headers"]["X-Remote-User"] == user.name
    auth1 = int(first["headers"]["X-Twostep-Auth-Time"])

    # twostep_max_age 3s: older than 3 s whatever the rounding.
    time.sleep(max(0.0, auth1 + 4.2 - time.time()))
    r = browser.get(target)
    assert r.status_code == 302, snippet(r)
    loc = location(r)
    assert loc.path == SIGNIN
    assert query(loc)["return_to"] == target
    # The session itself is still good where freshness is not asked for.
    assert browser.get("/app/").status_code == 200

    # Sign-in page with a valid session: straight to the code, no password.
    r = browser.follow(r)
    assert r.status_code == 303, snippet(r)
    loc = location(r)
    assert loc.path == VERIFY, r.headers["Location"]
    assert query(loc)["return_to"] == target
    r = browser.follow(r)
    assert r.status_code == 200, snippet(r)
    page = Page(r)
    assert page.heading == "Enter code"
    form = page.form(VERIFY)
    assert "password" not in [n for n, _, _ in form.inputs]

    r = browser.submit_code(r, user.fresh_code())
    assert r.status_code == 303, snippet(r)
    assert path_and_query(location(r)) == target
    assert "twostep_session" in set_cookies(r)
    second = browser.app_view(target)
    assert second["headers"]["X-Remote-User"] == user.name
    assert int(second["headers"]["X-Twostep-Auth-Time"]) > auth1


def test_identity_from_auth_basic_skips_password(site):
    user = site.sso_users[0]
    basic = (user.name, site.basic_pw[user.name])
    b = site.browser()
    target = "/sso/tool?run=1"
    # auth_basic first: nginx's own 401.
    assert b.get(target).status_code == 401

    r = b.get(target, auth=basic)
    assert r.status_code == 302, snippet(r)
    loc = location(r)
    assert loc.path == VERIFY, r.headers["Location"]
    assert query(loc)["return_to"] == target
    assert "twostep_pending" in set_cookies(r), r.headers

    # The portal is outside the basic-auth realm: a browser sends no
    # credentials there, the pending cookie carries the identity.
    r = b.follow(r)
    assert r.status_code == 200, snippet(r)
    page = Page(r)
    assert page.heading == "Enter code"
    assert "password" not in [n for n, _, _ in page.form(VERIFY).inputs]
    r = b.submit_code(r, user.fresh_code())
    assert r.status_code == 303, snippet(r)
    assert path_and_query(location(r)) == target

    r = b.get(target + "&format=json", auth=basic)
    assert r.status_code == 200, snippet(r)
    assert r.json()["headers"]["X-Remote-User"] == user.name
    assert r.json()["headers"]["X-Twostep-Method"] == "totp"


def test_identity_session_of_another_user_does_not_open(site):
    alice, bob = site.sso_users[1], site.sso_users[2]
    b = site.browser()
    r = b.get("/sso/", auth=(alice.name, site.basic_pw[alice.name]))
    r = b.follow(r)
    r = b.submit_code(r, alice.fresh_code())
    assert r.status_code == 303, snippet(r)
    assert b.get("/sso/", auth=(alice.name,
                                site.basic_pw[alice.name])).status_code == 200
    # Same browser, now the basic-auth user is bob: alice's session must
    # not let bob in (nor let him in as alice).
    r = b.get("/sso/?format=json", auth=(bob.name, site.basic_pw[bob.name]))
    assert r.status_code == 302, snippet(r)
    assert location(r).path == VERIFY


def test_identity_session_does_not_stand_in_for_the_password(site):
    """A session opened by auth_basic and a code opens the locations that
    take that identity, never those that want the password."""
    user = site.sso_users[3]
    basic = (user.name, site.basic_pw[user.name])
    b = site.browser()
    r = b.follow(b.get("/sso/", auth=basic))
    r = b.submit_code(r, user.fresh_code())
    assert r.status_code == 303, snippet(r)
    assert b.get("/sso/?format=json", auth=basic).status_code == 200

    r = b.get("/app/?format=json")
    assert r.status_code == 302, snippet(r)
    assert location(r).path == SIGNIN
    # The password form, not a step-up straight to the code.
    r = b.follow(r)
    assert r.status_code == 200, snippet(r)
    assert Page(r).heading == "Sign in"
    r = b.submit_password(r, user.name, user.password)
    assert r.status_code == 303, snippet(r)
    r = b.submit_code(b.follow(r), user.fresh_code())
    assert r.status_code == 303, snippet(r)
    assert path_and_query(location(r)) == "/app/?format=json"
    assert b.app_view("/app/")["headers"]["X-Remote-User"] == user.name
    # The password session still opens the identity location.
    assert b.get("/sso/?format=json", auth=basic).status_code == 200
