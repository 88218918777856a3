"""A component of the WASI messaging proposal in Python, written against
its WIT alone (no Berth helper layer), keeping the part of the
conformance contract its world can express (docs/conformance.md): on
``P.in.<name>``, by the last token, ``echo`` (data, content type and
metadata back), ``publish``, ``call``, ``forbidden``, ``event`` and
``fail``."""

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import producer, request_reply, types


def client():
    return types.Client.connect("default")


class IncomingHandler(exports.IncomingHandler):
    def handle(self, message: types.Message) -> None:
        topic = message.topic() or ""
        prefix = topic.split(".")[0]
        action = topic.split(".")[-1]
        if action == "echo":
            answer = types.Message(message.data())
            content_type = message.content_type()
            if content_type is not None:
                answer.set_content_type(content_type)
            answer.set_metadata(message.metadata() or [])
        elif action == "publish":
            out = types.Message(message.data())
            out.add_metadata("conformance", "published")
            producer.send(client(), f"{prefix}.out.published", out)
            answer = types.Message(b"")
        elif action == "call":
            options = request_reply.RequestOptions()
            options.set_timeout_ms(1000)
            answers = request_reply.request(client(), f"{prefix}.upstream", message, options)
            answer = types.Message(answers[0].data() if answers else b"")
        elif action == "forbidden":
            producer.send(client(), f"{prefix}.secret", types.Message(b""))
            answer = types.Message(b"")
        elif action == "event":
            producer.send(client(), f"{prefix}.out.event", types.Message(message.data()))
            return
        elif action == "fail":
            raise Err(types.Error_Other(f"failing on purpose on {topic}"))
        else:
            raise Err(types.Error_Other(f"no route for {topic}"))
        request_reply.reply(message, answer)
