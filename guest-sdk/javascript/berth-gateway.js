// Requests to the WebSocket gateway's nodes and their clients
// (docs/gateway.md), from a component the manifest grants `gateway = true`,
// with the shape of the Rust SDK's berth_sdk::gateway:
//
//   import { sendClient } from "./berth-gateway.js";
//   // Node "alice"'s client answers with its on("greet") handler.
//   const answer = sendClient("alice", "greet", ["bob"]);
//
// A node is a client connected to some host's `[gateway]`; the request
// reaches it wherever it is connected. The arguments go as a JSON array and
// the result comes back parsed, as amqp-swarm's `send(name, ...args)`.
// Errors are BerthError with the host's code and kind: the answerer's own
// error (kind `handler`, with its message and data), `timeout`,
// `unhandled`, `no-responders` when no host holds the node, and 403
// without the grant.

import { request } from "berth:backend/gateway@0.1.0";
import { BerthError } from "./berth.js";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Request `name` of `node`'s client (its `on(name)` handler) with `args`, an array. */
export const sendClient = (node, name, args = []) => send("client", node, name, args);

/** Request `name` of the components of the host holding `node` (`<prefix>.server.<name>`). */
export const sendNode = (node, name, args = [], { sender } = {}) => send("server", node, name, args, sender);

/** Request `name` of `node`'s client through that node's `<prefix>.remote.<name>` handlers. */
export const sendRemoteClient = (node, name, args = [], { sender } = {}) =>
  send("remote-client", node, name, args, sender);

function send(to, node, name, args, sender) {
  let result;
  try {
    result = request(to, node, name, encoder.encode(JSON.stringify(args)), sender);
  } catch (e) {
    throw e?.payload ? BerthError.fromWit(e.payload) : e;
  }
  try {
    return JSON.parse(decoder.decode(result));
  } catch (e) {
    throw BerthError.internal(`the answer to \`${name}\` from node \`${node}\` is not JSON: ${e.message}`);
  }
}
