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

/* The body as a NUL-terminated string (a JSON string's quotes removed); free() it. */
static char *body_text(const berth_message_t *msg) {
    const uint8_t *p = msg->body.ptr;
    size_t n = msg->body.len;
    if (n >= 2 && p[0] == '"' && p[n - 1] == '"') {
        p++;
        n -= 2;
    }
    char *text = malloc(n + 1);
    memcpy(text, p, n);
    text[n] = 0;
    return text;
}

/* `P.in.header` and `P.in.param`: the value named by the body, or 404. */
static bool named(const berth_message_t *msg, berth_reply_t *reply, berth_error_t *err,
                  const berth_string_t *(*find)(const berth_message_t *, const char *)) {
    char *name = body_text(msg);
    const berth_string_t *value = find(msg, name);
    free(name);
    if (!value) return berth_fail(err, 404, "Not Found", "no such header or parameter", NULL);
    berth_reply_bytes(reply, value->ptr, value->len);
    return true;
}

static bool header(const berth_message_t *msg, berth_reply_t *reply, berth_error_t *err) {
    return named(msg, reply, err, berth_header);
}

static bool param(const berth_message_t *msg, berth_reply_t *reply, berth_error_t *err) {
    return named(msg, reply, err, berth_param);
}

static bool state(berth_bucket_t *bucket, berth_error_t *err) {
    return berth_kv_open("state", bucket, err);
}

static bool kv_set(const berth_message_t *msg, berth_reply_t *reply, berth_error_t *err) {
    char *key = NULL, *value = NULL;
    berth_bucket_t bucket;
    bool ok = berth_json_string(msg->body.ptr, msg->body.len, "key", &key) == 1 &&
              berth_json_string(msg->body.ptr, msg->body.len, "value", &value) == 1;
    if (!ok)
        ok = berth_fail(err, 400, "Bad Request", "expected {\"key\": string, \"value\": string}", NULL);
    else if ((ok = state(&bucket, err))) {
        ok = berth_kv_set(&bucket, key, (const uint8_t *)value, strlen(value), err);
        berth_kv_close(&bucket);
    }
    free(key);
    free(value);
    return ok;
}

static bool kv_get(const berth_message_t *msg, berth_reply_t *reply, berth_error_t *err) {
    berth_bucket_t bucket;
    if (!state(&bucket, err)) return false;
    char *key = body_text(msg);
    uint8_t *value;
    size_t len;
    int found = berth_kv_get(&bucket, key, &value, &len, err);
    berth_kv_close(&bucket);
    if (found == 1) {
        berth_reply_bytes(reply, value, len);
        free(value);
    } else if (found == 0) {
        berth_fail(err, 404, "Not Found", "no such key", NULL);
    }
    free(key);
    return found == 1;
}

static bool kv_delete(const berth_message_t *msg, berth_reply_t *reply, berth_error_t *err) {
    berth_bucket_t bucket;
    if (!state(&bucket, err)) return false;
    char *key = body_text(msg);
    bool ok = berth_kv_delete(&bucket, key, err);
    berth_kv_close(&bucket);
    free(key);
    return ok;
}

static bool kv_increment(const berth_message_t *msg, berth_reply_t *reply, berth_error_t *err) {
    berth_bucket_t bucket;
    if (!state(&bucket, err)) return false;
    char *key = body_text(msg);
    uint64_t sum;
    bool ok = berth_kv_increment(&bucket, key, 1, &sum, err);
    berth_kv_close(&bucket);
    free(key);
    if (ok) {
        char text[32];
        snprintf(text, sizeof text, "%llu", (unsigned long long)sum);
        berth_reply_text(reply, text);
    }
    return ok;
}

static bool kv_cas(const berth_message_t *msg, berth_reply_t *reply, berth_error_t *err) {
    char *key = NULL, *value = NULL;
    int64_t revision = 0;
    berth_bucket_t bucket;
    bool ok = berth_json_string(msg->body.ptr, msg->body.len, "key", &key) == 1 &&
              berth_json_string(msg->body.ptr, msg->body.len, "value", &value) == 1 &&
              berth_json_int(msg->body.ptr, msg->body.len, "revision", &revision) >= 0;
    if (!ok)
        ok = berth_fail(err, 400, "Bad Request", "expected {\"key\", \"value\", \"revision\"}", NULL);
    else if ((ok = state(&bucket, err))) {
        uint64_t now;
        int set = berth_kv_set_if(&bucket, key, (const uint8_t *)value, strlen(value), (uint64_t)revision, &now, err);
        berth_kv_close(&bucket);
        ok = set >= 0;
        char text[48];
        if (set == 1) snprintf(text, sizeof text, "{\"revision\":%llu}", (unsigned long long)now);
        else snprintf(text, sizeof text, "{\"revision\":null}");
        if (ok) berth_reply_text(reply, text);
    }
    free(key);
    free(value);
    return ok;
}

static bool kv_revision(const berth_message_t *msg, berth_reply_t *reply, berth_error_t *err) {
    berth_bucket_t bucket;
    if (!state(&bucket, err)) return false;
    char *key = body_text(msg);
    uint64_t revision;
    int found = berth_kv_revision(&bucket, key, &revision, err);
    berth_kv_close(&bucket);
    free(key);
    char text[48];
    if (found == 1) snprintf(text, sizeof text, "{\"revision\":%llu}", (unsigned long long)revision);
    else snprintf(text, sizeof text, "{\"revision\":null}");
    if (found >= 0) berth_reply_text(reply, text);
    return found >= 0;
}

/* Appends `"key",` to a growing JSON array. */
struct keys { char *json; size_t len; };

static void add_key(const uint8_t *key, size_t len, void *ctx) {
    struct keys *k = ctx;
    k->json = realloc(k->json, k->len + len * 2 + 4);
    k->json[k->len++] = '"';
    for (size_t i = 0; i < len; i++) {
        if (key[i] == '"' || key[i] == '\\') k->json[k->len++] = '\\';
        k->json[k->len++] = (char)key[i];
    }
    k->json[k->len++] = '"';
    k->json[k->len++] = ',';
}

static bool kv_keys(const berth_message_t *msg, berth_reply_t *reply, berth_error_t *err) {
    berth_bucket_t bucket;
    if (!state(&bucket, err)) return false;
    struct keys k = {malloc(2), 1};
    k.json[0] = '[';
    bool ok = berth_kv_keys(&bucket, add_key, &k, err);
    berth_kv_close(&bucket);
    if (ok) {
        k.json = realloc(k.json, k.len + 2);
        if (k.json[k.len - 1] == ',') k.len--;
        k.json[k.len++] = ']';
        berth_reply_bytes(reply, (const uint8_t *)k.json, k.len);
    }
    free(k.json);
    return ok;
}

static bool kv_denied(const berth_message_t *msg, berth_reply_t *reply, berth_error_t *err) {
    berth_bucket_t bucket;
    if (!berth_kv_open("other", &bucket, err)) return false;
    berth_kv_close(&bucket);
    return true;
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
    berth_on_request("*.in.header", header);
    berth_on_request("*.in.param", param);
    berth_on_request("*.in.kv-set", kv_set);
    berth_on_request("*.in.kv-get", kv_get);
    berth_on_request("*.in.kv-delete", kv_delete);
    berth_on_request("*.in.kv-increment", kv_increment);
    berth_on_request("*.in.kv-cas", kv_cas);
    berth_on_request("*.in.kv-revision", kv_revision);
    berth_on_request("*.in.kv-keys", kv_keys);
    berth_on_request("*.in.kv-denied", kv_denied);
    return true;
}
