// The conformance contract (docs/conformance.md) in JavaScript.

import { BerthError, Router, header, jsonBody, param, publish, reply, replyJson, request, text } from "../../../guest-sdk/javascript/berth.js";
import { openBucket } from "../../../guest-sdk/javascript/berth-kv.js";

/** `P` of `P.in.<name>`: every subject this guest sends to is under it. */
const prefix = (msg) => msg.subject.split(".")[0];
let greeting = "";

const router = new Router()
  .init((config) => { greeting = config.greeting ?? ""; })
  .request("*.in.echo", (msg) => reply(msg.body, msg.headers))
  .request("*.in.json", (msg) => {
    const { a, b } = jsonBody(msg);
    return replyJson({ sum: a + b });
  })
  .request("*.in.fail", () => {
    throw new BerthError(418, "I'm a teapot", "short and stout", { data: { spout: true } });
  })
  .request("*.in.config", () => reply(greeting))
  .request("*.in.publish", (msg) => {
    publish(`${prefix(msg)}.out.published`, msg.body, [["conformance", "published"]]);
    return reply();
  })
  .request("*.in.call", (msg) => reply(request(`${prefix(msg)}.upstream`, msg.body).body))
  .request("*.in.forbidden", (msg) => {
    publish(`${prefix(msg)}.secret`, "leak");
    return reply();
  })
  .event("*.in.event", (msg) => publish(`${prefix(msg)}.out.event`, msg.body))
  .request("*.in.header", (msg) => {
    const value = header(msg, text(msg));
    if (value === undefined) throw BerthError.notFound(`no header \`${text(msg)}\``);
    return reply(value);
  })
  .request("*.in.param", (msg) => {
    const value = param(msg, text(msg));
    if (value === undefined) throw BerthError.notFound(`no parameter \`${text(msg)}\``);
    return reply(value);
  })
  .request("*.in.kv-set", (msg) => {
    const { key, value } = jsonBody(msg);
    openBucket("state").set(key, value);
    return reply();
  })
  .request("*.in.kv-get", (msg) => {
    const value = openBucket("state").get(text(msg));
    if (value === undefined) throw BerthError.notFound(`no key \`${text(msg)}\``);
    return reply(value);
  })
  .request("*.in.kv-delete", (msg) => {
    openBucket("state").delete(text(msg));
    return reply();
  })
  .request("*.in.kv-increment", (msg) => reply(String(openBucket("state").increment(text(msg)))))
  .request("*.in.kv-cas", (msg) => {
    const { key, value, revision = 0 } = jsonBody(msg);
    return replyJson({ revision: openBucket("state").setIf(key, value, revision) ?? null });
  })
  .request("*.in.kv-revision", (msg) => replyJson({ revision: openBucket("state").getVersioned(jsonBody(msg))?.revision ?? null }))
  .request("*.in.kv-keys", () => replyJson(openBucket("state").keys()))
  .request("*.in.kv-denied", () => {
    openBucket("other");
    return reply();
  });

export const handler = router.handler();
export const batchHandler = router.batchHandler();
export const routes = router.routes();
