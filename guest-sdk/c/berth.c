/* Berth for C guests: the exports, routing, replies, errors and a JSON reader. See berth.h. */
#include "berth.h"

#include <stdlib.h>
#include <string.h>

#define MAX_ROUTES 64

static struct route {
    const char *pattern;
    berth_request_fn request;
    berth_event_fn event;
} routes[MAX_ROUTES];
static size_t route_count;

static void add_route(const char *pattern, berth_request_fn request, berth_event_fn event) {
    /* More routes than fit is a bug in the app: trap at init rather than drop one silently. */
    if (route_count == MAX_ROUTES) abort();
    routes[route_count++] = (struct route){pattern, request, event};
}

void berth_on_request(const char *pattern, berth_request_fn handler) { add_route(pattern, handler, NULL); }
void berth_on_event(const char *pattern, berth_event_fn handler) { add_route(pattern, NULL, handler); }

bool berth_matches(const char *pattern, const uint8_t *subject, size_t len) {
    const uint8_t *s = subject, *end = subject + len;
    bool more = len > 0; /* a subject token is left to match */
    while (*pattern) {
        size_t p_len = strcspn(pattern, ".");
        if (!more) return false;
        const uint8_t *dot = memchr(s, '.', (size_t)(end - s));
        size_t s_len = (size_t)((dot ? dot : end) - s);
        if (p_len == 1 && *pattern == '>') return s_len > 0;
        bool same = p_len == s_len && memcmp(pattern, s, s_len) == 0;
        if (!(p_len == 1 && *pattern == '*') && !same) return false;
        if (dot) s = dot + 1; else more = false;
        pattern += p_len;
        if (*pattern == '.') pattern++;
    }
    return !more;
}

static void fail_n(berth_error_t *err, berth_backend_types_error_kind_t kind, uint16_t code, const char *name,
                   const char *message, size_t message_len, const char *data) {
    err->kind = kind;
    err->code = code;
    c_backend_string_dup(&err->name, name);
    c_backend_string_dup_n(&err->message, message, message_len);
    err->data.is_some = data != NULL;
    if (data) {
        size_t n = strlen(data);
        err->data.val.ptr = malloc(n ? n : 1);
        memcpy(err->data.val.ptr, data, n);
        err->data.val.len = n;
    }
    err->disposition = code >= 500 ? BERTH_BACKEND_TYPES_DISPOSITION_RETRY : BERTH_BACKEND_TYPES_DISPOSITION_REJECT;
}

bool berth_fail(berth_error_t *err, uint16_t code, const char *name, const char *message, const char *data) {
    fail_n(err, BERTH_BACKEND_TYPES_ERROR_KIND_HANDLER, code, name, message, strlen(message), data);
    return false;
}

static bool unhandled(const berth_message_t *msg, berth_error_t *err, bool retry) {
    static const char prefix[] = "no handler for `";
    size_t n = sizeof prefix - 1 + msg->subject.len + 1;
    char *text = malloc(n);
    memcpy(text, prefix, sizeof prefix - 1);
    memcpy(text + sizeof prefix - 1, msg->subject.ptr, msg->subject.len);
    text[n - 1] = '`';
    fail_n(err, BERTH_BACKEND_TYPES_ERROR_KIND_UNHANDLED, 404, "Not Found", text, n, NULL);
    err->disposition = retry ? BERTH_BACKEND_TYPES_DISPOSITION_RETRY : BERTH_BACKEND_TYPES_DISPOSITION_REJECT;
    free(text);
    return false;
}

/* The exports wit-bindgen declares in c_backend.h. */

/* The routes berth_setup registered, requests first: what the host checks the manifest against. */
void exports_berth_backend_routes_routes(exports_berth_backend_routes_list_route_t *ret) {
    ret->len = 0;
    ret->ptr = route_count ? calloc(route_count, sizeof *ret->ptr) : NULL;
    if (route_count && !ret->ptr) abort();
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < route_count; i++) {
            bool request = routes[i].request != NULL;
            if (request != (pass == 0)) continue;
            exports_berth_backend_routes_route_t *r = &ret->ptr[ret->len++];
            c_backend_string_dup(&r->pattern, routes[i].pattern);
            r->kind = request ? EXPORTS_BERTH_BACKEND_ROUTES_ROUTE_KIND_REQUEST : EXPORTS_BERTH_BACKEND_ROUTES_ROUTE_KIND_EVENT;
        }
    }
}

bool exports_berth_backend_handler_init(c_backend_string_t *config, berth_error_t *err) {
    bool ok = berth_setup((const char *)config->ptr, config->len, err);
    c_backend_string_free(config);
    return ok;
}

bool berth_dispatch_request(const berth_message_t *msg, berth_reply_t *reply, berth_error_t *err) {
    memset(reply, 0, sizeof *reply);
    for (size_t i = 0; i < route_count; i++) {
        if (routes[i].request && berth_matches(routes[i].pattern, msg->subject.ptr, msg->subject.len)) {
            return routes[i].request(msg, reply, err);
        }
    }
    return unhandled(msg, err, true);
}

