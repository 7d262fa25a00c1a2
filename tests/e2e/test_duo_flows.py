"""Push, phone call and text message through Duo, end to end: the real nginx
with the module, examples/duo_simulator.py as Duo (its control API plays the
user's phone) and the legacy app behind. Each test asserts what the user
sees: the pages, where they lead, and what the application finally gets.
"""

import time

import pytest
import requests

from harness import (STATUS, VERIFY, WAIT, Page, choose_method, location,
                     offered_methods, page_links, password_step, press_send,
                     refresh_url, snippet, start_push, wait_status_url)


def check(browser, wait_page):
    """What the <noscript> refresh of the waiting page does: wait?check=1."""
    url = refresh_url(wait_page)
    assert url.startswith(WAIT + "?") and url.endswith("&check=1"), url
    return browser.get(url)


def assert_signed_in(browser, r, path, method, user):
    """r is the 303 that finishes sign-in: a session, back to `path`, and
    the app is told who and how."""
    assert r.status_code == 303, snippet(r)
    assert location(r).path == path, snippet(r)
    assert browser.cookie("twostep_session"), "no session cookie"
    seen = browser.app_view(path)
    assert seen["headers"]["X-Remote-User"] == user.name
    assert seen["headers"]["X-Twostep-Method"] == method
    assert abs(int(seen["headers"]["X-Twostep-Auth-Time"])
               - time.time()) < 30


def assert_refused(browser, r, status, text):
    """A page that says `text`, and no session."""
    page = Page(r)
    assert r.status_code == status, snippet(r)
    assert text in page.text, snippet(r, 3000)
    assert browser.cookie("twostep_session") is None
    again = browser.get("/app/")
    assert again.status_code == 302, snippet(again)


# ------------------------------------------------------------- the pages

def test_second_step_page_offers_what_duo_reports(duo_site, duo_pool):
    """After the password the page offers the app code, and push, call and
    text under "Sign in another way" as the user's Duo device can do
    them; nothing reaches the phone yet."""
    user = duo_pool.take("auth")
    b = duo_site.browser()
    mark = duo_site.sim.log_size()
    r = password_step(b, "/app/", user)
    assert r.status_code == 200, snippet(r)
    page = Page(r)
    assert page.heading == "Enter code"
    assert "Sign in another way" in page.text
    assert offered_methods(r) == {"totp", "push", "call", "sms"}
    calls = duo_site.sim.api_calls(mark)
    assert [c[1] for c in calls] == ["/auth/v2/preauth"], calls
    assert duo_site.sim.transactions(user.name) == []

    # A device that can only take pushes: no call, no text.
    push_only = duo_pool.take("pushonly")
    r = password_step(duo_site.browser(), "/app/", push_only)
    assert offered_methods(r) == {"totp", "push"}


def test_push_page_sends_only_on_the_button(duo_site, duo_pool):
    user = duo_pool.take("auth")
    b = duo_site.browser()
    r = choose_method(b, password_step(b, "/app/", user), "push")
    page = Page(r)
    assert r.status_code == 200, snippet(r)
    assert page.heading == "Verify your identity"
    form = page.form(VERIFY)
    assert form.fields["method"] == "push"
    assert form.fields["action"] == "send"
    assert "Send request" in page.text
    # Opening the page sent nothing.
    assert duo_site.sim.transactions(user.name) == []


# ------------------------------------------------------------------- push

def test_approved_push_signs_in(duo_site, duo_pool):
    user = duo_pool.take("auth")
    sim = duo_site.sim
    b = duo_site.browser()
    r = start_push(b, "/app/deep/page?x=1", user)
    page = Page(r)
    assert page.heading == "Approve the sign-in request on your phone"
    assert "<noscript>" in r.text and "check=1" in refresh_url(r)
    assert b.cookie("twostep_session") is None
    pushes = sim.pending(user.name)
    assert len(pushes) == 1 and pushes[0]["factor"] == "push", pushes
    assert pushes[0]["info"].get("ipaddr") == "127.0.0.1"

    sim.respond(user.name, "approve")
    # The page's script learns it is over...
    status = b.get(wait_status_url(r))
    assert status.status_code == 200, snippet(status)
    assert status.headers["Content-Type"].startswith("application/json")
    assert status.json() == {"state": "done"}
    # ...and moves on, like the <noscript> refresh does.
    r = check(b, r)
    assert_signed_in(b, r, "/app/deep/page", "push", user)
    assert location(r).query == "x=1"


