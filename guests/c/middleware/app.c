/* A middleware in C (docs/c.md, "Middleware"): what the Rust `gatekeeper` does with
 * users = {"t-ann" = "ann"} and required = true. A message without a bearer token is
 * refused (401), an unknown token too; `t-ann` passes with `x-user` and `x-lang = c` set
 * and the caller marked signed in. A message with header `x-answer` is answered here. */
#include <stdio.h>
#include <string.h>
#include "berth.h"

static const char *user_of(const berth_string_t *authorization) {
    static const char bearer[] = "Bearer t-ann";
    if (authorization->len == sizeof bearer - 1 && memcmp(authorization->ptr, bearer, sizeof bearer - 1) == 0)
        return "ann";
    return NULL;
}

static bool gate(const berth_message_t *msg, berth_verdict_t *verdict, berth_error_t *err) {
    const berth_string_t *answer = berth_header(msg, "x-answer");
    if (answer) {
        char text[128];
        snprintf(text, sizeof text, "answered by the c middleware: %.*s", (int)answer->len, (const char *)answer->ptr);
        berth_reply_t *reply = berth_respond(verdict);
        berth_reply_text(reply, text);
        berth_add_header(&reply->headers, "content-type", "text/plain");
        return true;
    }
    const berth_string_t *authorization = berth_header(msg, "authorization");
    if (!authorization) return berth_fail(err, 401, "Unauthorized", "a bearer token is required", NULL);
    const char *user = user_of(authorization);
    if (!user) return berth_fail(err, 401, "Unauthorized", "unknown token", NULL);
    berth_pass_header(verdict, "x-user", user);
    berth_pass_header(verdict, "x-lang", "c");
    berth_pass_mark(verdict, BERTH_SESSION);
    return true;
}

bool berth_setup(const char *config, size_t len, berth_error_t *err) {
    berth_on_link(gate);
    return true;
}
