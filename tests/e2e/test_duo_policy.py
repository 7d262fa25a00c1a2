"""What may reach a phone, and who Duo lets in: the location's
twostep_methods, one waiting push or call per user and at most 3 in 10
minutes (MFA fatigue), and Duo's preauth verdicts (deny, enroll, allow, a
user Duo does not know).
"""

import re

import pytest

from harness import (VERIFY, WAIT, Page, choose_method, location,
                     method_link, offered_methods, password_step,
                     press_send, refresh_url, send_form, snippet,
                     start_push)


def auth_calls(sim, mark):
    """The /auth/v2/auth requests (push, call, text, passcode) the
    simulator got since `mark`."""
    return [c for c in sim.api_calls(mark) if c[1] == "/auth/v2/auth"]


# ------------------------------------------------- twostep_methods totp push

def test_location_without_sms_never_offers_it(duo_site, duo_pool):
    user = duo_pool.take("auth")
    b = duo_site.browser()
    r = password_step(b, "/limited/report", user)
    assert r.status_code == 200, snippet(r)
    assert offered_methods(r) == {"totp", "push"}
    assert method_link(r, "sms") is None
    assert method_link(r, "call") is None
    assert "Text my phone" not in r.text and "Call my phone" not in r.text
    # Asking for it by name does not bring it up either.
    r = b.get(VERIFY + "?method=sms&return_to=%2Flimited%2Freport"
              "&methods=totp%2Cpush")
    assert r.status_code == 200, snippet(r)
    assert "sms" not in offered_methods(r)
    assert Page(r).heading == "Enter code"


def forged_sms_post(duo_site, duo_pool, **override):
    """A user at /limited/ (totp push) posts the push page's form with
    method=sms (and `override`): returns (response, user, browser, mark)."""
    user = duo_pool.take("auth")
    b = duo_site.browser()
    r = choose_method(b, password_step(b, "/limited/x", user), "push")
    data = send_form(r)
    assert data["methods"] == "totp,push", data
    data.update(method="sms", **override)
    mark = duo_site.sim.log_size()
    return b.post(VERIFY, data), user, b, mark


def test_forged_sms_post_is_refused_where_sms_is_not_allowed(duo_site,
                                                            duo_pool):
    r, user, b, mark = forged_sms_post(duo_site, duo_pool)
    assert r.status_code == 403, snippet(r)
    assert "Sign-in method not available" in Page(r).text
    assert auth_calls(duo_site.sim, mark) == []
    assert duo_site.sim.last_sms(user.name) is None
    assert duo_site.sim.transactions(user.name) == []
    assert b.cookie("twostep_session") is None


@pytest.mark.parametrize("methods", ["totp,push,call,sms", "sms", None])
def test_forged_sms_post_with_forged_method_list(duo_site, duo_pool,
                                                 methods):
    """The same forgery, with the form's "methods" list (which only
    repeats the location's twostep_methods) rewritten or left out: still
    no text may go out for a sign-in to /limited/, which takes totp and
    push only. (The server has other locations that take sms, but this
    sign-in is for /limited/x.)"""
    override = {"methods": methods} if methods else {}
    user = duo_pool.take("auth")
    b = duo_site.browser()
    r = choose_method(b, password_step(b, "/limited/x", user), "push")
    data = send_form(r)
    data.update(method="sms", **override)
    if methods is None:
        del data["methods"]
    mark = duo_site.sim.log_size()
    r = b.post(VERIFY, data)
    sent = duo_site.sim.last_sms(user.name)
    assert r.status_code == 403 and sent is None, (
        "a forged POST (method=sms, methods=%r) for a sign-in to /limited/ "
        "(twostep_methods totp push) got %d and the simulator texted %s; "
        "Duo calls: %r" % (methods, r.status_code,
                           "a code" if sent else "nothing",
                           auth_calls(duo_site.sim, mark)))