def test_approved_push_signs_in_one_browser_only(duo_site, duo_pool):
    """A copy of the pending sign-in (say, a stolen cookie) cannot use the
    same approved push a second time."""
    user = duo_pool.take("auth")
    b = duo_site.browser()
    r = start_push(b, "/app/", user)
    thief = duo_site.browser()
    thief.set_cookie("twostep_pending", b.cookie("twostep_pending"))
    duo_site.sim.respond(user.name, "approve")
    first = check(b, r)
    assert_signed_in(b, first, "/app/", "push", user)
    second = check(thief, r)
    assert second.status_code == 403, snippet(second)
    assert "This page has expired" in Page(second).text
    assert thief.cookie("twostep_session") is None


def test_denied_push(duo_site, duo_pool):
    user = duo_pool.take("auth")
    b = duo_site.browser()
    r = start_push(b, "/app/", user)
    duo_site.sim.respond(user.name, "deny")
    r = check(b, r)
    assert_refused(b, r, 403, "The request was denied")
    # The user may send a new one right away (the denied one is over).
    r = password_step(b, "/app/", user)
    r = press_send(b, choose_method(b, r, "push"))
    assert r.status_code == 303 and location(r).path == WAIT, snippet(r)


def test_push_reported_as_fraud(duo_site, duo_pool):
    """Reported on the phone: the browser is told it was refused, not by
    whom (more in test_fraud.py)."""
    user = duo_pool.take("auth")
    b = duo_site.browser()
    mark = duo_site.nginx.log_size()
    r = start_push(b, "/app/", user)
    duo_site.sim.respond(user.name, "fraud")
    r = check(b, r)
    assert_refused(b, r, 403, "This sign-in was refused.")
    assert "reported" not in Page(r).text
    assert 'sign-in reported as fraud, user: "%s"' % user.name in \
        duo_site.nginx.log_text(mark)


def test_approved_pressed_before_approving(duo_site, duo_pool):
    """"I've approved it" before anything arrived: the page says so and
    keeps waiting; once approved, the same link signs in."""
    user = duo_pool.take("auth")
    b = duo_site.browser()
    r = start_push(b, "/app/", user)
    links = [href for href, text in page_links(r)
             if text == "I've approved it"]
    assert len(links) == 1 and links[0].endswith("&check=1&approved=1"), \
        page_links(r)
    assert "No approval has arrived yet" not in Page(r).text

    early = b.get(links[0])
    page = Page(early)
    assert early.status_code == 200, snippet(early)
    assert page.heading == "Approve the sign-in request on your phone"
    assert "No approval has arrived yet." in page.text, snippet(early, 3000)
    assert "approved=1" not in refresh_url(early)
    assert b.get(wait_status_url(early)).json() == {"state": "waiting"}
    assert b.cookie("twostep_session") is None

    duo_site.sim.respond(user.name, "approve")
    assert_signed_in(b, b.get(links[0]), "/app/", "push", user)


def test_call_pages_say_any_key_as_duo_does(duo_site, duo_pool):
    """Duo's call asks for any key: so do the pages, and so does the
    simulator's phone."""
    user = duo_pool.take("auth")
    b = duo_site.browser()
    page = choose_method(b, password_step(b, "/app/", user), "call")
    assert "Answer it and press any key to approve." in Page(page).text
    r = b.follow(press_send(b, page))
    assert Page(r).heading == "Answer the call and press any key"
    assert "pound" not in r.text
    phone = requests.get(duo_site.sim.base + "/phone/" + user.name,
                         timeout=10).text
    assert "Press any key to approve" in phone, phone[:2000]
    duo_site.sim.respond(user.name, "deny")


def test_push_that_times_out(duo_site, duo_pool):
    """Nobody answers: the simulator ends the push as "timeout" after
    1.5 s (the user's tx_timeout_seconds)."""
    user = duo_pool.take("tout")
    b = duo_site.browser()
    r = start_push(b, "/app/", user)
    time.sleep(1.8)
    r = check(b, r)
    assert_refused(b, r, 403, "The request timed out")
    txs = duo_site.sim.transactions(user.name)
    assert [t["status"] for t in txs] == ["timeout"], txs


