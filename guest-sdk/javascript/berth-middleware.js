// A link of middleware in JavaScript (docs/http.md, "Middleware"): the host
// calls it before the handler of every route and subscription that lists
// it, and it passes the message on (setting headers, marking the caller),
// answers it itself, or refuses it:
//
//   import { BerthError, Router, header } from "./berth.js";
//   import { link, passOn } from "./berth-middleware.js";
//   let users = {};
//   const router = new Router().init((config) => { users = config.users ?? {}; });
//   export const handler = router.handler();
//   export const routes = router.routes();
//   export const middleware = link((msg) => {
//     const user = users[header(msg, "authorization") ?? ""];
//     if (user === undefined) throw new BerthError(401, "Unauthorized", "unknown token");
//     return passOn([["x-user", user]], "session");
//   });
//
// `berth build` builds such an app for world `stateful-middleware-backend`
// (state and the gateway as for any component), and the manifest marks it
// `middleware = true`. A link that returns nothing passes the message on as
// it is; a BerthError it throws stops the chain (a request gets it as its
// answer); any other exception is a 500.

import { BerthError } from "./berth.js";

/**
 * Go on to the next link, then the handler, with `headers` set (each
 * replacing its name's values) and the caller marked "session" or "admin"
 * if given.
 */
export const passOn = (headers = [], mark = undefined) => ({ tag: "pass", val: { headers, mark } });

/** Answer here: a request gets `reply` (berth.js's `reply`) and the handler is never called. */
export const respond = (reply) => ({ tag: "respond", val: reply });

/** The export componentize-js looks for: assign it to `middleware`. */
export function link(decide) {
  return {
    handle(msg) {
      let verdict;
      try {
        verdict = decide(msg);
      } catch (e) {
        // A thrown value is the export's `err`: always a WIT error record.
        throw (e instanceof BerthError ? e : BerthError.internal(`${e?.name ?? "Error"}: ${e?.message ?? e}`)).toWit();
      }
      return verdict ?? passOn();
    },
  };
}
