"""Pages in the visitor's language (Accept-Language, or twostep_language),
the site's name on them (twostep_site_name), and an administrator's own
templates and texts (twostep_templates), checked by `nginx -t`."""

import base64
import hashlib
import json
import os
import re

from harness import (PORTAL, SIGNIN, Browser, Nginx, Page, free_port,
                     main_conf, proxy_to, snippet)
from conftest import MODULE

DUTCH = "nl-NL,nl;q=0.9,en-US;q=0.8,en;q=0.7"
HERE = os.path.dirname(os.path.abspath(__file__))
BUILT_IN = os.path.join(HERE, "..", "..", "src", "core", "pages")


def body(site, port, extra=""):
    return """
    twostep_users {users};
    server {{
        listen 127.0.0.1:{port};
        twostep_cookie_key {key};
        {extra}
        location / {{
            twostep on;
            {proxy}
        }}
    }}
""".format(users=site.users_file, key=site.key_new, port=port, extra=extra,
           proxy=proxy_to(site.app.port))


def start(site, nginx_factory, extra="", language=None):
    port = free_port()
    nginx_factory("lang", body(site, port, extra), [port])
    b = Browser("http://127.0.0.1:%d" % port)
    if language:
        b.http.headers["Accept-Language"] = language
    return b


def title(r):
    return re.search(r"<title>(.*?)</title>", r.text).group(1)


def test_dutch_from_accept_language(site, nginx_factory, user):
    b = start(site, nginx_factory, language=DUTCH)
    r = b.follow(b.get("/app/x"))
    assert r.status_code == 200, snippet(r)
    assert '<html lang="nl">' in r.text
    assert title(r) == "Aanmelden"
    page = Page(r)
    assert "Gebruikersnaam" in page.text and "Wachtwoord" in page.text

    wrong = b.submit_password(r, user.name, "not-" + user.password)
    assert "Onjuiste gebruikersnaam of wachtwoord." in Page(wrong).text

    r = b.follow(b.submit_password(wrong, user.name, user.password))
    assert r.status_code == 200, snippet(r)
    assert title(r) == "Code invoeren"
    assert "Aanmelden als" in Page(r).text
    bad = b.submit_code(r, "000000" if user.fresh_code() != "000000"
                        else "111111")
    assert "Die code werkte niet." in Page(bad).text
    r = b.submit_code(bad, user.fresh_code())
    assert r.status_code == 303, snippet(r)

    # Errors are pages too.
    r = b.get(PORTAL + "nothing")
    assert r.status_code == 404
    assert title(r) == "Pagina niet gevonden"


def test_negotiation_and_english_fallback(site, nginx_factory):
    b = start(site, nginx_factory)
    r = b.get(SIGNIN)
    assert '<html lang="en">' in r.text and title(r) == "Sign in"
    for header, lang, words in [("nl;q=0, de;q=0.5", "de", "Anmelden"),
                                ("fr-CA", "fr", "Se connecter"),
                                ("es-419,es;q=0.9", "es", "Iniciar sesión"),
                                ("ja, zh;q=0.8", "en", "Sign in"),
                                ("*", "en", "Sign in")]:
        r = b.get(SIGNIN, headers={"Accept-Language": header})
        assert '<html lang="%s">' % lang in r.text, header
        assert title(r) == words, header


def test_language_forced(site, nginx_factory):
    b = start(site, nginx_factory, "twostep_language de;", language=DUTCH)
    r = b.get(SIGNIN)
    assert '<html lang="de">' in r.text
    assert title(r) == "Anmelden"
    assert "Benutzername" in Page(r).text


def test_site_name_in_title_and_header(site, nginx_factory):
    b = start(site, nginx_factory, 'twostep_site_name "Contoso Intranet";')
    r = b.get(SIGNIN)
    assert title(r) == "Sign in – Contoso Intranet"
    assert '<header class="site"><span>Contoso Intranet</span></header>' \
        in r.text
    r = b.get(SIGNIN, headers={"Accept-Language": "nl"})
    assert title(r) == "Aanmelden – Contoso Intranet"


def csp_hash(text):
    digest = hashlib.sha256(text.encode()).digest()
    return "'sha256-%s'" % base64.b64encode(digest).decode()


def override_dir(tmp_path, files):
    d = tmp_path / "pages"
    (d / "lang").mkdir(parents=True)
    for name, text in files.items():
        (d / name).write_text(text)
    for p in [tmp_path, d, d / "lang"]:
        p.chmod(0o755)
    return d


def test_override_template_and_style(site, nginx_factory, tmp_path):
    css = "main{border-top:4px solid #c00}"
    d = override_dir(tmp_path, {
        "signin.html": "<h1>{{title}}</h1>\n<p class=\"brand\">Contoso "
                       "staff only</p>\n<form method=\"post\" action=\""
                       "{{signin_url}}\">\n<label for=\"username\">"
                       "{{@signin.username}}</label>\n<input id=\"username\" "
                       "name=\"username\">\n</form>\n",
        "style.css": css,
    })
    b = start(site, nginx_factory, "twostep_templates %s;" % d)
    r = b.get(SIGNIN)
    assert '<p class="brand">Contoso staff only</p>' in r.text
    assert "<style>%s</style>" % css in r.text
    # The policy allows the stylesheet that is sent.
    assert "style-src %s;" % csp_hash(css) in \
        r.headers["Content-Security-Policy"]
    # Texts still translate in an overridden template.
    r = b.get(SIGNIN, headers={"Accept-Language": "de"})
    assert ">Benutzername</label>" in r.text


def check(site, tmp_path, extra):
    prefix = tmp_path / "nginx"
    return Nginx(prefix, main_conf(prefix, MODULE,
                                   body(site, free_port(), extra))) \
        .test_config()


def test_broken_override_fails_nginx_t(site, tmp_path):
    d = override_dir(tmp_path, {"code.html": "<p>\n{{usr}}</p>\n"})
    rc, out = check(site, tmp_path, "twostep_templates %s;" % d)
    assert rc != 0, out
    assert "[emerg]" in out
    assert "%s/code.html: line 2: unknown value {{usr}}" % d in out

    nl = json.load(open(os.path.join(BUILT_IN, "lang", "nl.json")))
    del nl["signin.password"]
    (d / "code.html").unlink()
    (d / "lang" / "nl.json").write_text(json.dumps(nl))
    rc, out = check(site, tmp_path, "twostep_templates %s;" % d)
    assert rc != 0, out
    assert '%s/lang/nl.json: the text "signin.password" is missing' % d \
        in out

    rc, out = check(site, tmp_path, "twostep_language xx;")
    assert rc != 0, out
    assert '"twostep_language" is "auto" or one of the pages\' languages ' \
        '(de, en, es, fr, nl), not "xx"' in out
