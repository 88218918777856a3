/* `{{name}}.hello` answers {"name": "Ada"} with {"message": "Hello, Ada!"};
 * `{{name}}.note` passes each event on to `audit.{{name}}`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "berth.h"

static char *greeting = "Hello";

static bool hello(const berth_message_t *msg, berth_reply_t *reply, berth_error_t *err) {
    char *name = NULL;
    if (berth_json_string(msg->body.ptr, msg->body.len, "name", &name) != 1 || name[0] == '\0') {
        free(name);
        return berth_fail(err, 400, "Bad Request", "`name` must not be empty", NULL);
    }
    if (strpbrk(name, "\"\\") != NULL) { /* it is copied into JSON as it is */
        free(name);
        return berth_fail(err, 400, "Bad Request", "`name` must not hold quotes or backslashes", NULL);
    }
    char body[512];
    snprintf(body, sizeof body, "{\"message\":\"%s, %s!\"}", greeting, name);
    free(name);
    berth_reply_text(reply, body);
    berth_add_header(&reply->headers, "content-type", "application/json");
    return true;
}

static bool note(const berth_message_t *msg, berth_error_t *err) {
    /* false passes the host's refusal (grants, broker) on as this event's error */
    return berth_publish("audit.{{name}}", msg->body.ptr, msg->body.len, NULL, err);
}

bool berth_setup(const char *config, size_t len, berth_error_t *err) {
    berth_json_string((const uint8_t *)config, len, "greeting", &greeting);
    berth_on_request("{{name}}.hello", hello);
    berth_on_event("{{name}}.note", note);
    return true;
}
