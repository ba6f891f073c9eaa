"""Plain data between a candidate's process and its verifier: nothing runs code on load.

A message is an 8-byte length, a JSON header and the raw bytes of any arrays. The
JSON holds numbers, strings, booleans, None, lists and tagged dicts; numpy arrays of
numeric dtype and ``bytes`` travel as raw buffers and are rebuilt with
``np.frombuffer`` (never pickle). Decoding checks every tag and size, because the
bytes come from a process the verifier does not trust.
"""

from __future__ import annotations

import json
import math
import socket
import struct
from typing import Any

import numpy as np

MAX_MESSAGE = 256 * 1024 * 1024
"""Largest message accepted (bytes): a bigger answer is refused, not read."""

_HEADER = struct.Struct("<QQ")  # JSON length, buffer length
_ARRAY_KINDS = "biufc"  # booleans, integers, floats, complex: no objects, no strings


class WireError(ValueError):
    """A value that cannot travel as plain data, or a malformed message."""


def _encode(value: Any, buffers: list[bytes], offset: list[int]) -> Any:
    kind = type(value)
    if value is None or kind in (bool, int, str):
        return value
    if kind is float:
        # JSON has no NaN/inf literals that every reader accepts: tag them
        if value != value or value in (float("inf"), float("-inf")):
            return {"f": repr(value)}
        return value
    if kind is list:
        if len(value) > 1 and all(type(v) is np.ndarray and v.ndim == 1 for v in value):
            dtypes = {v.dtype for v in value}
            if len(dtypes) == 1 and next(iter(dtypes)).kind in _ARRAY_KINDS:
                # many small arrays (e.g. a list of sets): one buffer, split on arrival
                data = np.concatenate(value).tobytes()
                buffers.append(data)
                offset[0] += len(data)
                return {"la": [value[0].dtype.str, [len(v) for v in value],
                               offset[0] - len(data), len(data)]}
        return [_encode(v, buffers, offset) for v in value]
    if kind is tuple:
        return {"t": [_encode(v, buffers, offset) for v in value]}
    if kind is dict:
        items = []
        for k, v in value.items():
            if type(k) is not str:
                raise WireError(f"a dict key is a {type(k).__name__}; use str keys")
            items.append([k, _encode(v, buffers, offset)])
        return {"d": items}
    if kind in (bytes, bytearray):
        data = bytes(value)
        buffers.append(data)
        offset[0] += len(data)
        return {"b": [offset[0] - len(data), len(data)]}
    if kind is np.ndarray:
        if value.dtype.kind not in _ARRAY_KINDS or value.dtype.hasobject:
            raise WireError(f"an array of dtype {value.dtype} cannot be returned; "
                            "use numbers")
        data = np.ascontiguousarray(value).tobytes()
        buffers.append(data)
        offset[0] += len(data)
        return {"a": [value.dtype.str, list(value.shape), offset[0] - len(data), len(data)]}
    if isinstance(value, np.generic) and type(value).__module__ == "numpy":
        if value.dtype.kind not in _ARRAY_KINDS:
            raise WireError(f"a numpy {value.dtype} scalar cannot be returned")
        return _encode(value.item(), buffers, offset)
    raise WireError(f"a {kind.__module__}.{kind.__qualname__} cannot be returned; return "
                    "numbers, strings, lists, tuples, dicts, bytes or numeric numpy arrays")


def encode(value: Any) -> bytes:
    """The message for ``value``.

    Raises:
        WireError: for anything but plain data (exact types; subclasses are refused).
    """
    buffers: list[bytes] = []
    offset = [0]
    try:
        header = json.dumps(_encode(value, buffers, offset)).encode()
    except RecursionError:
        raise WireError("the value is nested too deeply") from None
    body = b"".join(buffers)
    return _HEADER.pack(len(header), len(body)) + header + body


_dtypes: dict[str, np.dtype[Any]] = {}


