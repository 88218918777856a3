// `{{name}}.hello` answers {"name": "Ada"} with {"message": "Hello, Ada!"};
// `{{name}}.note` passes each event on to `audit.{{name}}`.
import { BerthError, Router, jsonBody, publish, replyJson } from "./berth.js";

let greeting = "Hello";

const router = new Router()
  .init((config) => { greeting = config.greeting ?? greeting; })
  .request("{{name}}.hello", (msg) => {
    const { name } = jsonBody(msg) ?? {};      // bad JSON: 400
    if (typeof name !== "string" || name === "") throw BerthError.badRequest("`name` must not be empty");
    return replyJson({ message: `${greeting}, ${name}!` });
  })
  .event("{{name}}.note", (msg) => publish("audit.{{name}}", msg.body));

export const handler = router.handler();       // the exports componentize-js looks for
export const batchHandler = router.batchHandler(); // queued messages, several per call
export const routes = router.routes();         // what the host checks the manifest against
