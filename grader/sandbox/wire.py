"""The wire between the trusted parent and the sandboxed child.

A record is a fixed header (magic, JSON length, number of blobs), a UTF-8 JSON object, then
each blob as an 8-byte length and its bytes. Blobs are NumPy ``.npy`` files. Values are encoded
as JSON with small tagged objects for containers, arrays, complex numbers, SymPy expressions
(sent as text) and handles (objects that stay in the child).

This module runs on both sides, so it imports only the standard library and NumPy. Decoding
never unpickles: ``.npy`` headers are checked (dtype kind, shape, size) before any allocation
and arrays are loaded with ``allow_pickle=False``. Everything the child sends is data.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import select
import struct
import time
from typing import Any

import numpy as np

MAGIC = b"GRW1"
_HEAD = struct.Struct("!4sII")
_BLOB = struct.Struct("!Q")

MAX_JSON_BYTES = 8 << 20
MAX_BLOBS = 256
MAX_BLOB_BYTES = 64 << 20
MAX_RECORD_BYTES = 128 << 20
MAX_DEPTH = 32
MAX_ITEMS = 200_000
MAX_STR = 1 << 20
ALLOWED_KINDS = frozenset("biufc")


class WireError(Exception):
    """The other side sent something that is not a valid record (or a refused value)."""


class ValueTooLarge(WireError):
    """A value too large to send: the child says so (tag ``too_large``) instead of sending it.

    ``nbytes`` is the array's size (or the reply's, ``shape`` None, for many arrays together).
    """

    def __init__(self, nbytes: int, shape: tuple[int, ...] | None = None) -> None:
        self.nbytes = nbytes
        self.shape = shape
        limit = MAX_BLOB_BYTES if shape is not None else MAX_RECORD_BYTES
        what = (
            f"an array of shape {shape} ({_mib(nbytes)})"
            if shape is not None
            else f"arrays of {_mib(nbytes)} in all"
        )
        super().__init__(
            f"{what}, more than the {_mib(limit)} the grader accepts"
            + (" in one value" if shape is None else "")
        )

    def to_wire(self) -> dict[str, Any]:
        return {"t": "too_large", "bytes": self.nbytes, "shape": self.shape}


def _mib(nbytes: int) -> str:
    return f"{nbytes / 2**20:.3g} MiB"


class WireEOF(WireError):
    """The other side closed the pipe (it exited or was killed)."""


class WireTimeout(WireError):
    """No complete record arrived before the deadline."""


# --- framing --------------------------------------------------------------------------------


def encode_record(header: dict[str, Any], blobs: list[bytes] | None = None) -> bytes:
    blobs = blobs or []
    body = json.dumps(header, separators=(",", ":"), allow_nan=True).encode("utf-8")
    parts = [_HEAD.pack(MAGIC, len(body), len(blobs)), body]
    for blob in blobs:
        parts.append(_BLOB.pack(len(blob)))
        parts.append(blob)
    return b"".join(parts)


def write_record(fd: int, header: dict[str, Any], blobs: list[bytes] | None = None) -> None:
    data = memoryview(encode_record(header, blobs))
    while data:
        n = os.write(fd, data)
        data = data[n:]


class RecordReader:
    """Reads records from a file descriptor, with a deadline, never trusting a length field."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._buf = bytearray()

    def _fill(self, n: int, deadline: float | None) -> None:
        while len(self._buf) < n:
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise WireTimeout("no reply before the deadline")
                ready, _, _ = select.select([self.fd], [], [], remaining)
                if not ready:
                    raise WireTimeout("no reply before the deadline")
            chunk = os.read(self.fd, max(65536, min(n - len(self._buf), 1 << 22)))
            if not chunk:
                raise WireEOF("the other side closed the connection")
            self._buf += chunk

    def _take(self, n: int, deadline: float | None) -> bytes:
        self._fill(n, deadline)
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def read(self, deadline: float | None = None) -> tuple[dict[str, Any], list[bytes]]:
        magic, json_len, n_blobs = _HEAD.unpack(self._take(_HEAD.size, deadline))
        if magic != MAGIC:
            raise WireError("bad record magic")
        if json_len > MAX_JSON_BYTES:
            raise WireError(f"record header too large ({json_len} bytes)")
        if n_blobs > MAX_BLOBS:
            raise WireError(f"too many arrays in one record ({n_blobs})")
        raw = self._take(json_len, deadline)
        try:
            header = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise WireError(f"record header is not valid JSON: {exc}") from exc
        if not isinstance(header, dict):
            raise WireError("record header is not a JSON object")
        check_fields(header)
        blobs: list[bytes] = []
        total = json_len
        for _ in range(n_blobs):
            (size,) = _BLOB.unpack(self._take(_BLOB.size, deadline))
            total += size
            if size > MAX_BLOB_BYTES or total > MAX_RECORD_BYTES:
                raise WireError(f"array payload too large ({size} bytes)")
            blobs.append(self._take(size, deadline))
        return header, blobs


