"""The two sign-outs: "Sign out" (/.twostep/logout) ends this browser's
session only; "Sign out everywhere" in security info ends every session of
the user, in every browser and on every worker, at once, and leaves other
users' sessions alone. Neither asks for a fresh second step: taking access
away needs none."""

import re
import time

from harness import (LOGOUT, SIGNIN, Page, cookie_cleared, get_with_cookie,
                     location, on_both_workers, remember_sensitive,
                     set_cookies, snippet)
from test_selfservice import (SelfServiceSite, manage_token, new_user,
                              password_to_verify, recovery_link,
                              security_page)

SECURITY = "/.twostep/security-info"


def opens_as(name):
    def check(r):
        assert r.status_code == 200, snippet(r)
        assert r.json()["headers"]["X-Remote-User"] == name
    return check


def sent_to_signin(r):
    assert r.status_code == 302, snippet(r)
    assert location(r).path == SIGNIN, r.headers["Location"]


def test_sign_out_here_and_everywhere(nginx_factory, workdir, app):
    amy, ben = new_user("out-amy"), new_user("out-ben")
    site = SelfServiceSite(nginx_factory, workdir, app, "signout-all",
                           [amy, ben], workers=2)

    def session_of(b):
        return b.cookie("twostep_session")

    def with_session(value):
        return lambda: get_with_cookie(site.url, "/app/?format=json",
                                       "twostep_session=" + value)

    # Each user passes at most two codes (a code's time step counts once,
    # and the next one at most): amy's third sign-in takes a recovery code.
    laptop, phone = site.browser(), site.browser()
    ben1, ben2 = site.browser(), site.browser()
    laptop.sign_in("/app/", amy)
    phone.sign_in("/app/", amy)
    ben1.sign_in("/app/", ben)
    ben2.sign_in("/app/", ben)
    laptop_s, phone_s, ben1_s, ben2_s = map(session_of,
                                            (laptop, phone, ben1, ben2))

    # "Sign out" in one of ben's browsers: that session ends, his other not.
    r = ben2.get(LOGOUT)
    r = ben2.post(LOGOUT, dict(Page(r).form(LOGOUT).fields))
    assert Page(r).heading == "You have signed out", snippet(r)
    on_both_workers(with_session(ben2_s), sent_to_signin)
    on_both_workers(with_session(ben1_s), opens_as(ben.name))

    # amy keeps recovery codes, then chooses "Sign out everywhere" in the
    # laptop's security info.
    r = security_page(laptop)
    r = laptop.post(SECURITY, {"action": "recovery",
                               "form_token": manage_token(r)})
    codes = re.findall(r"<li><code>([^<]+)</code></li>", r.text)
    for c in codes:
        remember_sensitive("code", c)
    assert len(codes) == 10, snippet(r)

    on_both_workers(with_session(phone_s), opens_as(amy.name))
    r = security_page(laptop)
    page = Page(r)
    assert "Sign out everywhere" in page.text
    form = [f for f in page.forms
            if f.fields.get("action") == "signout-everywhere"]
    assert len(form) == 1, page.forms
    r = laptop.post(SECURITY, dict(form[0].fields))
    assert r.status_code == 200, snippet(r)
    page = Page(r)
    assert page.heading == "You have signed out", snippet(r)
    assert "Every session of your account has ended, in every browser " \
        "and on every device." in page.text
    cookies = set_cookies(r)
    assert cookie_cleared(*cookies["twostep_session"]), r.headers
    assert laptop.cookie("twostep_session") is None

    # Every copy of every session of amy, on either worker: gone.
    on_both_workers(with_session(laptop_s), sent_to_signin)
    on_both_workers(with_session(phone_s), sent_to_signin)
    # ben is not affected.
    on_both_workers(with_session(ben1_s), opens_as(ben.name))
    # A forged form (no token) changes nothing.
    r = ben1.post(SECURITY, {"action": "signout-everywhere"})
    assert r.status_code == 403, snippet(r)
    on_both_workers(with_session(ben1_s), opens_as(ben.name))

    # amy signs in again afterwards (in a later second), as usual.
    time.sleep(1.1)
    again = site.browser()
    r = again.follow(password_to_verify(again, "/app/", amy.name))
    r = again.get(recovery_link(r))
    r = again.submit_code(r, codes[0])
    assert r.status_code == 303, snippet(r)
    on_both_workers(with_session(session_of(again)), opens_as(amy.name))
