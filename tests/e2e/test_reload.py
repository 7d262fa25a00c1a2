"""Configuration changes on a running nginx: a key rotation by reload
(SIGHUP) keeps users signed in until the old key is dropped; a restart keeps
sessions (they live in the signed cookie)."""

import requests

from harness import (SIGNIN, Browser, free_port, location, proxy_to,
                     snippet, write_key, write_users)


def body(site_dir, port, app_port, keys):
    key_lines = "\n        ".join("twostep_cookie_key %s;" % k for k in keys)
    return """
    twostep_users {users};
    server {{
        listen 127.0.0.1:{port};
        {key_lines}
        location / {{
            twostep on;
            {proxy}
        }}
    }}
""".format(users=site_dir / "users.json", port=port, key_lines=key_lines,
           proxy=proxy_to(app_port))


def who(url, value):
    """(status, user the app saw) for a request with this session value."""
    r = requests.get(url + "/app/r?format=json", allow_redirects=False,
                     timeout=15, headers={"Cookie": "twostep_session=" +
                                          value})
    if r.status_code == 200:
        return 200, r.json()["headers"]["X-Remote-User"]
    assert r.status_code == 302 and location(r).path == SIGNIN, snippet(r)
    return 302, None


def signed_in_value(url, user):
    b = Browser(url)
    b.sign_in("/app/", user)
    return b.cookie("twostep_session")


def test_key_rotation_by_reload(nginx_factory, workdir, app, pool):
    d = workdir / "rotation"
    d.mkdir()
    d.chmod(0o755)
    alice, bob, carol = pool.take(), pool.take(), pool.take()
    write_users(d / "users.json", [alice, bob, carol])
    key_a, key_b = write_key(d / "key-a"), write_key(d / "key-b")
    port = free_port()
    nginx = nginx_factory("rotation", body(d, port, app.port, [key_a]),
                          [port], workers=2)
    url = nginx.url()

    value_a = signed_in_value(url, alice)
    assert who(url, value_a) == (200, alice.name)

    # New key first (signs), old key second (still verifies).
    nginx.reload(nginx.conf_for(body(d, port, app.port, [key_b, key_a])))
    assert who(url, value_a) == (200, alice.name)
    value_b = signed_in_value(url, bob)
    assert who(url, value_b) == (200, bob.name)

    # Old key dropped: sessions it signed end, the new key's go on.
    nginx.reload(nginx.conf_for(body(d, port, app.port, [key_b])))
    assert who(url, value_a) == (302, None)
    assert who(url, value_b) == (200, bob.name)

    # A refused reload (short key) keeps the running configuration.
    write_key(d / "key-short", nbytes=8)
    nginx.allow_log(r"\[emerg\].*key-short")
    try:
        nginx.reload(nginx.conf_for(body(d, port, app.port,
                                         [d / "key-short"])))
    except RuntimeError as e:
        assert "key-short" in str(e)
    else:
        raise AssertionError("nginx reloaded a config with an 8-byte key")
    assert who(url, value_b) == (200, bob.name)


def test_sessions_survive_restart(nginx_factory, workdir, app, pool):
    d = workdir / "restart"
    d.mkdir()
    d.chmod(0o755)
    alice = pool.take()
    write_users(d / "users.json", [alice])
    key = write_key(d / "key")
    port = free_port()
    nginx = nginx_factory("restart", body(d, port, app.port, [key]), [port])
    url = nginx.url()
    value = signed_in_value(url, alice)
    nginx.restart()
    assert who(url, value) == (200, alice.name)
