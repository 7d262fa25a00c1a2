"""Security keys and passkeys, as nginx answers them without a browser:
the configuration checks, the second-step page's options, and what the
module does with posts that carry no genuine assertion (malformed, replayed,
answering another challenge, from a key the user does not have). A real
authenticator signing in is in the browser test (tests/browser), which has
Chromium's virtual authenticator."""

import base64
import html
import json
import re
from pathlib import Path

from harness import (PORTAL, VERIFY, free_port, location, new_secret,
                     password_hash, snippet)
from test_selfservice import (SelfServiceSite, new_user, password_to_verify,
                              path_and_query)

VECTORS = Path(__file__).resolve().parents[1] / "unit" / "webauthn_vectors"
PASSKEY = PORTAL + "passkey"


def recorded():
    """A registration and an assertion Chromium's authenticator made."""
    return json.loads((VECTORS / "es256-none.json").read_text())


def key_entry(vector, name="Laptop", sign_count=0):
    reg = vector["registration"]
    return {"id": reg["id"], "public_key": reg["publicKey"],
            "algorithm": reg["publicKeyAlgorithm"], "sign_count": sign_count,
            "name": name, "created": 1700000000,
            "transports": reg["transports"]}


def options(r):
    """The options the page gives webauthn.js (its data-webauthn)."""
    m = re.search(r'data-webauthn="([^"]*)"', r.text)
    assert m, "no data-webauthn on the page: " + snippet(r)
    return json.loads(html.unescape(m.group(1)))


def key_site(nginx_factory, workdir, app, name, server_extra=""):
    user = new_user(name)
    vector = recorded()
    site = SelfServiceSite(nginx_factory, workdir, app, name, [user],
                           server_extra=server_extra)
    doc = site.store()
    doc["users"][name]["webauthn"] = [key_entry(vector)]
    site.users_file.write_text(json.dumps(doc))
    return site, user, vector


def key_page(site, name, target="/app/key"):
    """Signed in with the password, on "Use a security key or passkey"."""
    b = site.browser()
    r = b.follow(password_to_verify(b, target, name))
    assert r.status_code == 200, snippet(r)
    r = b.get(VERIFY + "?method=webauthn&return_to=" + target)
    assert r.status_code == 200, snippet(r)
    return b, r


def key_form(r):
    form = re.search(r'<form method="post" action="([^"]*)" '
                     r'data-webauthn=', r.text)
    assert form, snippet(r)
    fields = dict(re.findall(r'<input type="hidden" name="([^"]*)" '
                             r'value="([^"]*)"', r.text.split(
                                 form.group(0), 1)[1].split("</form>")[0]))
    return {k: html.unescape(v) for k, v in fields.items()}


RP_CONF = """
    twostep_users {users};
    server {{
        listen 127.0.0.1:{port};
        twostep_cookie_key {key};
        twostep_webauthn_rp_id "{rp}";
        location / {{ twostep on; return 204; }}
    }}
"""


def test_rp_id_must_be_a_domain(nginx_factory, workdir, app):
    site, _, _ = key_site(nginx_factory, workdir, app, "rp-conf")

    def check(rp):
        conf = RP_CONF.format(users=site.users_file, port=free_port(),
                              key=site.key_file, rp=rp)
        return nginx_factory("rp", conf, [], start=False).test_config()

    for bad in ("127.0.0.1", "Example.com", "exa mple.com", ".example.com",
                "[::1]", "example.com:443"):
        rc, out = check(bad)
        assert rc != 0, "nginx -t accepted %r:\n%s" % (bad, out)
        assert "twostep_webauthn_rp_id" in out and "IP address" in out, out
    rc, out = check("login.example.com")
    assert rc == 0, out


def test_second_step_page_asks_for_the_users_keys(nginx_factory, workdir,
                                                  app):
    site, user, vector = key_site(nginx_factory, workdir, app, "key-page")
    b, r = key_page(site, user.name)
    assert "Use your security key or passkey" in r.text
    o = options(r)
    assert o["mode"] == "get"
    assert o["allow"] == [vector["registration"]["id"]]
    assert o["userVerification"] == "preferred"
    assert o["rpId"] == "127.0.0.1"
    # The page's script is allowed by its hash, nothing else (the style,
    # and the portal's three scripts: waiting page, keys, "Copy codes").
    csp = r.headers["Content-Security-Policy"]
    assert csp.count("'sha256-") == 4, csp
    # Every page load is a new challenge.
    _, again = key_page(site, user.name)
    assert options(again)["challenge"] != o["challenge"]
    # The code page offers the key among the other ways.
    r = b.get(VERIFY + "?method=totp")
    assert "Use a security key or passkey" in r.text


def test_posts_without_an_assertion_are_bad_requests(nginx_factory, workdir,
                                                     app):
    site, user, vector = key_site(nginx_factory, workdir, app, "key-bad")
    b, r = key_page(site, user.name)
    form = key_form(r)
    assert form["method"] == "webauthn" and form["challenge"]
    # No JavaScript: nothing but the form's own fields.
    r = b.post(VERIFY, form)
    assert r.status_code == 400, snippet(r)
    assert "use security keys or passkeys. Sign in another way" in r.text
    a = vector["assertions"][0]
    answer = {"credential_id": a["id"], "client_data": a["clientDataJSON"],
              "authenticator_data": a["authenticatorData"],
              "signature": a["signature"]}
    for field, value in (("client_data", "not base64url!"),
                         ("signature", ""), ("credential_id", "%%%"),
                         ("authenticator_data", "A" * 20000)):
        r = b.post(VERIFY, dict(form, **dict(answer, **{field: value})))
        assert r.status_code in (400, 413), (field, snippet(r))
    # Nothing was counted: the user still signs in with a code.
    r = b.post(VERIFY, dict(form, method="totp", code=user.fresh_code()))
    assert r.status_code == 303, snippet(r)
    assert path_and_query(location(r)) == "/app/key"


