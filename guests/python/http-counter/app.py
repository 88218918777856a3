"""A counter behind HTTP in Python, on the standard interfaces alone
(world ``counter``: ``wasi:http/proxy`` and ``wasi:keyvalue``), the shape
of wasmCloud's HTTP key-value counter: each request adds one to the
count of its path in bucket ``counts`` and answers ``count: N``."""

from componentize_py_types import Ok
from wit_world import exports
from wit_world.imports import atomics, store
from wit_world.imports.types import Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam


class IncomingHandler(exports.IncomingHandler):
    def handle(self, request: IncomingRequest, response_out: ResponseOutparam) -> None:
        bucket = store.open("counts")
        count = atomics.increment(bucket, request.path_with_query() or "/", 1)
        response = OutgoingResponse(Fields.from_list([("content-type", b"text/plain")]))
        body = response.body()
        ResponseOutparam.set(response_out, Ok(response))
        stream = body.write()
        stream.blocking_write_and_flush(f"count: {count}".encode())
        stream.__exit__(None, None, None)
        OutgoingBody.finish(body, None)
