# %% [markdown]
# Attack, issue 6 list 3: writing into the grader's reply pipe. `sigmoid` is honest (2 points).
# The child's own modules are importable inside the sandbox, so forging a record is easy: the
# reply fd is the child's `fd_out`, the id of the request being served is in a caller's frame.
# Every forgery must cost only the call that made it.

# %%
__assignment__ = "backprop"
import gc
import io
import json
import os
import struct
import sys

import numpy as np

import wire


def sigmoid(z):
    z = np.asarray(z, dtype=float)
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def _reply_fd():
    for obj in gc.get_objects():
        if type(obj).__name__ == "Child" and hasattr(obj, "fd_out"):
            return obj.fd_out
    raise RuntimeError("child not found")


def _request_id():
    frame = sys._getframe()
    while frame is not None:
        req = frame.f_locals.get("req")
        if isinstance(req, dict) and "id" in req:
            return req["id"]
        frame = frame.f_back
    raise RuntimeError("request not found")


def _raw(head_magic, body, blobs=(), n_blobs=None):
    out = struct.pack("!4sII", head_magic, len(body), len(blobs) if n_blobs is None else n_blobs)
    out += body
    for blob in blobs:
        out += struct.pack("!Q", len(blob)) + blob
    os.write(_reply_fd(), out)


def _npy(shape_text, descr="<f8", payload=b""):
    header = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, shape_text)
    header = header.ljust(117) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + payload


def _reply(value, blobs=()):
    return json.dumps({"id": _request_id(), "ok": True, "value": value, "stdout": "",
                       "stderr": "", "seconds": 0.0}).encode()


# %%
_raw(b"GRW1", json.dumps([1, 2, _request_id()]).encode())

# %%
_raw(b"GRW1", b"", n_blobs=0)
_raw(b"GRW1", b"x" * 16, n_blobs=0)

# %%
os.write(_reply_fd(), struct.pack("!4sII", b"GRW1", 0xFFFFFFF0, 0))

# %%
os.write(_reply_fd(), struct.pack("!4sII", b"GRW1", 2, 255) + b"{}" + struct.pack("!Q", 2**63))

# %%
os.write(_reply_fd(), b"EVIL" + b"\0" * 64)

# %%
_raw(b"GRW1", json.dumps({"id": _request_id(), "ok": True, "stdout": 10**4000 and "x",
                          "seconds": 1e308 * 10}).encode().replace(b"Infinity", b"1" * 5000))


# %%
def forward(x, w1, b1, w2, b2):
    if np.ndim(x) == 0:
        # an array header that claims terabytes, with no data behind it
        blob = _npy("(1000000000000,)")
        _raw(b"GRW1", _reply({"t": "tuple", "v": [{"t": "nd", "i": 0}, {"t": "nd", "i": 0}]}),
             [blob])
    else:
        # a pickled object array: loading it would run code in the grader
        stream = io.BytesIO()
        np.save(stream, np.array([print, 1], dtype=object), allow_pickle=True)
        _raw(b"GRW1", _reply({"t": "tuple", "v": [{"t": "nd", "i": 0}, {"t": "nd", "i": 0}]}),
             [stream.getvalue()])
    return 0.0, 0.0


def backward(x, y, w1, b1, w2, b2):
    # a truncated record: the header promises more JSON than follows
    _raw(b"GRW1", b'{"id": ' + str(_request_id()).encode(), n_blobs=0)
    os.write(_reply_fd(), struct.pack("!4sII", b"GRW1", 4000, 0) + b'{"id": 1')
    return {"w1": 0.0, "b1": 0.0, "w2": 0.0, "b2": 0.0}


def backward_batch(X, Y, W1, b1, W2, b2):
    if len(Y) == 5:
        # a well-formed forged reply, sent three times before the real one
        zeros = {"W1": np.zeros_like(W1), "b1": np.zeros_like(b1), "W2": np.zeros_like(W2),
                 "b2": 0.0}
        for _ in range(3):
            blobs = []
            value = wire.encode_value(zeros, blobs)
            _raw(b"GRW1", _reply(value), blobs)
        return zeros
    if len(Y) == 7:
        # invalid UTF-8 in the header
        _raw(b"GRW1", b'{"id": %d, "ok": true, "value": "\xff\xfe\xfd"}' % _request_id())
        return None
    deep = {"t": "list", "v": []}
    for _ in range(200):
        deep = {"t": "list", "v": [deep]}
    _raw(b"GRW1", _reply(deep))
    return None
