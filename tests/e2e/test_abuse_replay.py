"""A TOTP code works once (RFC 6238 section 5.2): after a successful sign-in
its time step, and every older one, is refused for that user, whichever of
nginx's workers gets the attempt; the record is in the zone the workers
share."""

from harness import (Page, location, on_both_workers, hammer, set_cookies,
                     snippet, wait_off_step_boundary)

USED = "already been used"


def code_page(site, user, path="/app/"):
    """A browser past the password step for `user`, and its code page."""
    b = site.browser()
    r = b.follow(b.get(path))
    r = b.submit_password(r, user.name, user.password)
    assert r.status_code == 303, snippet(r)
    r = b.follow(r)
    assert r.status_code == 200 and Page(r).heading == "Enter code", \
        snippet(r)
    return b, r


def assert_refused_as_used(r):
    assert r.status_code == 403, snippet(r)
    assert USED in Page(r).text, snippet(r)
    assert "twostep_session" not in set_cookies(r), r.headers


def test_used_code_refused_on_every_worker(guarded):
    # Each refused replay counts as a failure: no lockout in the way here.
    site = guarded("replay", lockout="100 3s address=1000")
    user = site.users[0]
    wait_off_step_boundary(margin=5)
    code, older = user.code(), user.code(steps=-1)

    first = site.browser()
    r = first.sign_in("/app/once", user, code=code)
    assert location(r).path == "/app/once"
    assert first.app_view("/app/once")["headers"]["X-Remote-User"] == \
        user.name

    # Someone with the password who saw the code, on new connections that
    # land on both workers.
    b, page = code_page(site, user)
    state = {"page": page}

    def replay(c):
        def attempt():
            r = b.submit_code(state["page"], c)
            if r.status_code == 403:
                state["page"] = r        # its form serves the next try
            return r
        return attempt

    on_both_workers(replay(code), assert_refused_as_used)
    # A code of an older step (still inside the drift window) as well.
    on_both_workers(replay(older), assert_refused_as_used)
    assert b.get("/app/").status_code == 302

    # The next step's code is new, and works.
    r = b.submit_code(state["page"], user.code(steps=1))
    assert r.status_code == 303, snippet(r)
    assert b.app_view("/app/")["headers"]["X-Remote-User"] == user.name


def test_same_code_raced_from_many_browsers_works_once(guarded):
    site = guarded("race", lockout="100 3s address=1000")
    user = site.users[0]
    wait_off_step_boundary(margin=5)
    code = user.code()
    pages = [code_page(site, user) for _ in range(8)]

    results = hammer(lambda i: pages[i][0].submit_code(pages[i][1], code),
                     len(pages))
    for r in results:
        assert not isinstance(r, BaseException), repr(r)
        assert r.status_code in (303, 403), snippet(r)
    won = [r for r in results if r.status_code == 303]
    workers = sorted({r.headers["X-Worker"] for r in results})
    assert len(won) == 1, "%d sign-ins with one code (workers %s)" % (
        len(won), workers)
    for r in results:
        if r.status_code == 403:
            assert_refused_as_used(r)
