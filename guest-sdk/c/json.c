/* A small, validating reader for one level of a JSON object: enough for configs and
 * flat request bodies without pulling a JSON library into every C guest. See berth.h. */
#include "berth.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    const uint8_t *p, *end;
} cursor;

static void ws(cursor *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}

static bool at(cursor *c, uint8_t ch) { return c->p < c->end && *c->p == ch; }

static bool skip_string(cursor *c) {
    if (!at(c, '"')) return false;
    c->p++;
    while (c->p < c->end) {
        uint8_t ch = *c->p++;
        if (ch == '"') return true;
        if (ch < 0x20) return false;
        if (ch == '\\') {
            if (c->p == c->end) return false;
            c->p++;
        }
    }
    return false;
}

static bool is_word(uint8_t ch) {
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || ch == '-' || ch == '+' || ch == '.' || ch == 'E';
}

static bool skip_value(cursor *c, int depth) {
    ws(c);
    if (c->p == c->end || depth > 64) return false;
    uint8_t open = *c->p;
    if (open == '"') return skip_string(c);
    if (open == '{' || open == '[') {
        uint8_t close = open == '{' ? '}' : ']';
        c->p++;
        ws(c);
        if (at(c, close)) return c->p++, true;
        for (;;) {
            if (open == '{') {
                ws(c);
                if (!skip_string(c)) return false;
                ws(c);
                if (!at(c, ':')) return false;
                c->p++;
            }
            if (!skip_value(c, depth + 1)) return false;
            ws(c);
            if (at(c, ',')) { c->p++; continue; }
            if (at(c, close)) return c->p++, true;
            return false;
        }
    }
    const uint8_t *start = c->p;
    while (c->p < c->end && is_word(*c->p)) c->p++;
    size_t n = (size_t)(c->p - start);
    if (n == 0) return false;
    if ((n == 4 && !memcmp(start, "true", 4)) || (n == 5 && !memcmp(start, "false", 5)) ||
        (n == 4 && !memcmp(start, "null", 4)))
        return true;
    return *start == '-' || (*start >= '0' && *start <= '9');
}

/* Finds `key` among the members of the object `json`; 1 found (value in [*v, *v_end)), 0 absent, -1 invalid. */
static int find(const uint8_t *json, size_t len, const char *key, const uint8_t **v, const uint8_t **v_end) {
    cursor c = {json, json + len};
    size_t key_len = strlen(key);
    int found = 0;
    ws(&c);
    if (!at(&c, '{')) return -1;
    c.p++;
    ws(&c);
    if (!at(&c, '}')) {
        for (;;) {
            ws(&c);
            const uint8_t *k = c.p + 1;
            if (!skip_string(&c)) return -1;
            bool same = (size_t)(c.p - 1 - k) == key_len && !memcmp(k, key, key_len);
            ws(&c);
            if (!at(&c, ':')) return -1;
            c.p++;
            ws(&c);
            const uint8_t *start = c.p;
            if (!skip_value(&c, 1)) return -1;
            if (same && !found) found = 1, *v = start, *v_end = c.p;
            ws(&c);
            if (at(&c, ',')) { c.p++; continue; }
            if (at(&c, '}')) break;
            return -1;
        }
    }
    c.p++;
    ws(&c);
    return c.p == c.end ? found : -1;
}

int berth_json_int(const uint8_t *json, size_t len, const char *key, int64_t *out) {
    const uint8_t *v, *end;
    int found = find(json, len, key, &v, &end);
    if (found != 1) return found;
    bool negative = *v == '-';
    if (negative) v++;
    if (v == end) return -1;
    int64_t n = 0;
    for (; v < end; v++) {
        if (*v < '0' || *v > '9' || n > (INT64_MAX - 9) / 10) return -1;
        n = n * 10 + (*v - '0');
    }
    *out = negative ? -n : n;
    return 1;
}

int berth_json_string(const uint8_t *json, size_t len, const char *key, char **out) {
    const uint8_t *v, *end;
    int found = find(json, len, key, &v, &end);
    if (found != 1) return found;
    if (*v != '"') return -1;
    char *s = malloc((size_t)(end - v)), *w = s;
    for (v++; v < end - 1; v++) {
        if (*v != '\\') { *w++ = (char)*v; continue; }
        switch (*++v) {
            case '"': case '\\': case '/': *w++ = (char)*v; break;
            case 'b': *w++ = '\b'; break;
            case 'f': *w++ = '\f'; break;
            case 'n': *w++ = '\n'; break;
            case 'r': *w++ = '\r'; break;
            case 't': *w++ = '\t'; break;
            default: free(s); return -1; /* \u escapes: not decoded by this small reader */
        }
    }
    *w = 0;
    *out = s;
    return 1;
}