def test_waiting_page_while_nobody_answers(duo_site, duo_pool):
    """Before the phone answers, the long-poll says "waiting" (held for the
    simulator's 2 s once the "pushed" news is told) and the <noscript> refresh shows the waiting page
    again; neither signs in."""
    user = duo_pool.take("auth")
    b = duo_site.browser()
    r = start_push(b, "/app/", user)
    # The first poll hears "pushed" at once; the next one is held.
    status = b.get(wait_status_url(r))
    assert status.json() == {"state": "waiting"}, snippet(status)
    t = time.monotonic()
    status = b.get(wait_status_url(r))
    took = time.monotonic() - t
    assert status.json() == {"state": "waiting"}, snippet(status)
    assert 1.5 < took < 10, took
    again = check(b, r)
    assert again.status_code == 200, snippet(again)
    assert Page(again).heading == "Approve the sign-in request on your phone"
    assert b.cookie("twostep_session") is None
    duo_site.sim.respond(user.name, "approve")
    assert_signed_in(b, check(b, again), "/app/", "push", user)


def test_status_without_a_pending_request(duo_site):
    """The script's endpoint for a browser with nothing pending: "done",
    and the check then leads to sign-in, never to a session."""
    b = duo_site.browser()
    r = b.get(STATUS + "?return_to=%2Fapp%2F&methods=push")
    assert r.status_code == 200 and r.json() == {"state": "done"}, \
        snippet(r)
    r = b.get(WAIT + "?return_to=%2Fapp%2F&methods=push&check=1")
    assert r.status_code in (302, 303), snippet(r)
    assert b.cookie("twostep_session") is None


# ------------------------------------------------------------------- call

def test_call_answered_and_key_pressed(duo_site, duo_pool):
    user = duo_pool.take("auth")
    sim = duo_site.sim
    b = duo_site.browser()
    r = choose_method(b, password_step(b, "/app/", user), "call")
    assert Page(r).heading == "Verify your identity"
    assert "Call me" in Page(r).text
    r = press_send(b, r)
    assert r.status_code == 303 and location(r).path == WAIT, snippet(r)
    wait = b.follow(r)
    assert Page(wait).heading == "Answer the call and press any key"
    calls = sim.pending(user.name)
    assert [c["factor"] for c in calls] == ["phone"], calls

    sim.respond(user.name, "answer")
    # Answered but no key yet: still waiting, no session.
    r = check(b, wait)
    assert r.status_code == 200, snippet(r)
    assert Page(r).heading == "Answer the call and press any key"
    assert b.cookie("twostep_session") is None

    sim.respond(user.name, "press1")
    assert_signed_in(b, check(b, r), "/app/", "call", user)


def test_call_declined(duo_site, duo_pool):
    user = duo_pool.take("auth")
    b = duo_site.browser()
    wait = start_push(b, "/app/", user, method="call")
    duo_site.sim.respond(user.name, "deny")
    assert_refused(b, check(b, wait), 403, "The request was denied")


# ------------------------------------------------------------------- text

def send_text(b, user, path="/app/"):
    r = choose_method(b, password_step(b, path, user), "sms")
    page = Page(r)
    assert r.status_code == 200, snippet(r)
    assert page.heading == "Verify your identity"
    assert "Send code" in page.text
    r = press_send(b, r)
    assert r.status_code == 200, snippet(r)
    page = Page(r)
    assert page.heading == "Enter code"
    assert "We texted a code to your phone." in page.text
    form = page.form(VERIFY)
    assert form.fields["method"] == "sms"
    return r


def test_text_code_signs_in(duo_site, duo_pool):
    user = duo_pool.take("auth")
    sim = duo_site.sim
    b = duo_site.browser()
    assert sim.last_sms(user.name) is None
    r = send_text(b, user, "/app/texted")
    sms = sim.last_sms(user.name)
    assert sms and not sms["used"], sms
    r = b.submit_code(r, sms["passcode"], method="sms")
    assert_signed_in(b, r, "/app/texted", "sms", user)
    assert sim.last_sms(user.name)["used"]


def test_text_code_typed_with_spaces(duo_site, duo_pool):
    """Codes are often typed as shown, "123 4567"."""
    user = duo_pool.take("auth")
    b = duo_site.browser()
    r = send_text(b, user)
    code = duo_site.sim.last_sms(user.name)["passcode"]
    r = b.submit_code(r, code[:3] + " " + code[3:], method="sms")
    assert_signed_in(b, r, "/app/", "sms", user)


