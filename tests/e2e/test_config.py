"""A broken configuration is refused by `nginx -t` (and so by a start or a
reload) with a message that names the file or the problem."""

import json
import os
import re

import pytest

from conftest import MODULE, POOL_PASSWORD
from harness import Nginx, main_conf, new_secret, password_hash, write_key


class ConfigCase:
    def __init__(self, base):
        self.dir = base
        self.users = base / "users.json"
        self.key = base / "cookie.key"
        self.hash = password_hash(POOL_PASSWORD)
        self.write_users({"alice": {"password": self.hash,
                                    "totp": new_secret()}})
        write_key(self.key)

    def write_users(self, users, text=None):
        self.users.write_text(text if text is not None else
                              json.dumps({"users": users}, indent=2))
        os.chmod(self.users, 0o644)

    def check(self, http_extra=None, server_extra=None, location_extra="",
              users_line=None, key_line=None):
        users_line = ("twostep_users %s;" % self.users
                      if users_line is None else users_line)
        key_line = ("twostep_cookie_key %s;" % self.key
                    if key_line is None else key_line)
        body = """
    {users_line}
    {http_extra}
    server {{
        listen 127.0.0.1:1;
        {key_line}
        {server_extra}
        location / {{
            twostep on;
            {location_extra}
            return 204;
        }}
    }}
""".format(users_line=users_line, key_line=key_line,
           http_extra=http_extra or "", server_extra=server_extra or "",
           location_extra=location_extra)
        nginx = Nginx(self.dir / "nginx", main_conf(self.dir / "nginx",
                                                    MODULE, body))
        return nginx.test_config()


@pytest.fixture
def case(tmp_path):
    return ConfigCase(tmp_path)


def refused(result, *must_mention):
    rc, out = result
    assert rc != 0, "nginx -t accepted it:\n" + out
    assert "[emerg]" in out, out
    for text in must_mention:
        if isinstance(text, re.Pattern):
            assert text.search(out), "%r not in:\n%s" % (text.pattern, out)
        else:
            assert str(text) in out, "%r not in:\n%s" % (str(text), out)
    return out


def test_satisfy_any_is_accepted_with_a_warning(case):
    """"satisfy any" makes two-step optional for whoever another access
    module lets in: nginx -t says so, naming the location, and accepts."""
    rc, out = case.check(location_extra="satisfy any; allow 10.0.0.0/8; "
                                        "deny all;")
    assert rc == 0, out
    assert re.search(r'\[warn\].*"satisfy any" in location "/": a request '
                     r'that "allow", "auth_basic" or "auth_request" lets '
                     r'in skips "twostep"', out), out
    rc, out = case.check()
    assert rc == 0 and "satisfy any" not in out, out


def test_valid_config_is_accepted(case):
    rc, out = case.check()
    assert rc == 0, out
    # The long form of "totp" and every method name the module knows.
    case.write_users({"alice": {"password": case.hash, "totp": {
        "secret": new_secret(), "algorithm": "SHA512", "digits": 8,
        "period": 30}}})
    rc, out = case.check(location_extra="twostep_methods totp recovery;")
    assert rc == 0, out


def test_missing_users_file(case):
    path = case.dir / "no-such-users.json"
    refused(case.check(users_line="twostep_users %s;" % path), path)


def test_users_file_that_is_a_directory(case):
    path = case.dir / "users.d"
    path.mkdir()
    refused(case.check(users_line="twostep_users %s;" % path), path)


def test_users_file_json_syntax_error_names_line(case):
    case.write_users(None, text='{\n  "users": {\n    "alice": {,\n  }\n}\n')
    refused(case.check(), case.users,
            re.compile(r"\bline 3\b"))


def test_users_file_with_short_secret(case):
    case.write_users({"alice": {"password": case.hash,
                                "totp": new_secret(10)}})   # 80 bits
    refused(case.check(), case.users, "alice")


def test_users_file_with_bad_digits(case):
    case.write_users({"bob": {"password": case.hash, "totp": {
        "secret": new_secret(), "digits": 9}}})
    refused(case.check(), case.users, "bob", "digits")


def test_users_file_with_bad_base32(case):
    case.write_users({"carol": {"password": case.hash,
                                "totp": "NOT*BASE32*" + new_secret()}})
    refused(case.check(), case.users, "carol")


def test_short_cookie_key(case):
    write_key(case.key, nbytes=31)
    refused(case.check(), case.key)


