// The conformance contract (docs/conformance.md) in JavaScript.

import { BerthError, Router, jsonBody, publish, reply, replyJson, request } from "../../../guest-sdk/javascript/berth.js";

/** `P` of `P.in.<name>`: every subject this guest sends to is under it. */
const prefix = (msg) => msg.subject.split(".")[0];
let greeting = "";

export const handler = new Router()
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
  .handler();
