/* Berth for C guests: requests to the gateway's nodes and their clients. See berth.h. */
#include "berth.h"

#include <stdlib.h>
#include <string.h>

static c_backend_string_t text(const char *s) {
    return (c_backend_string_t){(uint8_t *)s, strlen(s)};
}

bool berth_gateway_send(berth_gateway_target_t to, const char *node, const char *name, const char *args,
                        const char *sender, char **result, berth_error_t *err) {
    c_backend_string_t n = text(node), m = text(name), from = text(sender ? sender : "");
    c_backend_list_u8_t a = {(uint8_t *)args, strlen(args)}, answer;
    if (!berth_backend_gateway_request(to, &n, &m, &a, sender ? &from : NULL, &answer, err)) return false;
    /* The answer is JSON text: handed back NUL-terminated, as the JSON reader takes it. */
    *result = malloc(answer.len + 1);
    memcpy(*result, answer.ptr, answer.len);
    (*result)[answer.len] = 0;
    c_backend_list_u8_free(&answer);
    return true;
}