def test_missing_cookie_key(case):
    path = case.dir / "no-such.key"
    refused(case.check(key_line="twostep_cookie_key %s;" % path), path)


def test_unknown_method_name(case):
    refused(case.check(location_extra="twostep_methods totp pigeon-post;"),
            "pigeon-post")


def test_twostep_on_without_users(case):
    refused(case.check(users_line=""), "twostep_users")


def test_twostep_on_without_cookie_key(case):
    refused(case.check(key_line=""), "twostep_cookie_key")


# twostep_identity trusts only what an auth module of the same location
# verified: anything else is refused, naming the file and the location.

BASIC = 'auth_basic "SSO"; auth_basic_user_file /dev/null;'


def conf_file(case):
    return case.dir / "nginx" / "nginx.conf"


def test_identity_without_a_verifying_module(case):
    refused(case.check(location_extra="twostep_identity $remote_user;"),
            conf_file(case), "twostep_identity $remote_user",
            "auth_basic")
    refused(case.check(location_extra='twostep_identity $remote_user; '
                                      'auth_basic off;'),
            conf_file(case), "twostep_identity $remote_user")
    # A request header is the client's own claim.
    refused(case.check(location_extra="twostep_identity $http_x_user;"),
            conf_file(case), "twostep_identity $http_x_user")


def test_identity_inherited_where_auth_basic_is_off(case):
    nested = (BASIC + " twostep_identity $remote_user; "
              "location /open/ { auth_basic off; }")
    refused(case.check(location_extra=nested), conf_file(case),
            'location "/open/"', "twostep_identity off")
    # Said explicitly, the nested location asks for the password instead.
    rc, out = case.check(location_extra=nested.replace(
        "auth_basic off;", "auth_basic off; twostep_identity off;"))
    assert rc == 0, out
    # Inherited from the server into a location that turns it off.
    refused(case.check(server_extra=BASIC + " twostep_identity $remote_user;",
                       location_extra="auth_basic off;"),
            conf_file(case), 'location "/"')


def test_identity_from_auth_request(case):
    rc, out = case.check(location_extra="auth_request /auth; "
                         "auth_request_set $who $upstream_http_x_user; "
                         "twostep_identity $who;")
    assert rc == 0, out
    # auth_request does not check the Authorization header for us.
    refused(case.check(location_extra="auth_request /auth; "
                       "twostep_identity $remote_user;"),
            conf_file(case), "twostep_identity $remote_user")
    # Nor a variable it does not set, nor one set where it is off.
    refused(case.check(location_extra="auth_request /auth; "
                       "auth_request_set $who $upstream_http_x_user; "
                       "twostep_identity $http_x_user;"),
            conf_file(case), "$http_x_user")
    refused(case.check(location_extra="auth_request off; "
                       "auth_request_set $who $upstream_http_x_user; "
                       "twostep_identity $who;"),
            conf_file(case), "$who")


def test_identity_is_one_variable(case):
    for value in ('"$remote_user x"', "remote_user", "$", '"${remote_user}"'):
        refused(case.check(location_extra=BASIC + " twostep_identity %s;"
                           % value), "twostep_identity")
    rc, out = case.check(location_extra=BASIC
                         + " twostep_identity $remote_user;")
    assert rc == 0, out


# ------------------------------------------------ warnings, still accepted

def warned(result, *must_mention):
    rc, out = result
    assert rc == 0, "nginx -t refused it:\n" + out
    assert "[warn]" in out, out
    for text in must_mention:
        assert str(text) in out, "%r not in:\n%s" % (str(text), out)
    return out


def test_cookie_key_readable_by_others_warns(case):
    conf = case.dir / "nginx" / "nginx.conf"
    for mode in (0o644, 0o640):
        os.chmod(case.key, mode)
        warned(case.check(),
               'secret file "%s" is readable by other users (mode %04o)'
               % (case.key, mode), "chmod 600", "in %s:" % conf)
    os.chmod(case.key, 0o600)
    rc, out = case.check()
    assert rc == 0 and "secret file" not in out, out


