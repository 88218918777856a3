/* A gateway node's component in C (docs/gateway.md): `ask_back` asks the client that sent it (its
 * node) the request its first argument names and answers with the client's answer; `ask_node` asks
 * another node's client. */
#include <stdlib.h>
#include <string.h>

#include "berth.h"

/* The `i`th string of a JSON array of plain strings (no escapes), NUL-terminated, to free(); NULL if
 * there is none. */
static char *nth_string(const uint8_t *json, size_t len, int i) {
    const char *p = (const char *)json, *end = p + len;
    for (;;) {
        const char *open = memchr(p, '"', (size_t)(end - p));
        if (!open) return NULL;
        const char *close = memchr(open + 1, '"', (size_t)(end - open - 1));
        if (!close) return NULL;
        if (i-- == 0) return strndup(open + 1, (size_t)(close - open - 1));
        p = close + 1;
    }
}

static bool ask(const char *node, char *name, berth_reply_t *reply, berth_error_t *err) {
    char *answer = NULL;
    bool ok = name && berth_gateway_send(BERTH_TO_CLIENT, node, name, "[]", NULL, &answer, err);
    if (!name) ok = berth_fail(err, 400, "Bad Request", "expected the name of a request", NULL);
    if (answer) {
        berth_reply_text(reply, answer);
        berth_add_header(&reply->headers, "content-type", "application/json");
    }
    free(answer);
    free(name);
    return ok;
}

static bool ask_back(const berth_message_t *msg, berth_reply_t *reply, berth_error_t *err) {
    const berth_string_t *node = berth_header(msg, "swarm-node");
    if (!node) return berth_fail(err, 400, "Bad Request", "no swarm-node header", NULL);
    char *me = strndup((const char *)node->ptr, node->len);
    bool ok = ask(me, nth_string(msg->body.ptr, msg->body.len, 0), reply, err);
    free(me);
    return ok;
}

static bool ask_node(const berth_message_t *msg, berth_reply_t *reply, berth_error_t *err) {
    char *node = nth_string(msg->body.ptr, msg->body.len, 0);
    if (!node) return berth_fail(err, 400, "Bad Request", "expected a node and the name of a request", NULL);
    bool ok = ask(node, nth_string(msg->body.ptr, msg->body.len, 1), reply, err);
    free(node);
    return ok;
}

bool berth_setup(const char *config, size_t len, berth_error_t *err) {
    berth_on_request("swarm.client.ask_back", ask_back);
    berth_on_request("swarm.client.ask_node", ask_node);
    return true;
}
