/*
 * Batches for C guests: `berth:backend/batch-handler` in the layout of
 * docs/batch-frames.md. The host hands the messages already queued for the
 * component in one call, as one buffer; each goes to the same route a
 * `handle-request` / `handle-event` call would reach, in order, and the
 * outcomes go back as one buffer. Messages point into the batch (no copy):
 * handlers get them `const` and copy what they keep, as always.
 *
 * A batch that cannot be read is answered with no outcomes, which makes
 * the host call each message on its own.
 */
#include <stdlib.h>
#include <string.h>

#include "berth.h"

typedef struct {
    const uint8_t *p;
    size_t len, pos;
    bool ok;
} reader_t;

static uint32_t u32(reader_t *r) {
    if (!r->ok || r->len - r->pos < 4) { r->ok = false; return 0; }
    const uint8_t *b = r->p + r->pos;
    r->pos += 4;
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static uint8_t u8(reader_t *r) {
    if (!r->ok || r->pos >= r->len) { r->ok = false; return 0; }
    return r->p[r->pos++];
}

/* A slice of the batch; empty (and the reader failed) if it runs past the end. */
static const uint8_t *slice(reader_t *r, size_t *n) {
    *n = u32(r);
    if (!r->ok || r->len - r->pos < *n) { r->ok = false; *n = 0; return r->p; }
    const uint8_t *s = r->p + r->pos;
    r->pos += *n;
    return s;
}

static void string(reader_t *r, c_backend_string_t *s) {
    size_t n;
    s->ptr = (uint8_t *)slice(r, &n);
    s->len = n;
}

typedef struct {
    uint8_t *p;
    size_t len, cap;
} writer_t;

static void put(writer_t *w, const void *bytes, size_t n) {
    if (w->cap - w->len < n) {
        size_t cap = w->cap * 2 > w->len + n ? w->cap * 2 : w->len + n;
        w->p = realloc(w->p, cap);
        if (!w->p) abort();
        w->cap = cap;
    }
    if (n) memcpy(w->p + w->len, bytes, n);
    w->len += n;
}

static void put_u8(writer_t *w, uint8_t v) { put(w, &v, 1); }

static void put_u32(writer_t *w, uint32_t v) {
    uint8_t b[4] = {v, v >> 8, v >> 16, v >> 24};
    put(w, b, 4);
}

static void put_bytes(writer_t *w, const uint8_t *bytes, size_t n) {
    put_u32(w, (uint32_t)n);
    put(w, bytes, n);
}

static void no_outcomes(c_backend_list_u8_t *ret) {
    static const uint8_t none[] = {'O', 1, 0, 0, 0, 0};
    ret->ptr = malloc(sizeof none);
    if (!ret->ptr) abort();
    memcpy(ret->ptr, none, sizeof none);
    ret->len = sizeof none;
}

/* Reads one message of the batch into `msg` (headers in `headers`, grown as needed). */
static bool read_message(reader_t *r, berth_message_t *msg, berth_headers_t *headers, size_t *headers_cap) {
    uint8_t flags = u8(r);
    string(r, &msg->subject);
    size_t n;
    msg->body.ptr = (uint8_t *)slice(r, &n);
    msg->body.len = n;
    uint32_t count = u32(r);
    if (!r->ok || count > (r->len - r->pos) / 8) return false;
    if (count > *headers_cap) {
        headers->ptr = realloc(headers->ptr, count * sizeof *headers->ptr);
        if (!headers->ptr) abort();
        *headers_cap = count;
    }
    headers->len = count;
    for (uint32_t i = 0; i < count; i++) {
        string(r, &headers->ptr[i].f0);
        string(r, &headers->ptr[i].f1);
    }
    msg->headers = *headers;
    msg->reply_to.is_some = flags & 1;
    if (flags & 1) string(r, &msg->reply_to.val);
    msg->correlation_id.is_some = (flags & 2) != 0;
    if (flags & 2) string(r, &msg->correlation_id.val);
    return r->ok;
}

static void put_error(writer_t *w, const berth_error_t *err) {
    put_u8(w, 2);
    put_u8(w, (uint8_t)err->kind);
    uint8_t code[2] = {err->code, err->code >> 8};
    put(w, code, 2);
    put_bytes(w, err->name.ptr, err->name.len);
    put_bytes(w, err->message.ptr, err->message.len);
    put_u8(w, err->data.is_some);
    if (err->data.is_some) put_bytes(w, err->data.val.ptr, err->data.val.len);
    put_u8(w, err->disposition == BERTH_BACKEND_TYPES_DISPOSITION_RETRY);
}

void exports_berth_backend_batch_handler_handle_batch(c_backend_list_u8_t *batch,
                                                      c_backend_list_u8_t *ret) {
    reader_t r = {batch->ptr, batch->len, 0, true};
    uint32_t count = 0;
    if (batch->len < 6 || batch->ptr[0] != 'B' || batch->ptr[1] != 1) r.ok = false;
    else { r.pos = 2; count = u32(&r); }
    writer_t w = {malloc(batch->len + 64), 0, batch->len + 64};
    if (!w.p) abort();
    put_u8(&w, 'O');
    put_u8(&w, 1);
    put_u32(&w, count);
    berth_headers_t headers = {NULL, 0};
    size_t headers_cap = 0;
    for (uint32_t i = 0; i < count && r.ok; i++) {
        berth_message_t msg;
        if (!read_message(&r, &msg, &headers, &headers_cap)) break;
        berth_error_t err;
        memset(&err, 0, sizeof err);
        if (msg.reply_to.is_some) {
            berth_reply_t reply;
            if (berth_dispatch_request(&msg, &reply, &err)) {
                put_u8(&w, 1);
                put_bytes(&w, reply.body.ptr, reply.body.len);
                put_u32(&w, (uint32_t)reply.headers.len);
                for (size_t h = 0; h < reply.headers.len; h++) {
                    put_bytes(&w, reply.headers.ptr[h].f0.ptr, reply.headers.ptr[h].f0.len);
                    put_bytes(&w, reply.headers.ptr[h].f1.ptr, reply.headers.ptr[h].f1.len);
                }
                berth_backend_types_reply_free(&reply);
                continue;
            }
            berth_backend_types_reply_free(&reply);
        } else if (berth_dispatch_event(&msg, &err)) {
            put_u8(&w, 0);
            continue;
        }
        put_error(&w, &err);
        berth_backend_types_error_free(&err);
    }
    free(headers.ptr);
    if (!r.ok || r.pos != batch->len) {
        free(w.p);
        no_outcomes(ret);
    } else {
        ret->ptr = w.p;
        ret->len = w.len;
    }
    c_backend_list_u8_free(batch);
}