def _dtype(text: Any) -> np.dtype[Any]:
    """The numeric dtype named ``text`` (parsed once per name)."""
    dtype = _dtypes.get(text) if type(text) is str else None
    if dtype is None:
        try:
            dtype = np.dtype(str(text))
        except TypeError:
            raise WireError("malformed message: bad dtype") from None
        if dtype.kind not in _ARRAY_KINDS or dtype.hasobject:
            raise WireError(f"malformed message: dtype {dtype}")
        if len(_dtypes) < 64:
            _dtypes[str(text)] = dtype
    return dtype


def _decode(node: Any, body: memoryview) -> Any:
    if node is None or type(node) in (bool, int, float, str):
        return node
    if type(node) is list:
        return [_decode(v, body) for v in node]
    if type(node) is not dict or len(node) != 1:
        raise WireError("malformed message")
    (tag, payload), = node.items()
    if tag == "f" and payload in ("nan", "inf", "-inf"):
        return float(payload)
    if tag == "t" and type(payload) is list:
        return tuple(_decode(v, body) for v in payload)
    if tag == "d" and type(payload) is list:
        out = {}
        for pair in payload:
            if type(pair) is not list or len(pair) != 2 or type(pair[0]) is not str:
                raise WireError("malformed message")
            out[pair[0]] = _decode(pair[1], body)
        return out
    if tag == "b" and type(payload) is list and len(payload) == 2:
        start, size = (int(x) for x in payload)
        if start < 0 or size < 0 or start + size > len(body):
            raise WireError("malformed message")
        return bytes(body[start:start + size])
    if tag == "a" and type(payload) is list and len(payload) == 4:
        dtype_str, shape, start, size = payload
        dtype = _dtype(dtype_str)
        if (type(shape) is not list or not all(type(d) is int and d >= 0 for d in shape)
                or type(start) is not int or type(size) is not int or start < 0
                or start + size > len(body)):
            raise WireError("malformed message")
        if math.prod(shape) * dtype.itemsize != size:
            raise WireError("malformed message: array size")
        array = np.frombuffer(body[start:start + size], dtype=dtype).reshape(shape)
        # native byte order and a writable copy: the verifier owns what it got
        return array.copy() if dtype.isnative else array.astype(dtype.newbyteorder("="))
    if tag == "la" and type(payload) is list and len(payload) == 4:
        dtype_str, lengths, start, size = payload
        dtype = _dtype(dtype_str)
        if (type(lengths) is not list or not all(type(n) is int and n >= 0 for n in lengths)
                or type(start) is not int or type(size) is not int or start < 0
                or start + size > len(body) or sum(lengths) * dtype.itemsize != size):
            raise WireError("malformed message")
        flat = np.frombuffer(body[start:start + size], dtype=dtype)
        flat = flat.copy() if dtype.isnative else flat.astype(dtype.newbyteorder("="))
        return np.split(flat, np.cumsum(lengths[:-1]))
    raise WireError("malformed message")


def decode(data: bytes) -> Any:
    """The value in a message made by :func:`encode` (from untrusted bytes).

    Raises:
        WireError: if the message is malformed.
    """
    if len(data) < _HEADER.size:
        raise WireError("malformed message: too short")
    json_len, body_len = _HEADER.unpack_from(data)
    if _HEADER.size + json_len + body_len != len(data):
        raise WireError("malformed message: lengths")
    try:
        tree = json.loads(data[_HEADER.size:_HEADER.size + json_len])
    except (ValueError, RecursionError):
        raise WireError("malformed message: header") from None
    try:
        return _decode(tree, memoryview(data)[_HEADER.size + json_len:])
    except RecursionError:
        raise WireError("malformed message: nested too deeply") from None


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks = []
    left = n
    while left:
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            raise EOFError("the other side closed the connection")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def send(sock: socket.socket, value: Any) -> None:
    """Send ``value`` as one message (WireError if it is not plain data)."""
    sock.sendall(encode(value))


def recv(sock: socket.socket, limit: int = MAX_MESSAGE) -> Any:
    """Receive one message; EOFError if the peer is gone, WireError if it is bad."""
    head = _recv_exact(sock, _HEADER.size)
    json_len, body_len = _HEADER.unpack(head)
    if json_len + body_len > limit:
        raise WireError(f"the answer is {json_len + body_len} bytes, over the "
                        f"{limit}-byte limit")
    return decode(head + _recv_exact(sock, json_len + body_len))