def _is_str_map(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())


# The fields a reader acts on, with the shape it relies on. A record that breaks one of them is
# refused as a whole, so that no reader ever calls ``.get`` on a number or ``float`` on a
# 4000-digit integer that a student forged into the reply pipe.
_FIELD_CHECKS: dict[str, Any] = {
    "id": lambda v: v is None or (type(v) is int and 0 <= v < 2**63),
    "ok": lambda v: type(v) is bool,
    "op": lambda v: isinstance(v, str),
    "stdout": lambda v: isinstance(v, str),
    "stderr": lambda v: isinstance(v, str),
    "missing": lambda v: isinstance(v, str),
    "error": _is_str_map,
    "names": lambda v: isinstance(v, dict) and all(_is_str_map(i) for i in v.values()),
    "seconds": lambda v: type(v) in (int, float) and math.isfinite(v) and abs(v) < 1e12,
}


def check_fields(header: dict[str, Any]) -> None:
    """Refuse a record whose well-known fields do not have their documented types."""
    for key, ok in _FIELD_CHECKS.items():
        if key in header and not ok(header[key]):
            raise WireError(f"record field {key!r} has the wrong type")


# --- arrays ---------------------------------------------------------------------------------


# Version 1.0 ``.npy`` headers as NumPy writes them for plain C-ordered number arrays. Both
# ends write and read these directly: NumPy's own reader parses every header with
# ``ast.literal_eval``, which cost more than the rest of a small call. Any other header takes
# NumPy's path, and either way the same checks follow.
_NPY_V1 = b"\x93NUMPY\x01\x00"
_NPY_HEADER = re.compile(
    r"\{'descr': '([<>|][biufc][0-9]{1,2})', 'fortran_order': False, "
    r"'shape': \(((?:[0-9]{1,19}, )*(?:[0-9]{1,19},?)?)\), \} *\n"
)


def array_to_npy(array: np.ndarray[Any, Any]) -> bytes:
    if not array.flags.c_contiguous:  # (``ascontiguousarray`` would also make a 0-d array 1-d)
        array = np.ascontiguousarray(array)
    dtype = array.dtype
    if dtype.kind not in ALLOWED_KINDS or dtype.fields is not None or array.ndim > 32:
        out = io.BytesIO()
        np.lib.format.write_array(out, array, allow_pickle=False)
        return out.getvalue()
    header = f"{{'descr': {dtype.str!r}, 'fortran_order': False, 'shape': {array.shape!r}, }}"
    # Padded with spaces and a newline so that the data starts at a multiple of 64 bytes.
    size = len(_NPY_V1) + 2 + len(header) + 1
    header += " " * (-size % 64) + "\n"
    return b"".join(
        (_NPY_V1, struct.pack("<H", len(header)), header.encode("latin1"), array.tobytes())
    )


