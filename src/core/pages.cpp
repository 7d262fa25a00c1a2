#include "pages.h"

#include <ctime>

#include "form.h"

namespace twostep {

namespace {

std::string method_label(const PageContext &ctx, Method m)
{
    return ctx.text(method_info(m).label_key);
}

// Which method a page is about, for the templates' {{#is_...}} sections:
// one flag per row of the method table.
void method_flags(PageData &data, Method m)
{
    data.text("method", method_name(m));
    for (const MethodInfo &info : method_table) {
        data.flag(std::string("is_") + info.name, m == info.method);
    }
}

// "Sign in another way": a link per offered method but this one.
void other_ways(PageData &data, const PageContext &ctx,
                const PortalPaths &paths, Method method, MethodSet offered,
                const std::string &return_to, const std::string &methods)
{
    MethodSet others = offered & ~static_cast<unsigned>(method);
    data.flag("other_ways", others != 0);
    data.list("ways");
    for (const MethodInfo &info : method_table) {
        Method m = info.method;
        // A remembered device is never a way one picks.
        if (!has_method(others, m) || info.kind == MethodKind::device) {
            continue;
        }
        data.item("ways")
            .text("href", paths.verify + "?method=" + method_name(m)
                              + "&return_to=" + url_encode(return_to)
                              + "&methods=" + url_encode(methods))
            .text("label", method_label(ctx, m));
    }
}

void form_fields(PageData &data, const std::string &return_to,
                 const std::string &methods, const std::string &form_token)
{
    data.text("return_to", return_to);
    data.text("methods", methods);
    data.text("form_token", form_token);
}

void messages(PageData &data, const PageContext &ctx,
              std::string_view error, std::string_view notice)
{
    data.text("error", ctx.text_or_literal(error));
    data.text("notice", ctx.text_or_literal(notice));
}

std::string render(const PageContext &ctx, std::string_view name,
                   PageData &data, std::string_view title_key)
{
    return ctx.theme->render(name, data, *ctx.lang, ctx.site_name,
                             ctx.text_or_literal(title_key));
}

// A TOTP key for typing: groups of four characters separated by spaces
// ("ABCD EFGH IJ"), whitespace in the key dropped.
std::string key_groups(std::string_view key)
{
    std::string out;
    std::size_t n = 0;
    for (char c : key) {
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            continue;
        }
        if (n > 0 && n % 4 == 0) {
            out += ' ';
        }
        out += c;
        n++;
    }
    return out;
}

// "2026-12-02": when a key was added, in UTC.
std::string utc_date(std::int64_t when)
{
    std::time_t t = static_cast<std::time_t>(when);
    std::tm tm{};
    char out[16];
    if (gmtime_r(&t, &tm) == nullptr
        || std::strftime(out, sizeof out, "%Y-%m-%d", &tm) == 0) {
        return "";
    }
    return out;
}

}  // namespace

const std::string &page_security_policy()
{
    return PageTheme::builtin().security_policy();
}

std::string minutes_text(const PageContext &ctx, std::string_view key,
                         std::int64_t seconds)
{
    std::int64_t minutes = seconds <= 60 ? 1 : (seconds + 59) / 60;
    PageData args;
    args.text("minutes", std::to_string(minutes));
    std::string name(key);
    if (minutes == 1)
        name += "_one";
    return ctx.text(name, args);
}

std::string render_signin(const PageContext &ctx, const SigninPage &page)
{
    PageData data;
    data.text("signin_url", page.paths.signin);
    data.text("username", page.username);
    form_fields(data, page.return_to, page.methods, page.form_token);
    messages(data, ctx, page.error, {});
    data.text("passkey_url", page.passkey_url);
    data.text("webauthn", page.passkey_url.empty() ? "" : page.webauthn);
    data.text("challenge", page.challenge);
    return render(ctx, "signin", data, "signin.title");
}

