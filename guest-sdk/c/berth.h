/*
 * Berth for C guests: routing by subject, replies, errors with codes, and
 * a small JSON reader, over the bindings wit-bindgen generates from
 * Berth's WIT (c_backend.h: world `c-backend`). Build with
 * `berth-cc` (docs/c.md).
 *
 * An app defines berth_setup(), registers routes there, and writes
 * handlers that fill a reply or an error:
 *
 *     static bool hello(const berth_message_t *msg, berth_reply_t *reply, berth_error_t *err) {
 *         berth_reply_text(reply, "hello");
 *         return true;
 *     }
 *     bool berth_setup(const char *config, size_t len, berth_error_t *err) {
 *         berth_on_request("hello.>", hello);
 *         return true;
 *     }
 *
 * Memory: strings and bodies handed to the helpers are copied; what a
 * handler puts into reply or err is freed by the bindings after the host
 * has read it. The message a handler receives is freed after it returns.
 */
#ifndef BERTH_H
#define BERTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "c_backend.h"

typedef berth_backend_types_message_t berth_message_t;
typedef berth_backend_types_reply_t berth_reply_t;
typedef berth_backend_types_error_t berth_error_t;
typedef berth_backend_types_headers_t berth_headers_t;
typedef c_backend_string_t berth_string_t;

/* A request handler: fill `reply` and return true, or fill `err` (berth_fail) and return false. */
typedef bool (*berth_request_fn)(const berth_message_t *msg, berth_reply_t *reply, berth_error_t *err);
/* An event handler: return true, or fill `err` and return false. */
typedef bool (*berth_event_fn)(const berth_message_t *msg, berth_error_t *err);

/* Defined by the app: called once per instance with the config JSON object, before any message. */
bool berth_setup(const char *config, size_t len, berth_error_t *err);

/* Runs the route `msg` matches (a 404 `unhandled` error if none); `msg` stays the caller's. */
bool berth_dispatch_request(const berth_message_t *msg, berth_reply_t *reply, berth_error_t *err);
bool berth_dispatch_event(const berth_message_t *msg, berth_error_t *err);

/* Routes: NATS-style patterns (`*` one token, final `>` one or more); the first match wins. */
void berth_on_request(const char *pattern, berth_request_fn handler);
void berth_on_event(const char *pattern, berth_event_fn handler);
bool berth_matches(const char *pattern, const uint8_t *subject, size_t len);

/* Headers of a message: the first value of `name`, compared ignoring ASCII case, or NULL. The
 * value is the message's own (`->ptr`, `->len`; not NUL-terminated), valid while the message is. */
const berth_string_t *berth_header(const berth_message_t *msg, const char *name);
/* A path parameter of the HTTP route the request came by (`id` of `/orders/{id}`), percent-decoded,
 * or NULL: the host sends it as the header `berth-http-param-<name>` (docs/http.md). */
const berth_string_t *berth_param(const berth_message_t *msg, const char *name);

/* Replies. */
void berth_reply_bytes(berth_reply_t *reply, const uint8_t *body, size_t len);
void berth_reply_text(berth_reply_t *reply, const char *text);
void berth_add_header(berth_headers_t *headers, const char *name, const char *value);
/* Copies every header of `from` into `to`. */
void berth_copy_headers(berth_headers_t *to, const berth_headers_t *from);

/* Fills `err` with a handler error and returns false, so a handler can `return berth_fail(...)`.
 * `data` (may be NULL) is copied as the error's data, usually JSON. 5xx errors are retried. */
bool berth_fail(berth_error_t *err, uint16_t code, const char *name, const char *message, const char *data);

/* Sends through the host. On refusal `err` holds the host's error: return false to pass it on. */
bool berth_publish(const char *subject, const uint8_t *body, size_t len, const berth_headers_t *headers,
                   berth_error_t *err);
/* `reply` is owned by the caller: free it with berth_message_free. */
bool berth_request(const char *subject, const uint8_t *body, size_t len, uint32_t timeout_ms,
                   berth_message_t *reply, berth_error_t *err);
void berth_message_free(berth_message_t *msg);

/* JSON: reads one top-level member of a JSON object. Return 1 found, 0 absent, -1 when the
 * text is not a JSON object or the member has another type. */
int berth_json_int(const uint8_t *json, size_t len, const char *key, int64_t *out);
/* `*out` is a NUL-terminated copy to free(); escapes \" \\ \/ \b \f \n \r \t are decoded. */
int berth_json_string(const uint8_t *json, size_t len, const char *key, char **out);

/* State: the buckets the manifest grants (docs/keyvalue.md), through wasi:keyvalue and Berth's
 * compare-and-swap. Every call fills `err` on failure, as the Rust SDK's errors: 403 for a bucket
 * not granted, 503 when the backend is unavailable (an event is then retried), 500 otherwise. */
