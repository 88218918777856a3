"""State for Python guests: the buckets the manifest grants, through the
standard ``wasi:keyvalue`` imports and Berth's compare-and-swap, with the
shape of the Rust SDK's ``berth_sdk::kv``::

    import berth_kv

    orders = berth_kv.open("orders")         # berth.Error 403 if not granted
    orders.set_json("order-1", {"qty": 2})
    seen = orders.increment("orders-seen")
    orders.update("count", lambda old: str(int(old or b"0") + 1).encode())

Errors are ``berth.Error``: 403 for a bucket not granted, 503 when the
backend is unavailable (an event is then retried), 409 when ``update``
loses 1,000 times in a row, 500 otherwise.

Build with world ``stateful-batched-backend`` (or ``stateful-backend``, without ``BatchHandler``):
``componentize-py -d wit -w stateful-batched-backend componentize -p guest-sdk/python -p . app -o app.wasm``.
"""

import json as _json
from typing import Any, Callable, List, Optional, Tuple, Union

from componentize_py_types import Err
from wit_world.imports import atomics, batch, keyvalue_cas, store

import berth

UPDATE_TRIES = 1000

Bytes = Union[bytes, str]


def _bytes(value: Bytes) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)


def _error(bucket: str, e: Any) -> berth.Error:
    if isinstance(e, store.Error_AccessDenied):
        return berth.Error(403, "Forbidden",
                           f"bucket `{bucket}` is not granted: add it to this component's `keyvalue` in the manifest")
    if isinstance(e, store.Error_NoSuchStore):
        return berth.Error.not_found(f"there is no bucket `{bucket}`")
    message = getattr(e, "value", str(e))
    if "unavailable" in message:
        return berth.Error(503, "Service Unavailable", message)
    return berth.Error.internal(message)


class Bucket:
    """An open bucket."""

    def __init__(self, name: str) -> None:
        self.name = name
        try:
            self._inner = store.open(name)
        except Err as e:
            raise _error(name, e.value)

    def _call(self, f: Callable, *args: Any) -> Any:
        try:
            return f(*args)
        except Err as e:
            raise _error(self.name, e.value)

    def get(self, key: str) -> Optional[bytes]:
        return self._call(self._inner.get, key)

    def get_json(self, key: str) -> Any:
        value = self.get(key)
        return None if value is None else _json.loads(value)

    def set(self, key: str, value: Bytes) -> None:
        self._call(self._inner.set, key, _bytes(value))

    def set_json(self, key: str, value: Any) -> None:
        self.set(key, _json.dumps(value))

    def delete(self, key: str) -> None:
        self._call(self._inner.delete, key)

    def exists(self, key: str) -> bool:
        return self._call(self._inner.exists, key)

    def keys(self) -> List[str]:
        """Every key, page after page."""
        keys: List[str] = []
        cursor = None
        while True:
            page = self._call(self._inner.list_keys, cursor)
            keys.extend(page.keys)
            if page.cursor is None:
                return keys
            cursor = page.cursor

    def increment(self, key: str, delta: int = 1) -> int:
        return self._call(atomics.increment, self._inner, key, delta)

    def get_many(self, keys: List[str]) -> List[Optional[bytes]]:
        found = self._call(batch.get_many, self._inner, keys)
        return [None if pair is None else pair[1] for pair in found]

    def set_many(self, pairs: List[Tuple[str, Bytes]]) -> None:
        self._call(batch.set_many, self._inner, [(k, _bytes(v)) for k, v in pairs])

    def delete_many(self, keys: List[str]) -> None:
        self._call(batch.delete_many, self._inner, keys)

    def get_versioned(self, key: str) -> Optional[Tuple[bytes, int]]:
        """The value and its revision, or None if the key is not set."""
        found = self._call(keyvalue_cas.get, self._inner, key)
        return None if found is None else (found.value, found.revision)

    def set_if(self, key: str, value: Bytes, revision: int) -> Optional[int]:
        """Sets ``key`` if its revision is still ``revision`` (0: if unset):
        the new revision, or None if another write came first."""
        return self._call(keyvalue_cas.set_if, self._inner, key, _bytes(value), revision)

    def update(self, key: str, change: Callable[[Optional[bytes]], Bytes]) -> bytes:
        """Read, change, write-if-unchanged, until no other write comes between."""
        for _ in range(UPDATE_TRIES):
            current = self.get_versioned(key)
            new = _bytes(change(None if current is None else current[0]))
            if self.set_if(key, new, 0 if current is None else current[1]) is not None:
                return new
        raise berth.Error(409, "Conflict", f"`{key}` in bucket `{self.name}` changed under {UPDATE_TRIES} updates in a row")


def open(name: str) -> Bucket:  # noqa: A001 - the name `store.open` has
    """Opens the bucket the manifest calls ``name``."""
    return Bucket(name)