std::string render_code(const PageContext &ctx, const CodePage &page)
{
    // Push, call, or a text not sent yet: a button that starts it. A code
    // box for a code the module checks, or one a provider sent already.
    const MethodInfo &info = method_info(page.method);
    bool code_box = info.typed
                    && (info.kind != MethodKind::out_of_band
                        || page.sms_sent);
    PageData data;
    data.text("user", page.user);
    data.text("verify_url", page.paths.verify);
    data.flag("code_box", code_box);
    data.flag("remember", page.remember_days > 0);
    data.flag("remember_one", page.remember_days == 1);
    data.text("days", std::to_string(page.remember_days));
    data.flag("pound", page.call_pound);
    method_flags(data, page.method);
    form_fields(data, page.return_to, page.methods, page.form_token);
    messages(data, ctx, page.error, page.notice);
    other_ways(data, ctx, page.paths, page.method, page.offered,
               page.return_to, page.methods);
    bool key = page.method == Method::webauthn;
    data.text("webauthn", key ? page.webauthn : "");
    data.text("challenge", page.challenge);
    return render(ctx, "code", data,
                  code_box ? "code.title" : key ? "key.title" : "send.title");
}

std::string render_wait(const PageContext &ctx, const WaitPage &page)
{
    std::string query = "?return_to=" + url_encode(page.return_to)
                        + "&methods=" + url_encode(page.methods);
    std::string check = page.paths.wait + query + "&check=1";

    PageData data;
    data.text("user", page.user);
    data.text("status_url", page.paths.status + query);
    data.text("check_url", check);
    data.text("approved_url", check + "&approved=1");
    data.text("number", page.number);
    data.flag("pound", page.call_pound);
    messages(data, ctx, {}, page.notice);
    // Without JavaScript the page reloads itself; with it, the script
    // moves on as soon as the provider answers.
    data.text("refresh", check);
    method_flags(data, page.method);
    other_ways(data, ctx, page.paths, page.method, page.offered,
               page.return_to, page.methods);
    std::string title = std::string("wait.") + method_name(page.method)
                        + ".title";
    if (page.method == Method::call && page.call_pound)
        title += "_pound";
    return render(ctx, "wait", data, title);
}

std::string render_approve(const PageContext &ctx, const ApprovePage &page)
{
    PageData data;
    data.text("approve_url", page.action);
    data.text("token", page.token);
    data.text("user", page.user);
    data.text("site", page.site);
    data.text("address", page.address);
    data.text("time", page.time);
    data.flag("test", page.test);
    messages(data, ctx, page.error, {});
    return render(ctx, "approve", data,
                  page.test ? "approve.test.title" : "approve.title");
}

std::string render_push_setup(const PageContext &ctx,
                              const PushSetupPage &page)
{
    std::string check = page.setup + "?check=1";
    PageData data;
    data.text("user", page.user);
    data.text("setup_url", page.setup);
    data.text("manage_url", page.manage);
    data.text("server", page.server);
    data.text("topic", page.topic);
    data.text("topic_url", page.topic_url);
    data.markup("qr_svg", page.qr_svg);   // trusted markup from qr_svg()
    data.text("form_token", page.form_token);
    data.flag("waiting", page.waiting);
    data.text("number", page.number);
    data.text("status_url", page.setup + "?status=1");
    data.text("check_url", check);
    // Waiting: without JavaScript the page reloads itself; with it, the
    // script moves on as soon as the phone answered.
    data.text("refresh", page.waiting ? check : "");
    messages(data, ctx, page.error, {});
    return render(ctx, "push-setup", data,
                  page.waiting ? "push_setup.wait.title"
                               : "push_setup.title");
}

std::string render_enroll(const PageContext &ctx, const EnrollPage &page)
{
    PageData data;
    data.text("user", page.user);
    data.markup("qr_svg", page.qr_svg);   // trusted markup from qr_svg()
    data.text("secret", key_groups(page.secret));
    data.text("enroll_url", page.enroll);
    data.text("cancel_url", page.cancel);
    form_fields(data, page.return_to, page.methods, page.form_token);
    messages(data, ctx, page.error, {});
    return render(ctx, "enroll", data, "enroll.title");
}

