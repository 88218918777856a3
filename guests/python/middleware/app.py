"""A middleware in Python, written against Berth's WIT alone (world
``middleware-backend``, no helper layer), so the host calls its typed
``middleware.handle``, not the byte frames the Rust SDK takes.

It does what the Rust ``gatekeeper`` does with ``users = {"t-ann" =
"ann"}`` and ``required = true``: a message without a bearer token is
refused (401), an unknown token too; ``t-ann`` passes with ``x-user``
and ``x-lang = python`` set and the caller marked signed in. A message
with header ``x-answer`` is answered here with its value."""

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports import middleware
from wit_world.imports import types

USERS = {"t-ann": "ann"}


def refuse(message: str) -> Err:
    return Err(types.Error(types.ErrorKind.HANDLER, 401, "Unauthorized", message, None,
                           types.Disposition.REJECT))


def header(msg: types.Message, name: str):
    for n, v in msg.headers:
        if n.lower() == name:
            return v
    return None


class Handler(exports.Handler):
    def init(self, config: str) -> None:
        pass

    def handle_request(self, msg: types.Message) -> types.Reply:
        raise Err(types.Error(types.ErrorKind.UNHANDLED, 404, "Not Found", "a middleware handles nothing",
                              None, types.Disposition.REJECT))

    def handle_event(self, msg: types.Message) -> None:
        raise Err(types.Error(types.ErrorKind.UNHANDLED, 404, "Not Found", "a middleware handles nothing",
                              None, types.Disposition.REJECT))


class Middleware(exports.Middleware):
    def handle(self, msg: types.Message) -> middleware.Verdict:
        answer = header(msg, "x-answer")
        if answer is not None:
            body = f"answered by the python middleware: {answer}".encode()
            return middleware.Verdict_Respond(types.Reply(body, [("content-type", "text/plain")]))
        token = header(msg, "authorization")
        if token is None:
            raise refuse("a bearer token is required")
        user = USERS.get(token.removeprefix("Bearer ").strip())
        if user is None:
            raise refuse("unknown token")
        headers = [("x-user", user), ("x-lang", "python")]
        return middleware.Verdict_Pass(middleware.Pass(headers, middleware.Guard.SESSION))