def test_duo_secret_key_readable_by_others_warns(case):
    skey = case.dir / "duo.skey"
    skey.write_text("s" * 40)
    os.chmod(case.key, 0o600)
    duo = ("twostep_duo_api https://api-12345678.duosecurity.com;\n"
           "twostep_duo_ikey DIXXXXXXXXXXXXXXXXXX;\n"
           "twostep_duo_skey_file %s;" % skey)
    os.chmod(skey, 0o604)
    out = warned(case.check(http_extra=duo),
                 'secret file "%s" is readable by other users (mode 0604)'
                 % skey)
    assert str(case.key) not in out
    os.chmod(skey, 0o600)
    rc, out = case.check(http_extra=duo)
    assert rc == 0 and "secret file" not in out, out


def test_push_call_sms_without_a_provider_refused(case):
    os.chmod(case.key, 0o600)
    refused(case.check(location_extra="twostep_methods totp push sms;"),
            'location "/" allows push,sms, but its server has no provider',
            "twostep_duo_api", "twostep_twilio_account",
            "twostep_ntfy_server")
    # Listed for the whole server, inherited by the location.
    refused(case.check(server_extra="twostep_methods call;"),
            'location "/" allows call, but its server has no provider')
    # The default (every method) offers only what a provider confirms.
    for extra in ("", "twostep_methods totp;"):
        rc, out = case.check(location_extra=extra)
        assert rc == 0 and "no provider" not in out, out
    # With a provider configured there is nothing to say.
    skey = case.dir / "duo.skey"
    skey.write_text("s" * 40)
    os.chmod(skey, 0o600)
    rc, out = case.check(
        location_extra="twostep_methods totp push;",
        http_extra="twostep_duo_api https://api-12345678.duosecurity.com;\n"
                   "twostep_duo_ikey DIXXXXXXXXXXXXXXXXXX;\n"
                   "twostep_duo_skey_file %s;" % skey)
    assert rc == 0 and "no provider" not in out, out


def twilio_ntfy(case, **override):
    token = case.dir / "twilio.token"
    token.write_text("f" * 32 + "\n")
    os.chmod(token, 0o600)
    lines = {"twostep_twilio_account": "AC" + "0" * 32,
             "twostep_twilio_token_file": str(token),
             "twostep_twilio_from": "+15550001111",
             "twostep_public_url": "https://login.example.com"}
    lines.update(override)
    return "\n".join("%s %s;" % (k, v) for k, v in lines.items()
                     if v is not None)


def test_twilio_serves_call_and_sms_only(case):
    os.chmod(case.key, 0o600)
    rc, out = case.check(location_extra="twostep_methods totp call sms;",
                         http_extra=twilio_ntfy(case))
    assert rc == 0, out
    refused(case.check(location_extra="twostep_methods push;",
                       http_extra=twilio_ntfy(case)),
            'allows push, but its server has no provider')
    rc, out = case.check(
        location_extra="twostep_methods push;",
        http_extra=twilio_ntfy(case, twostep_ntfy_server="https://ntfy.sh"))
    assert rc == 0, out


def test_twilio_and_ntfy_configuration_checked(case):
    os.chmod(case.key, 0o600)
    refused(case.check(http_extra=twilio_ntfy(
                case, twostep_twilio_from=None)),
            "Twilio needs all of", "twostep_twilio_from")
    refused(case.check(http_extra=twilio_ntfy(
                case, twostep_public_url=None)),
            "twostep_public_url")
    refused(case.check(http_extra=twilio_ntfy(
                case, twostep_twilio_account="AC/../x")),
            "twostep_twilio_account", "AC/../x")
    refused(case.check(http_extra=twilio_ntfy(
                case, twostep_twilio_from="5550001111")),
            "twostep_twilio_from", "E.164")
    refused(case.check(http_extra=twilio_ntfy(
                case, twostep_twilio_token_file=case.dir / "none")),
            case.dir / "none")
    refused(case.check(http_extra=twilio_ntfy(
                case, twostep_ntfy_server="ftp://ntfy.example.com")),
            "twostep_ntfy_server", "https://HOST[:PORT]")
    ntfy_token = case.dir / "ntfy.token"
    ntfy_token.write_text("tk_" + "a" * 29 + "\n")
    os.chmod(ntfy_token, 0o600)
    refused(case.check(http_extra="twostep_ntfy_token_file %s;"
                       % ntfy_token),
            "twostep_ntfy_server")
    out = warned(case.check(http_extra=twilio_ntfy(
                     case, twostep_twilio_api="http://127.0.0.1:9300",
                     twostep_public_url="http://127.0.0.1:8080")),
                 '"twostep_twilio_api" uses plain http',
                 '"twostep_public_url" uses plain http')
    assert "f" * 32 not in out
