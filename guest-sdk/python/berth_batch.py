"""Batches for Python guests: ``berth:backend/batch-handler`` in the layout of docs/batch-frames.md.

The host hands a component that exports ``batch-handler`` every message
already queued for it in one call, as one buffer, and takes the outcomes
back as one buffer: one crossing into Python per batch instead of one per
message, and no field-by-field lifting of each message. ``Router`` uses
this module; an app only exports what it returns::

    Handler = router.handler()
    BatchHandler = router.batch_handler()

A batch that cannot be read is answered with no outcomes, which makes the
host call each message on its own.
"""

import struct
from typing import Any, List, Optional, Tuple, Union

from componentize_py_types import Err
from wit_world.imports import types

_U32 = struct.Struct("<I")
_U16 = struct.Struct("<H")

# What the host takes as "run these one at a time".
NO_OUTCOMES = b"O\x01\x00\x00\x00\x00"

Outcome = Union[None, types.Reply, types.Error]


def _bytes(frame: bytes, pos: int) -> Tuple[bytes, int]:
    (n,) = _U32.unpack_from(frame, pos)
    end = pos + 4 + n
    if end > len(frame):
        raise ValueError("a length runs past the end of the batch")
    return frame[pos + 4:end], end


def _string(frame: bytes, pos: int) -> Tuple[str, int]:
    raw, pos = _bytes(frame, pos)
    return raw.decode("utf-8"), pos


def read_batch(frame: bytes) -> List[types.Message]:
    """The messages of a batch frame; ``ValueError`` (or ``struct.error``) if it is malformed."""
    if len(frame) < 6 or frame[0] != ord("B") or frame[1] != 1:
        raise ValueError("not a version 1 batch frame")
    (count,) = _U32.unpack_from(frame, 2)
    pos, messages = 6, []
    for _ in range(count):
        flags = frame[pos]
        subject, pos = _string(frame, pos + 1)
        body, pos = _bytes(frame, pos)
        (n,) = _U32.unpack_from(frame, pos)
        pos += 4
        headers = []
        for _ in range(n):
            name, pos = _string(frame, pos)
            value, pos = _string(frame, pos)
            headers.append((name, value))
        reply_to: Optional[str] = None
        correlation_id: Optional[str] = None
        if flags & 1:
            reply_to, pos = _string(frame, pos)
        if flags & 2:
            correlation_id, pos = _string(frame, pos)
        messages.append(types.Message(subject, body, headers, reply_to, correlation_id))
    if pos != len(frame):
        raise ValueError("bytes after the last message")
    return messages


def _put_bytes(out: bytearray, raw: bytes) -> None:
    out += _U32.pack(len(raw))
    out += raw


def _put_string(out: bytearray, s: str) -> None:
    _put_bytes(out, s.encode("utf-8"))


def write_outcomes(outcomes: List[Outcome]) -> bytes:
    """The outcomes frame: ``None`` for a handled event, a ``Reply`` or an ``Error`` (the WIT records)."""
    out = bytearray(b"O\x01")
    out += _U32.pack(len(outcomes))
    for outcome in outcomes:
        if outcome is None:
            out.append(0)
        elif isinstance(outcome, types.Reply):
            out.append(1)
            _put_bytes(out, bytes(outcome.body))
            out += _U32.pack(len(outcome.headers))
            for name, value in outcome.headers:
                _put_string(out, name)
                _put_string(out, value)
        else:
            out.append(2)
            out.append(outcome.kind.value)
            out += _U16.pack(outcome.code)
            _put_string(out, outcome.name)
            _put_string(out, outcome.message)
            if outcome.data is None:
                out.append(0)
            else:
                out.append(1)
                _put_bytes(out, bytes(outcome.data))
            out.append(1 if outcome.disposition == types.Disposition.RETRY else 0)
    return bytes(out)


def batch_handler(handler: Any) -> type:
    """The class componentize-py exports as ``BatchHandler``, calling ``handler``'s
    ``handle_request`` (messages with a reply address) and ``handle_event`` in order."""

    class BatchHandler:
        def handle_batch(self, batch: bytes) -> bytes:
            try:
                messages = read_batch(bytes(batch))
            except (ValueError, struct.error, UnicodeDecodeError, IndexError):
                return NO_OUTCOMES
            outcomes: List[Outcome] = []
            for msg in messages:
                try:
                    if msg.reply_to is not None:
                        outcomes.append(handler.handle_request(msg))
                    else:
                        handler.handle_event(msg)
                        outcomes.append(None)
                except Err as e:
                    outcomes.append(e.value)
            return write_outcomes(outcomes)

    return BatchHandler
