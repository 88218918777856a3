"""An HTTP component in Python written only against wasi:http (the
``proxy`` world Spin's and wasmCloud's Python components target), with no
Berth SDK. It answers ``hello from wasi:http: METHOD PATH``, with the
request's ``x-user`` header (if any) as ``x-seen-user`` and its body's
length as ``x-body-length``, as the Rust ``http-hello`` guest does."""

from componentize_py_types import Err, Ok
from wit_world import exports
from wit_world.imports import streams
from wit_world.imports.types import (
    Fields, IncomingRequest, Method_Other, OutgoingBody, OutgoingResponse, ResponseOutparam,
)


def method_name(request: IncomingRequest) -> str:
    method = request.method()
    if isinstance(method, Method_Other):
        return method.value
    return type(method).__name__.removeprefix("Method_").upper()


def read_body(request: IncomingRequest) -> bytes:
    body = request.consume()
    stream = body.stream()
    chunks = []
    while True:
        try:
            chunks.append(stream.blocking_read(64 * 1024))
        except Err as e:
            if isinstance(e.value, streams.StreamError_Closed):
                break
            raise
    stream.__exit__(None, None, None)
    body.__exit__(None, None, None)
    return b"".join(chunks)


class IncomingHandler(exports.IncomingHandler):
    def handle(self, request: IncomingRequest, response_out: ResponseOutparam) -> None:
        path = request.path_with_query() or ""
        text = f"hello from wasi:http: {method_name(request)} {path}".encode()
        headers = [("content-type", b"text/plain")]
        users = request.headers().get("x-user")
        if users:
            headers.append(("x-seen-user", users[0]))
        headers.append(("x-body-length", str(len(read_body(request))).encode()))
        response = OutgoingResponse(Fields.from_list(headers))
        body = response.body()
        ResponseOutparam.set(response_out, Ok(response))
        stream = body.write()
        stream.blocking_write_and_flush(text)
        stream.__exit__(None, None, None)
        OutgoingBody.finish(body, None)