typedef struct berth_bucket_t {
    wasi_keyvalue_store_own_bucket_t handle;
    char name[65];
} berth_bucket_t;

bool berth_kv_open(const char *name, berth_bucket_t *bucket, berth_error_t *err);
void berth_kv_close(berth_bucket_t *bucket);
/* 1 found (`*value` is malloc'd, `*len` its size), 0 not set, -1 error. */
int berth_kv_get(berth_bucket_t *bucket, const char *key, uint8_t **value, size_t *len, berth_error_t *err);
bool berth_kv_set(berth_bucket_t *bucket, const char *key, const uint8_t *value, size_t len, berth_error_t *err);
bool berth_kv_delete(berth_bucket_t *bucket, const char *key, berth_error_t *err);
/* 1 set, 0 not set, -1 error. */
int berth_kv_exists(berth_bucket_t *bucket, const char *key, berth_error_t *err);
/* Adds `delta` to the decimal counter at `key` (0 if unset), atomically. */
bool berth_kv_increment(berth_bucket_t *bucket, const char *key, uint64_t delta, uint64_t *sum, berth_error_t *err);
/* Calls `each` for every key, page after page; the key is not NUL-terminated. */
bool berth_kv_keys(berth_bucket_t *bucket, void (*each)(const uint8_t *key, size_t len, void *ctx), void *ctx,
                   berth_error_t *err);
/* The key's revision: 1 found, 0 not set, -1 error. */
int berth_kv_revision(berth_bucket_t *bucket, const char *key, uint64_t *revision, berth_error_t *err);
/* Sets `key` if its revision is still `revision` (0: if unset): 1 set (`*new_revision`), 0 another write
 * came first, -1 error. */
int berth_kv_set_if(berth_bucket_t *bucket, const char *key, const uint8_t *value, size_t len, uint64_t revision,
                    uint64_t *new_revision, berth_error_t *err);

/* The gateway's nodes (docs/gateway.md), for a component the manifest grants `gateway = true`: sends
 * request `name` with `args` (a JSON array, NUL-terminated) to `node`'s client (BERTH_TO_CLIENT), to the
 * components of the host holding it (BERTH_TO_SERVER) or to its client through its `remote` handlers
 * (BERTH_TO_REMOTE_CLIENT), on behalf of `sender` (may be NULL). `*result` is the answer's JSON,
 * NUL-terminated, to free(); on failure `err` holds the host's error (its kind says who failed). */
typedef berth_backend_gateway_target_t berth_gateway_target_t;
#define BERTH_TO_CLIENT BERTH_BACKEND_GATEWAY_TARGET_CLIENT
#define BERTH_TO_SERVER BERTH_BACKEND_GATEWAY_TARGET_SERVER
#define BERTH_TO_REMOTE_CLIENT BERTH_BACKEND_GATEWAY_TARGET_REMOTE_CLIENT
bool berth_gateway_send(berth_gateway_target_t to, const char *node, const char *name, const char *args,
                        const char *sender, char **result, berth_error_t *err);

/* Middleware (docs/http.md, "Middleware"): a component the manifest marks `middleware = true`
 * registers its link in berth_setup. The host calls the link before the handler of every route
 * and subscription that lists the component. The verdict comes in as a pass with nothing set:
 * return true to pass the message on (with the headers and mark the link set), fill the reply
 * berth_respond gives to answer it here, or return berth_fail(...) to stop the chain with that
 * error (a request gets it as its answer). */
typedef exports_berth_backend_middleware_verdict_t berth_verdict_t;
typedef exports_berth_backend_middleware_guard_t berth_guard_t;
#define BERTH_SESSION EXPORTS_BERTH_BACKEND_MIDDLEWARE_GUARD_SESSION
#define BERTH_ADMIN EXPORTS_BERTH_BACKEND_MIDDLEWARE_GUARD_ADMIN
typedef bool (*berth_link_fn)(const berth_message_t *msg, berth_verdict_t *verdict, berth_error_t *err);
void berth_on_link(berth_link_fn link);
/* Sets a header on the message passed on, replacing every header of its name; no effect once the
 * verdict is a response. */
void berth_pass_header(berth_verdict_t *verdict, const char *name, const char *value);
/* Marks the caller as signed in (BERTH_SESSION, routes with guard = "session") or as an
 * administrator (BERTH_ADMIN, guard = "admin"); no effect once the verdict is a response. */
void berth_pass_mark(berth_verdict_t *verdict, berth_guard_t mark);
/* Turns the verdict into an answer and returns its reply to fill; the handler is never called. */
berth_reply_t *berth_respond(berth_verdict_t *verdict);

#endif
