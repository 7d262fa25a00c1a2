"""User-name enumeration: a name that is not in the store costs a check
against the settings (scheme, cost and salt) of the store's own hashes, in
the same proportions (the unit tests assert which settings; no timing here).
It must still never sign anyone in: not with the password of the user
whose setting it borrowed, whatever the scheme."""

from conftest import POOL_PASSWORD
from harness import Page, password_hash, snippet

WRONG_LOGIN = "Wrong user name or password"


def test_unknown_names_are_refused_with_any_scheme_in_the_store(guarded):
    bcrypt_pw, sha_pw = "bcrypt-pw-71c2", "sha-pw-5e90"
    extra = {
        "enum-bcrypt": {"password": password_hash(bcrypt_pw, rounds=5,
                                                  scheme="bcrypt")},
        "enum-sha": {"password": password_hash(sha_pw, scheme="sha512crypt")},
    }
    # Every account shares POOL_PASSWORD's yescrypt hash: the one setting
    # most unknown names borrow, and the password that hash accepts.
    site = guarded("enumeration", users=2, extra_users=extra,
                   lockout="20 3s address=1000")
    b = site.browser()
    r = b.follow(b.get("/"))
    for i in range(6):
        for password in (POOL_PASSWORD, bcrypt_pw, sha_pw):
            r = b.submit_password(r, "nobody-%d" % i, password)
            assert r.status_code == 403, snippet(r)
            assert WRONG_LOGIN in Page(r).text, snippet(r)
            assert b.cookie("twostep_session") is None

    # The known accounts still sign in with their own passwords.
    for name, password in (("enum-bcrypt", bcrypt_pw), ("enum-sha", sha_pw),
                           (site.users[0].name, POOL_PASSWORD)):
        b2 = site.browser()
        r = b2.follow(b2.get("/"))
        r = b2.submit_password(r, name, password)
        assert r.status_code == 303 and "/verify" in r.headers["Location"], \
            snippet(r)
