/* The conformance contract (docs/conformance.md) in C. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "berth.h"

static char *greeting;

/* `P.<suffix>`, where P is the first token of the subject (`P.in.<name>`); free() it. */
static char *under_prefix(const berth_message_t *msg, const char *suffix) {
    const uint8_t *dot = memchr(msg->subject.ptr, '.', msg->subject.len);
    int p_len = (int)(dot ? (size_t)(dot - msg->subject.ptr) : msg->subject.len);
    size_t n = (size_t)p_len + strlen(suffix) + 2;
    char *subject = malloc(n);
    snprintf(subject, n, "%.*s.%s", p_len, (const char *)msg->subject.ptr, suffix);
    return subject;
}

static bool echo(const berth_message_t *msg, berth_reply_t *reply, berth_error_t *err) {
    berth_reply_bytes(reply, msg->body.ptr, msg->body.len);
    berth_copy_headers(&reply->headers, &msg->headers);
    return true;
}

static bool sum(const berth_message_t *msg, berth_reply_t *reply, berth_error_t *err) {
    int64_t a, b;
    if (berth_json_int(msg->body.ptr, msg->body.len, "a", &a) != 1 ||
        berth_json_int(msg->body.ptr, msg->body.len, "b", &b) != 1)
        return berth_fail(err, 400, "Bad Request", "expected a JSON object with integers a and b", NULL);
    char body[64];
    snprintf(body, sizeof body, "{\"sum\":%lld}", (long long)(a + b));
    berth_reply_text(reply, body);
    berth_add_header(&reply->headers, "content-type", "application/json");
    return true;
}

static bool teapot(const berth_message_t *msg, berth_reply_t *reply, berth_error_t *err) {
    return berth_fail(err, 418, "I'm a teapot", "short and stout", "{\"spout\":true}");
}

static bool config(const berth_message_t *msg, berth_reply_t *reply, berth_error_t *err) {
    berth_reply_text(reply, greeting);
    return true;
}

static bool publish(const berth_message_t *msg, berth_reply_t *reply, berth_error_t *err) {
    char *subject = under_prefix(msg, "out.published");
    berth_headers_t headers = {0};
    berth_add_header(&headers, "conformance", "published");
    bool ok = berth_publish(subject, msg->body.ptr, msg->body.len, &headers, err);
    berth_backend_types_headers_free(&headers);
    free(subject);
    return ok;
}

static bool call(const berth_message_t *msg, berth_reply_t *reply, berth_error_t *err) {
    char *subject = under_prefix(msg, "upstream");
    berth_message_t upstream;
    bool ok = berth_request(subject, msg->body.ptr, msg->body.len, 5000, &upstream, err);
    free(subject);
    if (!ok) return false;
    berth_reply_bytes(reply, upstream.body.ptr, upstream.body.len);
    berth_message_free(&upstream);
    return true;
}

static bool forbidden(const berth_message_t *msg, berth_reply_t *reply, berth_error_t *err) {
    char *subject = under_prefix(msg, "secret");
    bool ok = berth_publish(subject, (const uint8_t *)"leak", 4, NULL, err);
    free(subject);
    return ok;
}

static bool event(const berth_message_t *msg, berth_error_t *err) {
    char *subject = under_prefix(msg, "out.event");
    bool ok = berth_publish(subject, msg->body.ptr, msg->body.len, NULL, err);
    free(subject);
    return ok;
}

bool berth_setup(const char *json, size_t len, berth_error_t *err) {
    if (berth_json_string((const uint8_t *)json, len, "greeting", &greeting) != 1) greeting = "";
    berth_on_request("*.in.echo", echo);
    berth_on_request("*.in.json", sum);
    berth_on_request("*.in.fail", teapot);
    berth_on_request("*.in.config", config);
    berth_on_request("*.in.publish", publish);
    berth_on_request("*.in.call", call);
    berth_on_request("*.in.forbidden", forbidden);
    berth_on_event("*.in.event", event);
    return true;
}
