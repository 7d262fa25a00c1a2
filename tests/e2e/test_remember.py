"""twostep_remember: "Don't ask again for N days on this device".

A user who ticks the box on the second-step page gets a device cookie of its
own; on that browser the password alone signs in afterwards
($twostep_method "remembered"), until the user forgets their remembered
devices in security info, the password or the authenticator changes, or the
time passes. A location with twostep_max_age, or whose twostep_methods leave
"remembered" out, still asks for a second step, and a remembered session is
never fresh enough to change security info."""

import json
import time

from harness import (LOGOUT, SIGNIN, VERIFY, Page, location, new_secret,
                     proxy_to, set_cookies, snippet)
from test_selfservice import (SECURITY, SelfServiceSite, change,
                              manage_token, new_user, security_page)

REMEMBER_30 = "Don't ask again for 30 days on this device"
DEVICE = "twostep_device"


def remember_site(nginx_factory, workdir, app, name, users, remember="30d",
                  workers=1):
    """A self-service site with twostep_remember and two extra locations:
    /admin/ (twostep_max_age 5m) and /strict/ (twostep_methods totp)."""
    server_extra = """
        {remember}
        location /admin/ {{
            twostep on;
            twostep_max_age 5m;
            {proxy}
        }}
        location /strict/ {{
            twostep on;
            twostep_methods totp;
            {proxy}
        }}
""".format(remember="twostep_remember %s;" % remember if remember else "",
           proxy=proxy_to(app.port))
    return SelfServiceSite(nginx_factory, workdir, app, name, users,
                           workers=workers, server_extra=server_extra)


def password_step(b, target, user):
    """GET target, then the password: the response of the password POST."""
    r = b.get(target)
    assert r.status_code == 302, snippet(r)
    assert location(r).path == SIGNIN, r.headers["Location"]
    r = b.follow(r)
    assert r.status_code == 200, snippet(r)
    return b.submit_password(r, user.name, user.password)


def code_page_after_password(b, target, user):
    r = password_step(b, target, user)
    assert r.status_code == 303, snippet(r)
    assert location(r).path == VERIFY, r.headers["Location"]
    r = b.follow(r)
    assert r.status_code == 200 and Page(r).heading == "Enter code", \
        snippet(r)
    return r


def remember_box(r):
    """The "Don't ask again" checkbox of the code form, if any."""
    form = Page(r).form(VERIFY)
    boxes = [i for i in form.inputs if i[0] == "remember"]
    return boxes[0] if boxes else None


def sign_in_remembering(b, target, user):
    """Password, then a code with the box ticked: the device cookie."""
    r = code_page_after_password(b, target, user)
    assert remember_box(r) == ("remember", "checkbox", "1"), snippet(r, 3000)
    assert REMEMBER_30 in Page(r).text
    r = b.submit_code(r, user.fresh_code(), remember="1")
    assert r.status_code == 303, snippet(r)
    cookies = set_cookies(r)
    assert DEVICE in cookies, r.headers
    value, attrs = cookies[DEVICE]
    assert attrs.get("max-age") == str(30 * 86400), attrs
    assert attrs.get("httponly") is True and attrs.get("path") == "/", attrs
    assert b.cookie(DEVICE) == value
    return value


def sign_out_here(b):
    r = b.get(LOGOUT)
    form = Page(r).form(LOGOUT)
    r = b.post(LOGOUT, dict(form.fields))
    assert r.status_code == 200 and \
        Page(r).heading == "You have signed out", snippet(r)
    assert b.cookie("twostep_session") is None


def method_of(b, path="/app/"):
    return b.app_view(path)["headers"].get("X-Twostep-Method")


def test_password_alone_on_a_remembered_device(nginx_factory, workdir, app):
    # Each user passes at most two codes here: the server takes a code's
    # time step once, and the next one at most (RFC 6238 5.2 and drift).
    alice, bob = new_user("rem-alice"), new_user("rem-bob")
    frank, grace = new_user("rem-frank"), new_user("rem-grace")
    site = remember_site(nginx_factory, workdir, app, "remember",
                         [alice, bob, frank, grace])

    # Not ticked: no device cookie.
    b = site.browser()
    r = code_page_after_password(b, "/app/", frank)
    r = b.submit_code(r, frank.fresh_code())
    assert r.status_code == 303 and DEVICE not in set_cookies(r), r.headers

    b = site.browser()
    device = sign_in_remembering(b, "/app/", alice)
    assert method_of(b) == "totp"
    sign_out_here(b)
    # "Sign out" ends this browser's session, not its remembered device.
    assert b.cookie(DEVICE) == device

    # The password alone: straight back to the page asked for.
    r = password_step(b, "/app/again?x=1", alice)
    assert r.status_code == 303, snippet(r)
    assert location(r).path == "/app/again", r.headers["Location"]
    assert "twostep_session" in set_cookies(r)
    assert method_of(b) == "remembered"

    # twostep_methods without "remembered": a second step first.
    r = b.get("/strict/x")
    assert r.status_code == 302 and location(r).path == SIGNIN, snippet(r)
    r = b.follow(r)
    r = b.follow(r)
    assert Page(r).heading == "Enter code", snippet(r)
    assert remember_box(r) is None        # a step-up offers no box
    r = b.submit_code(r, alice.fresh_code())
    assert r.status_code == 303, snippet(r)
    assert method_of(b, "/strict/x") == "totp"

    # twostep_max_age asks for a fresh second step, remembered or not.
    g = site.browser()
    sign_in_remembering(g, "/app/", grace)
    sign_out_here(g)
    r = password_step(g, "/admin/panel", grace)
    assert r.status_code == 303 and location(r).path == "/admin/panel"
    r = g.get("/admin/panel")
    assert r.status_code == 302 and location(r).path == SIGNIN, snippet(r)
    r = g.follow(r)
    r = g.follow(r)
    assert Page(r).heading == "Enter code", snippet(r)
    r = g.submit_code(r, grace.fresh_code())
    assert r.status_code == 303, snippet(r)
    assert method_of(g, "/admin/panel") == "totp"

    # The device is remembered for alice only: bob is asked as usual.
    other = site.browser()
    other.set_cookie(DEVICE, device)
    code_page_after_password(other, "/app/", bob)
    # A wrong password is still a wrong password.
    fresh = site.browser()
    fresh.set_cookie(DEVICE, device)
    r = fresh.get("/app/")
    r = fresh.follow(r)
    r = fresh.submit_password(r, alice.name, "not the password")
    assert r.status_code == 403, snippet(r)
    # A forged or altered cookie stands for nothing.
    forged = site.browser()
    forged.set_cookie(DEVICE, device[:-2] + ("AA" if device[-2:] != "AA"
                                             else "BB"))
    code_page_after_password(forged, "/app/", alice)