def test_wrong_text_code(duo_site, duo_pool):
    """A wrong code: 403 "That code didn't work", the form again; three
    wrong codes (twostep_lockout 3) lock the account, and while locked
    even the right code is refused without asking Duo."""
    user = duo_pool.take("auth")
    sim = duo_site.sim
    b = duo_site.browser()
    r = send_text(b, user)
    right = sim.last_sms(user.name)["passcode"]
    wrong = "1000000" if right != "1000000" else "2000000"
    mark = sim.log_size()
    for attempt in range(2):
        r = b.submit_code(r, wrong, method="sms")
        assert r.status_code == 403, snippet(r)
        page = Page(r)
        assert "That code didn't work" in page.text
        assert page.form(VERIFY).fields["method"] == "sms"
        assert b.cookie("twostep_session") is None
    r3 = b.submit_code(r, wrong, method="sms")
    assert r3.status_code == 429, snippet(r3)
    assert "Too many attempts" in Page(r3).text
    locked = b.submit_code(r, right, method="sms")
    assert locked.status_code == 429, snippet(locked)
    assert b.cookie("twostep_session") is None
    checks = [c for c in sim.api_calls(mark) if c[1] == "/auth/v2/auth"]
    assert len(checks) == 3, checks
    assert not sim.last_sms(user.name)["used"]


def test_text_code_used_twice(duo_site, duo_pool):
    """A texted code signs in once: typed again in a new sign-in it is
    refused, and the new text's code works."""
    user = duo_pool.take("auth")
    sim = duo_site.sim
    first = duo_site.browser()
    r = send_text(first, user)
    old = sim.last_sms(user.name)["passcode"]
    assert_signed_in(first, first.submit_code(r, old, method="sms"),
                     "/app/", "sms", user)

    second = duo_site.browser()
    r = send_text(second, user)
    new = sim.last_sms(user.name)["passcode"]
    if new == old:
        pytest.skip("the simulator texted the same 7-digit code twice")
    refused = second.submit_code(r, old, method="sms")
    assert refused.status_code == 403, snippet(refused)
    assert "That code didn't work" in Page(refused).text
    assert second.cookie("twostep_session") is None
    r = second.submit_code(refused, new, method="sms")
    assert_signed_in(second, r, "/app/", "sms", user)


def test_text_code_that_is_not_digits(duo_site, duo_pool):
    """Not a code at all: refused without asking Duo."""
    user = duo_pool.take("auth")
    b = duo_site.browser()
    r = send_text(b, user)
    # The text's own line may still be on its way to the log.
    duo_site.sim.settle()
    mark = duo_site.sim.log_size()
    r = b.submit_code(r, "abcdefg", method="sms")
    assert r.status_code == 403, snippet(r)
    assert "That code didn't work" in Page(r).text
    assert duo_site.sim.api_calls(mark) == []


# ------------------------------------------------------ the app is told

def test_app_receives_the_method(duo_site, duo_pool):
    """X-Twostep-Method is push, call or sms, whichever the user used
    (each sign-in above checks it too; here all three side by side)."""
    sim = duo_site.sim
    seen = {}
    for method in ("push", "call", "sms"):
        user = duo_pool.take("auth")
        b = duo_site.browser()
        if method == "sms":
            r = send_text(b, user)
            r = b.submit_code(r, sim.last_sms(user.name)["passcode"],
                              method="sms")
        else:
            wait = start_push(b, "/app/", user, method=method)
            sim.respond(user.name, "approve")
            r = check(b, wait)
        assert r.status_code == 303, snippet(r)
        seen[method] = b.app_view("/app/")["headers"]["X-Twostep-Method"]
    assert seen == {"push": "push", "call": "call", "sms": "sms"}


def test_duo_username_maps_the_user(duo_site, duo_pool):
    """users.json "duo_username": Duo knows duo-mapped as duo-remote."""
    user = duo_pool["duo-mapped"]
    b = duo_site.browser()
    wait = start_push(b, "/app/", user)
    assert duo_site.sim.pending("duo-remote"), \
        duo_site.sim.transactions()
    duo_site.sim.respond("duo-remote", "approve")
    assert_signed_in(b, check(b, wait), "/app/", "push", user)
