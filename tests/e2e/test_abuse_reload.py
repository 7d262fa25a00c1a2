"""Reloads (SIGHUP) while people are half-way through signing in: a user
who passed the password before a reload finishes with a code after it; a
key rotation (new key first, old key second) keeps pending sign-ins and
sessions working; dropping the old key ends them (back to sign in). The
zone survives reloads, so a used code stays used."""

from harness import (SIGNIN, Page, location, on_both_workers, set_cookies,
                     new_secret, password_hash, snippet,
                     wait_off_step_boundary, write_users)


def past_password(site, user, path="/app/"):
    """A browser that has passed the password step, and its code page."""
    b = site.browser()
    r = b.follow(b.get(path))
    r = b.submit_password(r, user.name, user.password)
    assert r.status_code == 303, snippet(r)
    r = b.follow(r)
    assert Page(r).heading == "Enter code", snippet(r)
    return b, r


def finish(b, page, user, path="/app/"):
    r = b.submit_code(page, user.fresh_code())
    assert r.status_code == 303, snippet(r)
    assert location(r).path == path
    assert b.app_view(path)["headers"]["X-Remote-User"] == user.name
    return b.cookie("twostep_session")


def opens_as(user):
    def check(r):
        assert r.status_code == 200, snippet(r)
        assert r.json()["headers"]["X-Remote-User"] == user.name
    return check


def sent_to_signin(r):
    assert r.status_code == 302, snippet(r)
    assert location(r).path == SIGNIN, r.headers["Location"]


def test_pending_signins_and_sessions_across_reloads(guarded):
    site = guarded("reload", users=6, keys=("a",))
    alice, bob, carol, dave, erin, frank = site.users
    wait_off_step_boundary(margin=4)

    # Password before a plain reload, code after it.
    b_alice, page = past_password(site, alice)
    alice_code = alice.code()
    site.reload(["a"])
    r = b_alice.submit_code(page, alice_code)
    assert r.status_code == 303, snippet(r)
    assert b_alice.app_view("/app/")["headers"]["X-Remote-User"] == \
        alice.name

    # Signed with key a: a session, and two sign-ins half-way.
    b_bob = site.browser()
    b_bob.sign_in("/app/", bob)
    bob_session = b_bob.cookie("twostep_session")
    b_carol, carol_page = past_password(site, carol)
    b_frank, frank_page = past_password(site, frank)

    # Rotation: key b signs from now on, key a still verifies.
    site.reload(["b", "a"])
    on_both_workers(lambda: site.get_with_session(bob_session),
                    opens_as(bob))
    carol_session = finish(b_carol, carol_page, carol)
    b_dave = site.browser()
    b_dave.sign_in("/app/", dave)
    dave_session = b_dave.cookie("twostep_session")
    b_erin, erin_page = past_password(site, erin)      # pending under key b

    # The zone outlived both reloads: alice's code is still used.
    b, page = past_password(site, alice)
    r = b.submit_code(page, alice_code)
    assert r.status_code == 403 and "already been used" in Page(r).text, \
        snippet(r)

    # Key a dropped: what it signed ends, what key b signed goes on.
    site.reload(["b"])
    on_both_workers(lambda: site.get_with_session(bob_session),
                    sent_to_signin)
    for session, user in ((carol_session, carol), (dave_session, dave)):
        on_both_workers(lambda: site.get_with_session(session),
                        opens_as(user))
    finish(b_erin, erin_page, erin)
    # Frank's pending sign-in (key a): the code page sends him back to
    # sign in, and his code no longer signs him in.
    r = b_frank.get("/.twostep/verify?return_to=%2Fapp%2F")
    assert r.status_code in (302, 303) and location(r).path == SIGNIN, \
        snippet(r)
    r = b_frank.submit_code(frank_page, frank.fresh_code())
    assert r.status_code == 403, snippet(r)
    assert "twostep_session" not in set_cookies(r)
    assert b_frank.get("/app/").status_code == 302
    # Starting again works.
    b, page = past_password(site, frank)
    finish(b, page, frank)


def test_user_removed_from_the_store_loses_access(guarded):
    """An administrator removes an account (the user store without it,
    nginx -s reload): the sessions it already has stop opening pages, on
    every worker, as its half-done sign-ins do. Otherwise someone who has
    left keeps access for the rest of twostep_session_ttl (12 h)."""
    site = guarded("removal", users=3)
    leaver, stayer, halfway = site.users
    b = site.browser()
    b.sign_in("/app/", leaver)
    value = b.cookie("twostep_session")
    b2 = site.browser()
    b2.sign_in("/app/", stayer)
    b3, page = past_password(site, halfway)
    on_both_workers(lambda: site.get_with_session(value), opens_as(leaver))

    write_users(site.users_file, [stayer])
    site.reload(["a"])
    r = b3.submit_code(page, halfway.fresh_code())
    assert r.status_code == 403 and "twostep_session" not in \
        set_cookies(r), snippet(r)
    on_both_workers(lambda: site.get_with_session(
        b2.cookie("twostep_session")), opens_as(stayer))
    on_both_workers(lambda: site.get_with_session(value), sent_to_signin)


def test_new_password_or_app_ends_existing_sessions(guarded):
    """OWASP ASVS 3.3.3: after a password change or an authenticator reset
    (nginx -s reload with the edited store), the sessions made with the old
    credentials stop opening pages on every worker; other users' do not."""
    site = guarded("credentials", users=3)
    changer, resetter, bystander = site.users
    cookies = {}
    for user in site.users:
        b = site.browser()
        b.sign_in("/app/", user)
        cookies[user.name] = b.cookie("twostep_session")
        on_both_workers(lambda v=cookies[user.name]: site.get_with_session(v),
                        opens_as(user))

    changer.pw_hash = password_hash("a-new-password-42")
    resetter.secret = new_secret()
    write_users(site.users_file, site.users)
    site.reload(["a"])

    for user in (changer, resetter):
        on_both_workers(lambda v=cookies[user.name]: site.get_with_session(v),
                        sent_to_signin)
    on_both_workers(lambda: site.get_with_session(cookies[bystander.name]),
                    opens_as(bystander))
