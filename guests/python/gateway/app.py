"""A gateway node's component in Python (docs/gateway.md): `ask_back`
asks the client that sent it (its node) the request its first argument
names and answers with the client's answer; `ask_node` asks another
node's client."""

import berth
import berth_gateway

router = berth.Router()


@router.request("swarm.client.ask_back")
def ask_back(msg):
    (name,) = berth.json_body(msg)
    return berth.reply_json(berth_gateway.send_client(berth.header(msg, "swarm-node"), name))


@router.request("swarm.client.ask_node")
def ask_node(msg):
    node, name = berth.json_body(msg)
    return berth.reply_json(berth_gateway.send_client(node, name))


Handler = router.handler()
BatchHandler = router.batch_handler()
Routes = router.routes()
