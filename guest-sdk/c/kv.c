/*
 * State for C guests: thin wrappers over the wasi:keyvalue and keyvalue-cas
 * bindings (c_backend.h) that turn their errors into Berth errors
 * and their borrowed strings into C strings. See berth.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "berth.h"

static c_backend_string_t str(const char *s) {
    return (c_backend_string_t){(uint8_t *)s, strlen(s)};
}

static wasi_keyvalue_store_borrow_bucket_t borrow(berth_bucket_t *bucket) {
    return wasi_keyvalue_store_borrow_bucket(bucket->handle);
}

/* Turns a wasi:keyvalue error into a Berth error (and frees it); returns false. */
static bool refused(const berth_bucket_t *bucket, const char *name, wasi_keyvalue_store_error_t *e,
                    berth_error_t *err) {
    const char *which = bucket ? bucket->name : name;
    char text[256];
    switch (e->tag) {
    case WASI_KEYVALUE_STORE_ERROR_ACCESS_DENIED:
        snprintf(text, sizeof text, "bucket `%s` is not granted: add it to this component's `keyvalue` in the manifest",
                 which);
        berth_fail(err, 403, "Forbidden", text, NULL);
        break;
    case WASI_KEYVALUE_STORE_ERROR_NO_SUCH_STORE:
        snprintf(text, sizeof text, "there is no bucket `%s`", which);
        berth_fail(err, 404, "Not Found", text, NULL);
        break;
    default: {
        size_t n = e->val.other.len < sizeof text - 1 ? e->val.other.len : sizeof text - 1;
        memcpy(text, e->val.other.ptr, n);
        text[n] = 0;
        if (strstr(text, "unavailable"))
            berth_fail(err, 503, "Service Unavailable", text, NULL);
        else
            berth_fail(err, 500, "Internal Server Error", text, NULL);
    }
    }
    wasi_keyvalue_store_error_free(e);
    return false;
}

bool berth_kv_open(const char *name, berth_bucket_t *bucket, berth_error_t *err) {
    c_backend_string_t id = str(name);
    wasi_keyvalue_store_error_t e;
    if (!wasi_keyvalue_store_open(&id, &bucket->handle, &e))
        return refused(NULL, name, &e, err);
    strncpy(bucket->name, name, sizeof bucket->name - 1);
    bucket->name[sizeof bucket->name - 1] = 0;
    return true;
}

void berth_kv_close(berth_bucket_t *bucket) {
    wasi_keyvalue_store_bucket_drop_own(bucket->handle);
}

int berth_kv_get(berth_bucket_t *bucket, const char *key, uint8_t **value, size_t *len, berth_error_t *err) {
    c_backend_string_t k = str(key);
    c_backend_option_list_u8_t found;
    wasi_keyvalue_store_error_t e;
    if (!wasi_keyvalue_store_method_bucket_get(borrow(bucket), &k, &found, &e))
        return refused(bucket, NULL, &e, err) ? 0 : -1;
    if (!found.is_some)
        return 0;
    /* The bytes are the caller's now, allocated with malloc as the bindings do. */
    *value = found.val.ptr;
    *len = found.val.len;
    return 1;
}

bool berth_kv_set(berth_bucket_t *bucket, const char *key, const uint8_t *value, size_t len, berth_error_t *err) {
    c_backend_string_t k = str(key);
    c_backend_list_u8_t v = {(uint8_t *)value, len};
    wasi_keyvalue_store_error_t e;
    return wasi_keyvalue_store_method_bucket_set(borrow(bucket), &k, &v, &e) || refused(bucket, NULL, &e, err);
}

bool berth_kv_delete(berth_bucket_t *bucket, const char *key, berth_error_t *err) {
    c_backend_string_t k = str(key);
    wasi_keyvalue_store_error_t e;
    return wasi_keyvalue_store_method_bucket_delete(borrow(bucket), &k, &e) || refused(bucket, NULL, &e, err);
}

int berth_kv_exists(berth_bucket_t *bucket, const char *key, berth_error_t *err) {
    c_backend_string_t k = str(key);
    bool set;
    wasi_keyvalue_store_error_t e;
    if (!wasi_keyvalue_store_method_bucket_exists(borrow(bucket), &k, &set, &e))
        return refused(bucket, NULL, &e, err) ? 0 : -1;
    return set;
}

bool berth_kv_increment(berth_bucket_t *bucket, const char *key, uint64_t delta, uint64_t *sum, berth_error_t *err) {
    c_backend_string_t k = str(key);
    wasi_keyvalue_store_error_t e;
    return wasi_keyvalue_atomics_increment(borrow(bucket), &k, delta, sum, &e) || refused(bucket, NULL, &e, err);
}

bool berth_kv_keys(berth_bucket_t *bucket, void (*each)(const uint8_t *key, size_t len, void *ctx), void *ctx,
                   berth_error_t *err) {
    uint64_t cursor = 0;
    bool more = false;
    for (;;) {
        wasi_keyvalue_store_key_response_t page;
        wasi_keyvalue_store_error_t e;
        if (!wasi_keyvalue_store_method_bucket_list_keys(borrow(bucket), more ? &cursor : NULL, &page, &e))
            return refused(bucket, NULL, &e, err);
        for (size_t i = 0; i < page.keys.len; i++)
            each(page.keys.ptr[i].ptr, page.keys.ptr[i].len, ctx);
        more = page.cursor.is_some;
        cursor = page.cursor.val;
        wasi_keyvalue_store_key_response_free(&page);
        if (!more)
            return true;
    }
}

int berth_kv_revision(berth_bucket_t *bucket, const char *key, uint64_t *revision, berth_error_t *err) {
    c_backend_string_t k = str(key);
    berth_backend_keyvalue_cas_option_versioned_t found;
    wasi_keyvalue_store_error_t e;
    if (!berth_backend_keyvalue_cas_get(borrow(bucket), &k, &found, &e))
        return refused(bucket, NULL, &e, err) ? 0 : -1;
    int set = found.is_some;
    if (set)
        *revision = found.val.revision;
    berth_backend_keyvalue_cas_option_versioned_free(&found);
    return set;
}

int berth_kv_set_if(berth_bucket_t *bucket, const char *key, const uint8_t *value, size_t len, uint64_t revision,
                    uint64_t *new_revision, berth_error_t *err) {
    c_backend_string_t k = str(key);
    c_backend_list_u8_t v = {(uint8_t *)value, len};
    c_backend_option_u64_t set;
    wasi_keyvalue_store_error_t e;
    if (!berth_backend_keyvalue_cas_set_if(borrow(bucket), &k, &v, revision, &set, &e))
        return refused(bucket, NULL, &e, err) ? 0 : -1;
    if (set.is_some)
        *new_revision = set.val;
    return set.is_some;
}