def test_sms_session_does_not_open_a_location_without_sms(duo_site,
                                                          duo_pool):
    """However a text-message session came about, /limited/ (totp push)
    does not take it: it asks for a second step of its own kinds."""
    user = duo_pool.take("auth")
    sim = duo_site.sim
    b = duo_site.browser()
    r = choose_method(b, password_step(b, "/app/", user), "sms")
    r = press_send(b, r)
    r = b.submit_code(r, sim.last_sms(user.name)["passcode"], method="sms")
    assert r.status_code == 303, snippet(r)
    assert b.app_view("/app/")["headers"]["X-Twostep-Method"] == "sms"
    r = b.get("/limited/x")
    assert r.status_code == 302, snippet(r)
    steps = b.follow(r)
    # Straight to a second step (no password again), push or totp.
    while steps.status_code in (302, 303):
        steps = b.follow(steps)
    assert steps.status_code == 200, snippet(steps)
    assert offered_methods(steps) == {"totp", "push"}


# ----------------------------------------------- pushes and calls: limits

def test_one_waiting_push_per_user(duo_site, duo_pool):
    """While a push waits, a second "Send request" or "Call me" (from other
    browsers, or another tab) is refused with 429 and reaches no phone;
    once the first is answered the next may go."""
    user = duo_pool.take("auth")
    sim = duo_site.sim
    b = duo_site.browser()
    wait = start_push(b, "/app/", user)
    mark = sim.log_size()
    for method in ("push", "push", "call"):
        other = duo_site.browser()
        page = choose_method(other, password_step(other, "/app/", user),
                             method)
        r = press_send(other, page)
        assert r.status_code == 429, snippet(r)
        assert "A request is already waiting on your phone" in \
            Page(r).text, snippet(r, 3000)
        assert other.cookie("twostep_session") is None
    assert auth_calls(sim, mark) == []
    assert len(sim.transactions(user.name)) == 1

    # Answered, the next one may go.
    sim.respond(user.name, "deny")
    r = b.get(refresh_url(wait))
    assert r.status_code == 403, snippet(r)
    assert "The request was denied" in Page(r).text
    other = duo_site.browser()
    page = choose_method(other, password_step(other, "/app/", user), "push")
    r = press_send(other, page)
    assert r.status_code == 303 and location(r).path == WAIT, snippet(r)
    assert len(sim.transactions(user.name)) == 2


def test_at_most_three_pushes_in_ten_minutes(duo_site, duo_pool):
    """The fourth request in ten minutes: the page says how long to wait,
    from the real window, and stops offering push, call and text (which
    would be refused the same way) while the app code still works."""
    user = duo_pool.take("auth")
    sim = duo_site.sim
    b = duo_site.browser()
    for n in range(3):
        method = "call" if n == 1 else "push"
        wait = start_push(b, "/app/", user, method=method)
        sim.respond(user.name, "deny")
        r = b.get(refresh_url(wait))
        assert r.status_code == 403, snippet(r)
        assert "The request was denied" in Page(r).text
        if n < 2:
            assert offered_methods(r) == {"totp", "push", "call", "sms"}
    # After the third, the page it ended on offers the app code only.
    assert offered_methods(r) == {"totp"}, snippet(r, 3000)
    page = password_step(b, "/app/", user)
    assert offered_methods(page) == {"totp"}, snippet(page, 3000)
    assert Page(page).heading == "Enter code"

    # Posted all the same (an old tab): 429 with the minutes left.
    fields = dict(Page(page).form(VERIFY).fields)
    fields.pop("code", None)
    mark = sim.log_size()
    for method in ("push", "call", "sms"):
        fields.update(method=method, action="send")
        r = b.post(VERIFY, fields)
        assert r.status_code == 429, snippet(r)
        text = Page(r).text
        assert "Too many requests were sent to your phone. Try again in " \
            in text, snippet(r, 3000)
        # The window began with the first push, seconds ago.
        assert re.search(r"Try again in (9|10) minutes, or sign in another "
                         r"way\.", text), text
        assert offered_methods(r) == {"totp"}
    assert auth_calls(sim, mark) == []
    assert len(sim.transactions(user.name)) == 3

    # The app code still works ("or sign in another way").
    r = b.submit_code(page, user.fresh_code())
    assert r.status_code == 303, snippet(r)
    assert b.app_view("/app/")["headers"]["X-Twostep-Method"] == "totp"