bool berth_dispatch_event(const berth_message_t *msg, berth_error_t *err) {
    for (size_t i = 0; i < route_count; i++) {
        if (routes[i].event && berth_matches(routes[i].pattern, msg->subject.ptr, msg->subject.len)) {
            return routes[i].event(msg, err);
        }
    }
    return unhandled(msg, err, false);
}

bool exports_berth_backend_handler_handle_request(berth_message_t *msg, berth_reply_t *reply, berth_error_t *err) {
    bool ok = berth_dispatch_request(msg, reply, err);
    berth_message_free(msg);
    return ok;
}

bool exports_berth_backend_handler_handle_event(berth_message_t *msg, berth_error_t *err) {
    bool ok = berth_dispatch_event(msg, err);
    berth_message_free(msg);
    return ok;
}

/* Replies and headers. */

void berth_reply_bytes(berth_reply_t *reply, const uint8_t *body, size_t len) {
    free(reply->body.ptr);
    reply->body.ptr = malloc(len ? len : 1);
    if (len) memcpy(reply->body.ptr, body, len);
    reply->body.len = len;
}

void berth_reply_text(berth_reply_t *reply, const char *text) {
    berth_reply_bytes(reply, (const uint8_t *)text, strlen(text));
}

static void push_header(berth_headers_t *headers, const uint8_t *name, size_t name_len, const uint8_t *value,
                        size_t value_len) {
    headers->ptr = realloc(headers->ptr, (headers->len + 1) * sizeof *headers->ptr);
    c_backend_tuple2_string_string_t *h = &headers->ptr[headers->len++];
    c_backend_string_dup_n(&h->f0, (const char *)name, name_len);
    c_backend_string_dup_n(&h->f1, (const char *)value, value_len);
}

void berth_add_header(berth_headers_t *headers, const char *name, const char *value) {
    push_header(headers, (const uint8_t *)name, strlen(name), (const uint8_t *)value, strlen(value));
}

void berth_copy_headers(berth_headers_t *to, const berth_headers_t *from) {
    for (size_t i = 0; i < from->len; i++)
        push_header(to, from->ptr[i].f0.ptr, from->ptr[i].f0.len, from->ptr[i].f1.ptr, from->ptr[i].f1.len);
}

/* Whether `len` bytes at `a` and the text `b` are equal, ASCII letters in either case. */
static bool same_ignoring_case(const uint8_t *a, const char *b, size_t len) {
    for (size_t i = 0; i < len; i++) {
        uint8_t x = a[i], y = (uint8_t)b[i];
        if (x >= 'A' && x <= 'Z') x += 32;
        if (y >= 'A' && y <= 'Z') y += 32;
        if (x != y) return false;
    }
    return true;
}

/* The first header named `prefix` then `name`. */
static const berth_string_t *find_header(const berth_message_t *msg, const char *prefix, const char *name) {
    size_t p = strlen(prefix), n = strlen(name);
    for (size_t i = 0; i < msg->headers.len; i++) {
        const berth_string_t *k = &msg->headers.ptr[i].f0;
        if (k->len == p + n && same_ignoring_case(k->ptr, prefix, p) && same_ignoring_case(k->ptr + p, name, n))
            return &msg->headers.ptr[i].f1;
    }
    return NULL;
}

const berth_string_t *berth_header(const berth_message_t *msg, const char *name) {
    return find_header(msg, "", name);
}

const berth_string_t *berth_param(const berth_message_t *msg, const char *name) {
    return find_header(msg, "berth-http-param-", name);
}

/* Host calls: the bindings borrow the message, so it can point at the caller's memory. */

static berth_message_t outgoing(const char *subject, const uint8_t *body, size_t len, const berth_headers_t *headers) {
    berth_message_t m;
    memset(&m, 0, sizeof m);
    m.subject.ptr = (uint8_t *)subject;
    m.subject.len = strlen(subject);
    m.body.ptr = (uint8_t *)body;
    m.body.len = len;
    if (headers) m.headers = *headers;
    return m;
}

bool berth_publish(const char *subject, const uint8_t *body, size_t len, const berth_headers_t *headers,
                   berth_error_t *err) {
    berth_message_t m = outgoing(subject, body, len, headers);
    return berth_backend_host_publish(&m, err);
}

bool berth_request(const char *subject, const uint8_t *body, size_t len, uint32_t timeout_ms,
                   berth_message_t *reply, berth_error_t *err) {
    berth_message_t m = outgoing(subject, body, len, NULL);
    return berth_backend_host_request(&m, timeout_ms, reply, err);
}

void berth_message_free(berth_message_t *msg) { berth_backend_types_message_free(msg); }