def test_a_remembered_session_cannot_change_security_info(
        nginx_factory, workdir, app):
    carol = new_user("rem-carol")
    site = remember_site(nginx_factory, workdir, app, "remember-fresh",
                         [carol])
    b = site.browser()
    sign_in_remembering(b, "/app/", carol)
    sign_out_here(b)
    r = password_step(b, "/app/", carol)
    assert r.status_code == 303 and method_of(b) == "remembered"
    before = site.store_bytes()
    r = security_page(b)
    r = change(b, manage_token(r), action="recovery")
    # Sent for a second step first; nothing changed.
    assert r.status_code == 303 and location(r).path == SIGNIN, snippet(r)
    assert site.store_bytes() == before


def test_forgetting_devices_and_new_credentials_end_remembering(
        nginx_factory, workdir, app):
    dave = new_user("rem-dave")
    site = remember_site(nginx_factory, workdir, app, "remember-forget",
                         [dave])
    b = site.browser()
    device = sign_in_remembering(b, "/app/", dave)

    # Another browser holding a copy of the device cookie (a lost laptop).
    lost = site.browser()
    lost.set_cookie(DEVICE, device)
    r = password_step(lost, "/app/", dave)
    assert r.status_code == 303 and location(r).path == "/app/", snippet(r)
    lost.http.cookies.clear()
    lost.set_cookie(DEVICE, device)

    # Security info offers "Forget remembered devices"; no fresh second
    # step is needed to take access away.
    r = security_page(b)
    assert "Remembered devices" in Page(r).text
    r = change(b, manage_token(r), action="forget-devices")
    assert r.status_code == 303, snippet(r)
    assert DEVICE in set_cookies(r)               # this browser's dropped
    r = b.follow(r)
    assert "Remembered devices were forgotten" in Page(r).text, snippet(r)
    forgotten = site.user_entry(dave.name)["devices_forgotten"]
    assert abs(forgotten - time.time()) < 60, forgotten

    code_page_after_password(lost, "/app/", dave)

    # Remembered again (in a later second than the forgetting), then the
    # administrator gives dave a new authenticator: forgotten too.
    time.sleep(max(0.0, forgotten + 1.1 - time.time()))
    sign_out_here(b)
    device = sign_in_remembering(b, "/app/", dave)
    sign_out_here(b)
    r = password_step(b, "/app/", dave)
    assert r.status_code == 303 and location(r).path == "/app/"
    sign_out_here(b)

    data = json.loads(site.users_file.read_text())
    dave.secret = new_secret()
    data["users"][dave.name]["totp"] = dave.secret
    # Rewritten in place: the file keeps its owner (the workers write it).
    site.users_file.write_text(json.dumps(data, indent=2) + "\n")
    time.sleep(1.1)            # the workers notice within about a second
    code_page_after_password(b, "/app/", dave)


def test_remember_off_offers_nothing(nginx_factory, workdir, app):
    erin = new_user("rem-erin")
    site = remember_site(nginx_factory, workdir, app, "remember-off",
                         [erin], remember=None)
    b = site.browser()
    r = code_page_after_password(b, "/app/", erin)
    assert remember_box(r) is None and "Don't ask again" not in r.text
    # Ticking it anyway (a hand-made form) remembers nothing.
    r = b.submit_code(r, erin.fresh_code(), remember="1")
    assert r.status_code == 303 and DEVICE not in set_cookies(r)
    r = security_page(b)
    assert "Remembered devices" not in Page(r).text
    assert "Sign out everywhere" in Page(r).text


def test_remember_configuration(nginx_factory, workdir, app):
    site = remember_site(nginx_factory, workdir, app, "remember-conf", [])
    good = site.nginx.conf_path.read_text()
    assert "twostep_remember 30d;" in good
    for bad in ("12h", "36h", "0", "forever"):
        site.nginx.write_conf(good.replace("twostep_remember 30d;",
                                           "twostep_remember %s;" % bad))
        status, out = site.nginx.test_config()
        assert status != 0, bad
        assert '"twostep_remember" must be "off" or whole days, at least ' \
            '1d (e.g. 30d), not "%s"' % bad in out, out
        assert str(site.nginx.conf_path) in out, out
    for fine in ("off", "1d", "90d"):
        site.nginx.write_conf(good.replace("twostep_remember 30d;",
                                           "twostep_remember %s;" % fine))
        status, out = site.nginx.test_config()
        assert status == 0, out
    site.nginx.write_conf(good)