# -------------------------------------------------- what preauth decides

def test_user_denied_by_duo(duo_site, duo_pool):
    for name in ("duo-deny", "duo-deny-notp"):
        b = duo_site.browser()
        r = password_step(b, "/app/", duo_pool[name])
        assert r.status_code == 403, snippet(r)
        assert "Access denied" in Page(r).text
        assert not Page(r).forms
        assert b.cookie("twostep_session") is None


def test_user_not_enrolled_at_duo(duo_site, duo_pool):
    """Not enrolled: with an app code, that is all the page offers; without
    one, 403 "not set up"."""
    b = duo_site.browser()
    r = password_step(b, "/app/", duo_pool["duo-enroll"])
    assert r.status_code == 200, snippet(r)
    assert offered_methods(r) == {"totp"}
    b = duo_site.browser()
    r = password_step(b, "/app/", duo_pool["duo-enroll-notp"])
    assert r.status_code == 403, snippet(r)
    assert "not set up" in Page(r).text
    assert b.cookie("twostep_session") is None


def test_user_unknown_to_duo(duo_site, duo_pool):
    """Duo does not know the name (the simulator answers "enroll" for
    unknown users, as Duo's new-user policy does by default): the app code
    only, or 403 "not set up" without one."""
    b = duo_site.browser()
    r = password_step(b, "/app/", duo_pool["duo-unknown"])
    assert r.status_code == 200, snippet(r)
    assert offered_methods(r) == {"totp"}
    b = duo_site.browser()
    r = password_step(b, "/app/", duo_pool["duo-unknown-notp"])
    assert r.status_code == 403, snippet(r)
    assert "not set up" in Page(r).text
    assert b.cookie("twostep_session") is None


def test_duo_bypass_is_not_a_second_step(duo_site, duo_pool):
    """Duo's "allow" (bypass) does not open a location that asked for a
    second step: with an app code the user still types it, without one
    there is no way in."""
    b = duo_site.browser()
    r = password_step(b, "/app/", duo_pool["duo-allow"])
    assert r.status_code == 200, snippet(r)
    assert offered_methods(r) == {"totp"}
    assert b.cookie("twostep_session") is None
    b = duo_site.browser()
    r = password_step(b, "/app/", duo_pool["duo-allow-notp"])
    assert r.status_code == 403, snippet(r)
    assert b.cookie("twostep_session") is None


def finish(b, r, limit=6):
    """Follows redirects and the waiting page's <noscript> refresh, as a
    browser without JavaScript would, until a page that stays."""
    for _ in range(limit):
        if r.status_code in (302, 303):
            r = b.follow(r)
        elif r.status_code == 200 and "<noscript>" in r.text:
            r = b.get(refresh_url(r))
        else:
            break
    return r


@pytest.mark.parametrize("name", ["duo-allow", "duo-enroll", "duo-unknown"])
@pytest.mark.parametrize("method", ["push", "call", "sms-code"])
def test_forged_method_for_a_user_duo_offers_nothing(duo_site, duo_pool,
                                                    name, method):
    """The page offered only the app code (Duo said bypass, enroll, or
    does not know the user); the user edits the form to method=push or
    call and sends it anyway, or to method=sms with any 7 digits as the
    code. That must not sign in: no second step was passed (Duo's bypass
    is not honoured, says the module)."""
    user = duo_pool[name]
    b = duo_site.browser()
    r = password_step(b, "/app/", user)
    assert offered_methods(r) == {"totp"}
    data = dict(Page(r).form(VERIFY).fields)
    if method == "sms-code":
        data.update(method="sms", code="1234567")
    else:
        data.update(method=method, action="send")
    r = finish(b, b.post(VERIFY, data))
    signed_in = b.cookie("twostep_session") is not None
    assert not signed_in, (
        "a forged %s for %s (Duo preauth: %s) signed in without a second "
        "step: %s" % (method, name, name.split("-")[1], snippet(r)))
    assert r.status_code >= 400, snippet(r)