std::string render_security_info(const PageContext &ctx,
                                 const SecurityInfoPage &page)
{
    PageData data;
    data.text("user", page.user);
    data.text("manage_url", page.manage);
    data.text("logout_url", page.paths.logout);
    data.text("form_token", page.form_token);
    data.text("app_url", page.app.empty() ? std::string("/") : page.app);
    data.flag("devices", page.devices);
    messages(data, ctx, page.error, page.notice);

    data.flag("confirm", !page.confirm_action.empty());
    data.text("confirm_action", page.confirm_action);
    data.text("confirm_text", page.confirm_text);
    data.list("confirm_fields");
    for (const auto &[name, value] : page.confirm_fields) {
        data.item("confirm_fields").text("field", name).text("value", value);
    }

    data.flag("new_codes", !page.new_recovery_codes.empty());
    data.text("codes_token", page.codes_token);
    data.list("codes");
    for (const std::string &code : page.new_recovery_codes) {
        data.item("codes").text("code", code);
    }

    data.flag("totp", page.totp);
    data.text("phone", page.phone_masked);
    data.text("phone_typed", page.phone_typed);
    data.text("phone_error", page.phone_error.empty()
                                 ? std::string()
                                 : ctx.text_or_literal(page.phone_error));
    data.flag("phone_unusable", !page.phone_masked.empty()
                                && !page.phone_usable);
    data.flag("push_setup", !page.push_setup.empty());
    data.text("push_url", page.push_setup);
    data.flag("push", page.push);

    // Push, call and text: provided by others, listed when usable.
    data.list("provided");
    for (const MethodInfo &info : method_table) {
        // Push has a row of its own where it is set up here.
        bool own_row = info.method == Method::push
                       && !page.push_setup.empty();
        if (info.kind == MethodKind::out_of_band && !own_row
            && has_method(page.available, info.method)) {
            data.item("provided").text("label",
                                       method_label(ctx, info.method));
        }
    }

    MethodSet choices = default_choices(page.available);
    bool chosen = page.default_method
                  && has_method(choices, *page.default_method);
    data.flag("choices", choices != 0);
    data.flag("chosen", chosen);
    data.flag("unchecked", page.provider_unchecked);
    data.text("default_error", page.default_error.empty()
                                   ? std::string()
                                   : ctx.text_or_literal(page.default_error));
    data.list("options");
    for (const MethodInfo &info : method_table) {
        Method m = info.method;
        if (has_method(choices, m)) {
            data.item("options")
                .text("method", method_name(m))
                .text("label", method_label(ctx, m))
                .flag("selected", chosen && *page.default_method == m);
        }
    }
    data.text("recovery_left", std::to_string(page.recovery_left));

    data.text("webauthn", page.webauthn);
    data.text("challenge", page.challenge);
    data.list("keys");
    for (const SecurityInfoPage::Key &key : page.keys) {
        data.item("keys")
            .text("key_id", key.id)
            .text("key_name", key.name)
            .text("key_added", utc_date(key.created));
    }
    return render(ctx, "security-info", data, "info.title");
}

std::string render_message(const PageContext &ctx, std::string_view title,
                           std::string_view text,
                           std::string_view link_href,
                           std::string_view link_text)
{
    PageData data;
    data.text("text", ctx.text_or_literal(text));
    data.text("link_href", std::string(link_href));
    data.text("link_text", link_text.empty()
                               ? std::string(link_href)
                               : ctx.text_or_literal(link_text));
    return render(ctx, "message", data, title);
}

std::string render_locked(const PageContext &ctx, const PortalPaths &paths,
                          std::string_view text,
                          std::string_view form_token)
{
    PageData data;
    data.text("text", std::string(text));
    data.text("signout_url", paths.logout);
    data.text("form_token", std::string(form_token));
    return render(ctx, "message", data, "msg.locked.title");
}

std::string render_signed_out(const PageContext &ctx,
                              const PortalPaths &paths)
{
    return render_message(ctx, "signed_out.title", "signed_out.text",
                          paths.signin, "signed_out.link");
}

std::string render_signout(const PageContext &ctx, const PortalPaths &paths,
                           std::string_view user,
                           std::string_view form_token)
{
    PageData data;
    data.text("user", std::string(user));
    data.text("logout_url", paths.logout);
    data.text("form_token", std::string(form_token));
    return render(ctx, "signout", data, "signout.title");
}

}  // namespace twostep