def test_wrong_assertions_count_and_challenges_are_single_use(
        nginx_factory, workdir, app):
    site, user, vector = key_site(nginx_factory, workdir, app, "key-wrong")
    b, r = key_page(site, user.name)
    a = vector["assertions"][0]
    answer = {"credential_id": a["id"], "client_data": a["clientDataJSON"],
              "authenticator_data": a["authenticatorData"],
              "signature": a["signature"], "user_handle": ""}

    # A genuine assertion, but for another challenge and origin: refused,
    # and the challenge it came with is used up.
    form = key_form(r)
    r = b.post(VERIFY, dict(form, **answer))
    assert r.status_code == 403, snippet(r)
    assert "was not accepted" in r.text
    r = b.post(VERIFY, dict(form, **answer))
    assert r.status_code == 403 and "This page has expired" in r.text, \
        snippet(r)

    # A key the user does not have, then more: the lockout (5 failures).
    statuses = []
    for i in range(5):
        form = key_form(b.get(VERIFY + "?method=webauthn"))
        wrong = dict(answer, credential_id=base64.urlsafe_b64encode(
            bytes([i + 1]) * 16).decode().rstrip("="))
        statuses.append(b.post(VERIFY, dict(form, **wrong)).status_code)
    assert statuses[:3] == [403, 403, 403], statuses
    assert statuses[-1] == 429, statuses
    r = b.post(VERIFY, {"method": "totp", "code": user.fresh_code(),
                        "form_token": form["form_token"]})
    assert r.status_code in (403, 429), snippet(r)


def test_passkey_signin_is_off_by_default(nginx_factory, workdir, app):
    site, user, _ = key_site(nginx_factory, workdir, app, "passkey-off")
    b = site.browser()
    r = b.follow(b.get("/app/"))
    assert r.status_code == 200
    assert "Sign in with a passkey" not in r.text
    assert "data-webauthn" not in r.text
    assert b.post(PASSKEY, {}).status_code == 404


def test_passkey_signin_page(nginx_factory, workdir, app):
    site, user, vector = key_site(nginx_factory, workdir, app, "passkey-on",
                                  server_extra="twostep_passkey_signin on;")
    b = site.browser()
    r = b.follow(b.get("/app/"))
    assert "Sign in with a passkey" in r.text
    o = options(r)
    assert o["allow"] == [] and o["userVerification"] == "required"
    form = key_form(r)
    # An assertion for a credential nobody registered, and one made for
    # another challenge: refused on the sign-in page, counted.
    a = vector["assertions"][3]
    answer = {"credential_id": a["id"], "client_data": a["clientDataJSON"],
              "authenticator_data": a["authenticatorData"],
              "signature": a["signature"], "user_handle": a["userHandle"]}
    r = b.post(PASSKEY, dict(form, **dict(answer, credential_id="AAAA")))
    assert r.status_code == 403 and "passkey was not accepted" in r.text, \
        snippet(r)
    form = key_form(r)
    r = b.post(PASSKEY, dict(form, **answer))
    assert r.status_code == 403 and "passkey was not accepted" in r.text, \
        snippet(r)
    # Without the sign-in page's token: expired, nothing checked.
    r = b.post(PASSKEY, dict(answer, form_token="x"))
    assert r.status_code == 403 and "This page has expired" in r.text


def test_tool_lists_and_removes_keys(tmp_path):
    """`twostep-user list` shows each key (name, id, algorithm, when added,
    its sign count), never a public key; `remove-key` takes one by its name
    or its id and leaves the others."""
    from test_tool import TOOL, tool
    vector = recorded()
    users = tmp_path / "users.json"
    first = key_entry(vector, name="Laptop", sign_count=7)
    second = dict(key_entry(vector, name="Phone"), id="c2Vjb25kLWtleQ")
    users.write_text(json.dumps({"users": {"kim": {
        "password": password_hash("kim-password-1"), "totp": new_secret(),
        "webauthn": [first, second]}}}))
    assert TOOL.exists()

    out = tool(users, "list", check=0).stdout
    assert "Security keys and passkeys:" in out, out
    assert re.search(r'kim +"Laptop" +id %s +ES256 +added 2023-11-14 +'
                     r'sign count 7' % re.escape(first["id"]), out), out
    assert '"Phone"  id c2Vjb25kLWtleQ' in out, out
    assert first["public_key"] not in out

    r = tool(users, "remove-key", "kim", "Laptop", check=0)
    assert 'removed the key "Laptop" of kim' in r.stdout
    keys = json.loads(users.read_text())["users"]["kim"]["webauthn"]
    assert [k["name"] for k in keys] == ["Phone"]
    tool(users, "remove-key", "kim", "Laptop", check=1)
    tool(users, "remove-key", "kim", "c2Vjb25kLWtleQ", check=0)
    assert "webauthn" not in json.loads(users.read_text())["users"]["kim"] \
        or json.loads(users.read_text())["users"]["kim"]["webauthn"] == []
    assert "Security keys" not in tool(users, "list", check=0).stdout
