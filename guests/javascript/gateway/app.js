// A gateway node's component in JavaScript (docs/gateway.md): `ask_back`
// asks the client that sent it (its node) the request its first argument
// names and answers with the client's answer; `ask_node` asks another
// node's client.

import { Router, header, jsonBody, replyJson } from "../../../guest-sdk/javascript/berth.js";
import { sendClient } from "../../../guest-sdk/javascript/berth-gateway.js";

const router = new Router()
  .request("swarm.client.ask_back", (msg) => {
    const [name] = jsonBody(msg);
    return replyJson(sendClient(header(msg, "swarm-node"), name));
  })
  .request("swarm.client.ask_node", (msg) => {
    const [node, name] = jsonBody(msg);
    return replyJson(sendClient(node, name));
  });

export const handler = router.handler();
export const batchHandler = router.batchHandler();
export const routes = router.routes();