def _npy_header(blob: bytes) -> tuple[tuple[int, ...], bool, np.dtype[Any], int] | None:
    """Shape, Fortran order, dtype and data offset of a header NumPy writes for a plain array;
    None for any other (NumPy's own reader then decides)."""
    if len(blob) < 10 or not blob.startswith(_NPY_V1):
        return None
    (length,) = struct.unpack_from("<H", blob, 8)
    if len(blob) < 10 + length:
        return None  # a header longer than the blob: NumPy's reader refuses it
    match = _NPY_HEADER.fullmatch(blob[10 : 10 + length].decode("latin1"))
    if match is None:
        return None
    try:
        dtype = np.dtype(match.group(1))
    except TypeError:  # e.g. '<i9': not a type; NumPy's reader words the refusal
        return None
    shape = tuple(int(d) for d in match.group(2).split(",") if d.strip())
    return shape, False, dtype, 10 + length


def npy_to_array(blob: bytes, *, max_bytes: int = MAX_BLOB_BYTES) -> np.ndarray[Any, Any]:
    """Load an ``.npy`` blob after checking its header; refuses objects and oversized data."""
    known = _npy_header(blob)
    if known is not None:
        shape, fortran, dtype, offset = known
    else:
        stream = io.BytesIO(blob)
        try:
            version = np.lib.format.read_magic(stream)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
            else:
                raise WireError(f"unsupported .npy version {version}")
        except (ValueError, OSError, SyntaxError) as exc:
            raise WireError(f"bad array header: {exc}") from exc
        offset = stream.tell()
    if dtype.hasobject or dtype.kind not in ALLOWED_KINDS or dtype.fields is not None:
        raise WireError(f"refused array dtype {dtype.str!r} (only numbers are accepted)")
    if len(shape) > 32 or any((not isinstance(d, int)) or d < 0 for d in shape):
        raise WireError(f"refused array shape {shape!r}")
    count = math.prod(shape)
    nbytes = count * dtype.itemsize
    if nbytes > max_bytes:
        raise WireError(f"array of {nbytes} bytes exceeds the cap of {max_bytes}")
    data = blob[offset:]
    if len(data) != nbytes:
        raise WireError(f"array data has {len(data)} bytes, header says {nbytes}")
    arr = np.frombuffer(data, dtype=dtype, count=count)
    return arr.reshape(shape, order="F" if fortran else "C").copy()


# --- values ---------------------------------------------------------------------------------


def encode_value(value: Any, blobs: list[bytes], *, handle: Any = None, depth: int = 0) -> Any:
    """Encode a value for the wire. ``handle(value)`` turns anything else into a handle tag."""
    if depth > MAX_DEPTH:
        raise WireError("value nested too deeply")
    if value is None or type(value) in (bool, str):
        return value
    if type(value) is int:
        if abs(value) < 2**63:
            return value
        return {"t": "bigint", "v": str(value)}
    if type(value) is float:
        return value if math.isfinite(value) else {"t": "f", "v": repr(value)}
    if type(value) is complex:
        return {"t": "c", "re": repr(value.real), "im": repr(value.imag)}
    if isinstance(value, np.ndarray | np.generic):
        arr = np.asarray(value)
        if arr.dtype.kind in ALLOWED_KINDS and not arr.dtype.hasobject:
            if arr.nbytes > MAX_BLOB_BYTES:  # refused before any copy is made
                raise ValueTooLarge(int(arr.nbytes), tuple(int(d) for d in arr.shape))
            blobs.append(array_to_npy(np.array(arr)))
            return {"t": "nd", "i": len(blobs) - 1}
    if type(value) in (list, tuple):
        tag = "list" if type(value) is list else "tuple"
        items = [encode_value(v, blobs, handle=handle, depth=depth + 1) for v in value]
        return {"t": tag, "v": items}
    if type(value) is dict:
        pairs = [
            [
                encode_value(k, blobs, handle=handle, depth=depth + 1),
                encode_value(v, blobs, handle=handle, depth=depth + 1),
            ]
            for k, v in value.items()
        ]
        return {"t": "dict", "v": pairs}
    if handle is None:
        raise WireError(f"cannot send a value of type {type(value).__name__}")
    return handle(value)


