/* Berth for C guests: the middleware export, and the verdicts a link gives. See berth.h. */
#include "berth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static berth_link_fn registered;

void berth_on_link(berth_link_fn link) { registered = link; }

void berth_pass_header(berth_verdict_t *verdict, const char *name, const char *value) {
    if (verdict->tag == EXPORTS_BERTH_BACKEND_MIDDLEWARE_VERDICT_PASS)
        berth_add_header(&verdict->val.pass.headers, name, value);
}

void berth_pass_mark(berth_verdict_t *verdict, berth_guard_t mark) {
    if (verdict->tag != EXPORTS_BERTH_BACKEND_MIDDLEWARE_VERDICT_PASS) return;
    verdict->val.pass.mark.is_some = true;
    verdict->val.pass.mark.val = mark;
}

berth_reply_t *berth_respond(berth_verdict_t *verdict) {
    if (verdict->tag != EXPORTS_BERTH_BACKEND_MIDDLEWARE_VERDICT_RESPOND) {
        exports_berth_backend_middleware_verdict_free(verdict);
        memset(verdict, 0, sizeof *verdict);
        verdict->tag = EXPORTS_BERTH_BACKEND_MIDDLEWARE_VERDICT_RESPOND;
    }
    return &verdict->val.respond;
}

/* A component the manifest marks `middleware = true` without a link in berth_setup: every message
 * it is asked about fails as `unhandled`, as it does in the other helper layers. */
static bool no_link(const berth_message_t *msg, berth_error_t *err) {
    char text[256];
    snprintf(text, sizeof text, "no middleware link for `%.*s`: register one with berth_on_link in berth_setup",
             (int)(msg->subject.len > 128 ? 128 : msg->subject.len), (const char *)msg->subject.ptr);
    berth_fail(err, 404, "Not Found", text, NULL);
    err->kind = BERTH_BACKEND_TYPES_ERROR_KIND_UNHANDLED;
    return false;
}

/* The export wit-bindgen declares in c_backend.h. The verdict starts as a pass with nothing set, so
 * a link that only returns true passes the message on as it came. */
bool exports_berth_backend_middleware_handle(berth_message_t *msg, berth_verdict_t *ret, berth_error_t *err) {
    memset(ret, 0, sizeof *ret);
    ret->tag = EXPORTS_BERTH_BACKEND_MIDDLEWARE_VERDICT_PASS;
    bool ok = registered ? registered(msg, ret, err) : no_link(msg, err);
    if (!ok) exports_berth_backend_middleware_verdict_free(ret);
    berth_message_free(msg);
    return ok;
}
