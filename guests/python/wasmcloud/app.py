"""A wasmCloud messaging component in Python, written against wasmCloud's
WIT alone (no Berth helper layer), keeping the part of the conformance
contract its world can express (docs/conformance.md): on ``P.in.<name>``,
by the last token, ``echo``, ``config`` (through wasi:config),
``publish``, ``call``, ``forbidden``, ``event`` and ``fail``. It answers
a request by publishing to its reply-to, as wasmCloud's examples do."""

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import consumer, logging, store
from wit_world.imports.types import BrokerMessage


def publish(subject, body):
    consumer.publish(BrokerMessage(subject, body, None))


class Handler(exports.Handler):
    def handle_message(self, msg: BrokerMessage) -> None:
        logging.log(logging.Level.DEBUG, "echo", f"message on {msg.subject}")
        prefix = msg.subject.split(".")[0]
        action = msg.subject.split(".")[-1]
        if action == "echo":
            answer = msg.body
        elif action == "config":
            answer = (store.get("greeting") or "").encode()
        elif action == "publish":
            publish(f"{prefix}.out.published", msg.body)
            answer = b""
        elif action == "call":
            answer = consumer.request(f"{prefix}.upstream", msg.body, 1000).body
        elif action == "forbidden":
            publish(f"{prefix}.secret", msg.body)
            answer = b""
        elif action == "event":
            publish(f"{prefix}.out.event", msg.body)
            return
        elif action == "fail":
            raise Err(f"failing on purpose on {msg.subject}")
        else:
            raise Err(f"no route for {msg.subject}")
        if msg.reply_to is not None:
            publish(msg.reply_to, answer)