def decode_value(
    data: Any, blobs: list[bytes], *, depth: int = 0, counter: list[int] | None = None
) -> Any:
    """Decode a wire value into plain Python/NumPy data (handles become ``Tagged`` values)."""
    if counter is None:
        counter = [0]
    counter[0] += 1
    if counter[0] > MAX_ITEMS:
        raise WireError("value has too many items")
    if depth > MAX_DEPTH:
        raise WireError("value nested too deeply")
    if data is None or isinstance(data, bool | int | float):
        return data
    if isinstance(data, str):
        if len(data) > MAX_STR:
            raise WireError("string too long")
        return data
    if not isinstance(data, dict):
        raise WireError(f"unexpected JSON value of type {type(data).__name__}")
    tag = data.get("t")
    if tag == "nd":
        index = data.get("i")
        if not isinstance(index, int) or not 0 <= index < len(blobs):
            raise WireError("array reference out of range")
        return npy_to_array(blobs[index])
    if tag in ("list", "tuple"):
        items = data.get("v")
        if not isinstance(items, list):
            raise WireError("malformed list")
        out = [decode_value(v, blobs, depth=depth + 1, counter=counter) for v in items]
        return out if tag == "list" else tuple(out)
    if tag == "dict":
        pairs = data.get("v")
        if not isinstance(pairs, list):
            raise WireError("malformed dict")
        result: dict[Any, Any] = {}
        for pair in pairs:
            if not isinstance(pair, list) or len(pair) != 2:
                raise WireError("malformed dict item")
            key = decode_value(pair[0], blobs, depth=depth + 1, counter=counter)
            try:
                result[key] = decode_value(pair[1], blobs, depth=depth + 1, counter=counter)
            except TypeError as exc:
                raise WireError("unhashable dict key") from exc
        return result
    if tag == "f":
        text = data.get("v")
        if text not in ("nan", "inf", "-inf"):
            raise WireError("malformed float")
        return float(text)
    if tag == "bigint":
        text = data.get("v")
        if not isinstance(text, str) or len(text) > 4000 or not text.lstrip("-").isdigit():
            raise WireError("malformed integer")
        return int(text)
    if tag == "c":
        try:
            return complex(float(data["re"]), float(data["im"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise WireError("malformed complex") from exc
    if tag in ("sym", "handle"):
        return Tagged.from_wire(data)
    if tag == "too_large":
        nbytes, shape = data.get("bytes"), data.get("shape")
        if type(nbytes) is not int or not 0 <= nbytes < 2**63:
            raise WireError("malformed too_large")
        if shape is not None and not (
            isinstance(shape, list)
            and len(shape) <= 32
            and all(type(d) is int and 0 <= d < 2**63 for d in shape)
        ):
            raise WireError("malformed too_large")
        raise ValueTooLarge(nbytes, None if shape is None else tuple(shape))
    raise WireError(f"unknown value tag {tag!r}")


class Tagged:
    """A value that stayed in the child: a SymPy expression (as text) or an opaque handle."""

    __slots__ = ("handle_id", "kind", "repr_text", "text", "type_name")

    def __init__(
        self,
        kind: str,
        *,
        text: str = "",
        handle_id: int | None = None,
        type_name: str = "",
        repr_text: str = "",
    ) -> None:
        self.kind = kind
        self.text = text
        self.handle_id = handle_id
        self.type_name = type_name
        self.repr_text = repr_text

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Tagged:
        def short(key: str, cap: int = MAX_STR) -> str:
            value = data.get(key, "")
            if not isinstance(value, str):
                raise WireError(f"malformed {key}")
            return value[:cap]

        if data["t"] == "sym":
            return cls("sym", text=short("text"), type_name=short("type", 200))
        hid = data.get("id")
        if not isinstance(hid, int):
            raise WireError("malformed handle")
        return cls(
            "handle", handle_id=hid, type_name=short("type", 200), repr_text=short("repr", 500)
        )

    def __repr__(self) -> str:
        if self.kind == "sym":
            return f"<sympy {self.type_name}: {self.text[:80]}>"
        return f"<{self.type_name} object>"
