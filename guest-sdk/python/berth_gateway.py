"""Requests to the WebSocket gateway's nodes and their clients
(docs/gateway.md), from a component the manifest grants ``gateway = true``,
with the shape of the Rust SDK's ``berth_sdk::gateway``::

    import berth_gateway

    # Node "alice"'s client answers with its on("greet") handler.
    answer = berth_gateway.send_client("alice", "greet", "bob")

A node is a client connected to some host's ``[gateway]``; the request
reaches it wherever it is connected. The arguments go as a JSON array and
the result comes back parsed, as amqp-swarm's ``send(name, ...args)``.
Errors are ``berth.Error`` with the host's code and kind: the answerer's
own error (kind ``handler``, with its message and data), ``timeout``,
``unhandled``, ``no-responders`` when no host holds the node, and 403
without the grant.
"""

import json as _json
from typing import Any, Optional

from componentize_py_types import Err
from wit_world.imports import gateway

import berth


def send_client(node: str, name: str, *args: Any) -> Any:
    """Request ``name`` of ``node``'s client (its ``on(name)`` handler)."""
    return _send(gateway.Target.CLIENT, node, name, args, None)


def send_node(node: str, name: str, *args: Any, sender: Optional[str] = None) -> Any:
    """Request ``name`` of the components of the host holding ``node``
    (``<prefix>.server.<name>``), on behalf of ``sender`` if given."""
    return _send(gateway.Target.SERVER, node, name, args, sender)


def send_remote_client(node: str, name: str, *args: Any, sender: Optional[str] = None) -> Any:
    """Request ``name`` of ``node``'s client through that node's
    ``<prefix>.remote.<name>`` handlers, on behalf of ``sender`` if given."""
    return _send(gateway.Target.REMOTE_CLIENT, node, name, args, sender)


def _send(to: gateway.Target, node: str, name: str, args: tuple, sender: Optional[str]) -> Any:
    try:
        body = _json.dumps(list(args)).encode()
    except (TypeError, ValueError) as e:
        raise berth.Error.internal(f"cannot encode the arguments of `{name}`: {e}")
    try:
        result = gateway.request(to, node, name, body, sender)
    except Err as e:
        raise berth.Error.from_wit(e.value)
    try:
        return _json.loads(bytes(result))
    except ValueError as e:
        raise berth.Error.internal(f"the answer to `{name}` from node `{node}` is not JSON: {e}")
