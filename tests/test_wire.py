"""The wire refuses forged, duplicated, truncated, huge and pickled records with a WireError.

Everything the child sends is hostile input here: nothing may allocate what a length field
claims, unpickle, or fail with anything but a ``WireError``.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as npst

from grader.sandbox import wire

HEAD = struct.Struct("!4sII")


@pytest.fixture
def pipe() -> Iterator[tuple[wire.RecordReader, int]]:
    read_fd, write_fd = os.pipe()
    try:
        yield wire.RecordReader(read_fd), write_fd
    finally:
        for fd in (read_fd, write_fd):
            try:
                os.close(fd)
            except OSError:
                pass


def raw_record(
    body: bytes,
    blobs: list[bytes] = (),
    *,
    magic: bytes = b"GRW1",  # type: ignore[assignment]
    n_blobs: int | None = None,
) -> bytes:
    out = HEAD.pack(magic, len(body), len(blobs) if n_blobs is None else n_blobs) + body
    for blob in blobs:
        out += struct.pack("!Q", len(blob)) + blob
    return out


def read_one(data: bytes, *, close: bool = True, deadline: float = 2.0) -> Any:
    read_fd, write_fd = os.pipe()
    try:
        writer = threading.Thread(
            target=lambda: (os.write(write_fd, data), os.close(write_fd) if close else None)
        )
        writer.start()
        try:
            return wire.RecordReader(read_fd).read(time.monotonic() + deadline)
        finally:
            writer.join()
    finally:
        os.close(read_fd)
        if not close:
            os.close(write_fd)


def npy(header: str, payload: bytes = b"", version: bytes = b"\x01\x00") -> bytes:
    text = header.ljust(117) + "\n"
    size = struct.pack("<H" if version == b"\x01\x00" else "<I", len(text))
    return b"\x93NUMPY" + version + size + text.encode("latin-1") + payload


# --- framing ---------------------------------------------------------------------------------


def test_round_trip_and_duplicates_stay_in_step(pipe: tuple[wire.RecordReader, int]) -> None:
    reader, write_fd = pipe
    blobs: list[bytes] = []
    value = wire.encode_value({"a": np.arange(6.0).reshape(2, 3), "b": [1, 2.5, None]}, blobs)
    record = wire.encode_record({"id": 3, "ok": True, "value": value}, blobs)
    os.write(write_fd, record + record)  # the same record twice: two records, not one
    for _ in range(2):
        header, got_blobs = reader.read(time.monotonic() + 2)
        decoded = wire.decode_value(header["value"], got_blobs)
        assert header["id"] == 3
        np.testing.assert_array_equal(decoded["a"], np.arange(6.0).reshape(2, 3))
        assert decoded["b"] == [1, 2.5, None]


@pytest.mark.parametrize(
    "data, message",
    [
        (raw_record(b"{}", magic=b"EVIL"), "magic"),
        (HEAD.pack(b"GRW1", 0xFFFFFFFF, 0), "too large"),
        (HEAD.pack(b"GRW1", 2, 10**6) + b"{}", "too many arrays"),
        (HEAD.pack(b"GRW1", 2, 1) + b"{}" + struct.pack("!Q", 2**63), "too large"),
        (
            HEAD.pack(b"GRW1", 2, 3) + b"{}" + struct.pack("!Q", wire.MAX_BLOB_BYTES + 1),
            "too large",
        ),
        (raw_record(b'{"a": "\xff\xfe"}'), "not valid JSON"),
        (raw_record(b"[1, 2, 3]"), "not a JSON object"),
        (raw_record(b'"text"'), "not a JSON object"),
        (raw_record(b"null"), "not a JSON object"),
        (raw_record(b"{"), "not valid JSON"),
        (raw_record(b"[" * 100_000 + b"]" * 100_000), "not valid JSON"),
        (raw_record(b'{"id": ' + b"9" * 5000 + b"}"), "not valid JSON"),
    ],
    ids=[
        "magic",
        "json-4GB",
        "blob-count",
        "blob-8EB",
        "blob-cap",
        "utf8",
        "list",
        "string",
        "null",
        "cut-json",
        "deep",
        "long-int",
    ],
)
def test_forged_records_refused_before_allocating(data: bytes, message: str) -> None:
    started = time.monotonic()
    with pytest.raises(wire.WireError, match=message) as info:
        # the pipe stays open: a reader that believed a length would wait, not fail
        read_one(data, close=False)
    assert not isinstance(info.value, wire.WireTimeout)
    assert time.monotonic() - started < 1.5


def test_record_cut_short_is_eof_or_timeout() -> None:
    record = raw_record(b'{"id": 1, "ok": true}')
    with pytest.raises(wire.WireEOF):
        read_one(record[:-3], close=True)
    with pytest.raises(wire.WireTimeout):
        read_one(record[:-3], close=False, deadline=0.2)


@pytest.mark.parametrize(
    "header",
    [
        {"id": 1, "ok": False, "error": 5},
        {"id": 1, "ok": False, "error": ["TypeError"]},
        {"id": 1, "ok": False, "error": {"type": 7}},
        {"id": 1, "ok": "yes"},
        {"id": -1, "ok": True},
        {"id": True, "ok": True},
        {"id": 2**64, "ok": True},
        {"id": 1, "ok": True, "seconds": 10**300},
        {"id": 1, "ok": True, "stdout": ["x"]},
        {"id": 1, "ok": True, "names": {"f": "function"}},
        {"id": 1, "ok": True, "names": [["f", {}]]},
        {"id": 1, "ok": False, "missing": None},
    ],
)
def test_well_known_fields_must_have_their_types(header: dict[str, Any]) -> None:
    with pytest.raises(wire.WireError, match="wrong type"):
        read_one(raw_record(json.dumps(header).encode()))


def test_well_formed_reply_fields_pass() -> None:
    header = {
        "id": 4,
        "ok": False,
        "error": {"type": "E", "message": "m", "traceback": ""},
        "names": {"f": {"kind": "function", "type": "function"}},
        "stdout": "",
        "seconds": 0.25,
        "missing": "g",
    }
    got, blobs = read_one(raw_record(json.dumps(header).encode()))
    assert got == header and blobs == []


@settings(derandomize=True, max_examples=150, deadline=None)
@given(st.binary(max_size=300))
def test_any_byte_stream_is_a_record_or_a_wire_error(data: bytes) -> None:
    try:
        header, _ = read_one(data)
    except wire.WireError:
        return
    assert isinstance(header, dict)


# --- arrays -------------------------------------------------------------------------------


def test_header_claiming_terabytes_refused_without_allocating() -> None:
    blob = npy("{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000,), }")
    started = time.monotonic()
    with pytest.raises(wire.WireError, match="exceeds the cap"):
        wire.npy_to_array(blob)
    assert time.monotonic() - started < 0.5


CALLS: list[str] = []


def record_call() -> None:
    CALLS.append("unpickled")


class Bomb:
    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return (record_call, ())


def test_pickled_object_arrays_are_never_loaded() -> None:
    stream = io.BytesIO()
    arr = np.empty(2, dtype=object)
    arr[0], arr[1] = Bomb(), Bomb()
    np.save(stream, arr, allow_pickle=True)
    with pytest.raises(wire.WireError, match="refused array dtype"):
        wire.npy_to_array(stream.getvalue())
    # a raw pickle pretending to be an array, and a pickle behind a float header
    with pytest.raises(wire.WireError):
        wire.npy_to_array(pickle.dumps(Bomb()))
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }"
    with pytest.raises(wire.WireError, match="header says"):
        wire.npy_to_array(npy(header, pickle.dumps(Bomb())))
    assert CALLS == []


@pytest.mark.parametrize(
    "descr",
    [
        *("|O", "<U4", "|S4", "|V8", "<M8[s]", "<m8[s]", "[('a', '<f8')]", "[('a', '|O')]"),
        # number types that do not exist, in a plain header (the fast reader's own path)
        *("<i9", "<f3", "|b2", "<c4", "<u0"),
    ],
)
def test_only_numeric_dtypes(descr: str) -> None:
    quoted = descr if descr.startswith("[") else repr(descr)
    blob = npy(f"{{'descr': {quoted}, 'fortran_order': False, 'shape': (1,), }}", b"\0" * 16)
    with pytest.raises(wire.WireError):
        wire.npy_to_array(blob)


@pytest.mark.parametrize("shape", ["(-1,)", "(2.5,)", "('a',)", "(1,)*40", "(2**70, 2**70)"])
def test_bad_shapes(shape: str) -> None:
    blob = npy(f"{{'descr': '<f8', 'fortran_order': False, 'shape': {shape}, }}", b"\0" * 8)
    with pytest.raises(wire.WireError):
        wire.npy_to_array(blob)


def test_payload_must_match_header_exactly() -> None:
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }"
    assert wire.npy_to_array(npy(header, b"\0" * 16)).tolist() == [0.0, 0.0]
    for payload in (b"\0" * 8, b"\0" * 24):
        with pytest.raises(wire.WireError, match="header says"):
            wire.npy_to_array(npy(header, payload))


@settings(derandomize=True, max_examples=300, deadline=None)
@given(
    st.binary(max_size=200),
    st.sampled_from([b"", b"\x93NUMPY\x01\x00", b"\x93NUMPY\x02\x00", b"\x93NUMPY\x03\x00"]),
)
def test_any_blob_is_an_array_or_a_wire_error(tail: bytes, prefix: bytes) -> None:
    try:
        arr = wire.npy_to_array(prefix + tail)
    except wire.WireError:
        return
    assert isinstance(arr, np.ndarray) and arr.dtype.kind in "biufc"


def test_a_header_length_beyond_the_blob_is_refused() -> None:
    good = wire.array_to_npy(np.zeros(0))
    (length,) = struct.unpack_from("<H", good, 8)
    forged = good[:8] + struct.pack("<H", length + 64) + good[10:]
    with pytest.raises(wire.WireError):
        wire.npy_to_array(forged)


_NUMBER_DTYPES = st.sampled_from(
    ["|b1", "|i1", "<i2", ">i4", "<i8", "|u1", "<u4", "<f2", "<f4", ">f8", "<c8", "<c16"]
)


@settings(derandomize=True, max_examples=200, deadline=None)
@given(
    npst.arrays(
        _NUMBER_DTYPES.map(np.dtype),
        npst.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4),
    ),
    st.booleans(),
)
def test_arrays_travel_as_numpy_writes_them_and_come_back_the_same(
    arr: np.ndarray[Any, Any], transposed: bool
) -> None:
    if transposed:
        arr = arr.T  # not C-contiguous: written in C order
    blob = wire.array_to_npy(arr)
    ours = io.BytesIO()
    np.lib.format.write_array(ours, np.ascontiguousarray(arr) if arr.ndim else arr)
    assert blob == ours.getvalue()  # any .npy reader reads what the wire sends
    back = wire.npy_to_array(blob)
    assert back.dtype == arr.dtype and back.shape == arr.shape  # a 0-d array stays 0-d
    assert back.tobytes() == np.ascontiguousarray(arr).tobytes()
    assert back.flags.writeable and back.flags.c_contiguous


# --- values -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        {"t": "nd", "i": 5},
        {"t": "nd", "i": "0"},
        {"t": "list", "v": "abc"},
        {"t": "dict", "v": [[1]]},
        {"t": "dict", "v": [[{"t": "list", "v": []}, 1]]},
        {"t": "f", "v": "1e999"},
        {"t": "bigint", "v": "9" * 5000},
        {"t": "bigint", "v": "12ab"},
        {"t": "c", "re": "x", "im": "0"},
        {"t": "handle", "id": "1"},
        {"t": "pickle", "v": "gASV"},
        {"t": "sym", "text": 5},
        "x" * (wire.MAX_STR + 1),
        [1, 2],
    ],
    ids=lambda d: str(d)[:30],
)
def test_malformed_values_refused(data: Any) -> None:
    with pytest.raises(wire.WireError):
        wire.decode_value(data, [])


def test_nesting_and_size_caps() -> None:
    deep: Any = 1
    for _ in range(wire.MAX_DEPTH + 2):
        deep = {"t": "list", "v": [deep]}
    with pytest.raises(wire.WireError, match="deeply"):
        wire.decode_value(deep, [])
    wide = {"t": "list", "v": [0] * (wire.MAX_ITEMS + 1)}
    with pytest.raises(wire.WireError, match="too many items"):
        wire.decode_value(wide, [])


values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["t", "v", "i", "re", "im", "id", "text"]), inner, max_size=4
        )
        | st.builds(
            lambda t, v: {"t": t, "v": v},
            st.sampled_from(
                ["list", "tuple", "dict", "f", "bigint", "c", "nd", "handle", "sym", "x"]
            ),
            inner,
        )
    ),
    max_leaves=10,
)


@settings(derandomize=True, max_examples=150, deadline=None)
@given(values)
def test_any_json_value_decodes_or_raises_a_wire_error(data: Any) -> None:
    try:
        wire.decode_value(data, [b"not an array"])
    except wire.WireError:
        pass


# --- end to end: a student writes garbage into the reply pipe ------------------------------


GARBAGE_CELL = """
import gc, os
for obj in gc.get_objects():
    if type(obj).__name__ == "Child":
        os.write(obj.fd_out, b"GRW1\\x00\\x00\\x00\\x05\\x00\\x00\\x00\\x00[1,2]" + os.urandom(64))
        break
"""


@pytest.mark.slow
def test_garbage_in_the_reply_pipe_costs_only_that_cell() -> None:
    from grader.remote import Runner, SubmissionProxy
    from grader.sandbox.launcher import Launcher, Mode
    from grader.submission import Cell

    cells = [
        Cell(0, "code", "", code="def double(x):\n    return 2 * x\n", filename="<c1>"),
        Cell(1, "code", "", code=GARBAGE_CELL, filename="<c2>"),
        Cell(2, "code", "", code="after = 7\n", filename="<c3>"),
    ]
    runner = Runner(Launcher(Mode.BUBBLEWRAP), cells, module_name="__main__")
    try:
        runs = runner.start()
        proxy = SubmissionProxy(runner)
        assert [r.ok for r in runs] == [True, False, True]
        assert "invalid data" in runs[1].error_message
        assert proxy.double(21) == 42  # the restarted child serves the honest function
        assert proxy.get("after") == 7
    finally:
        runner.close()


@pytest.mark.slow
def test_a_function_that_hung_is_not_called_again() -> None:
    from grader.errors import StudentTimeout
    from grader.remote import Runner, SubmissionProxy, Timeouts
    from grader.sandbox.launcher import Launcher, Mode
    from grader.submission import Cell

    code = "def spin(x):\n    while True:\n        pass\n\ndef double(x):\n    return 2 * x\n"
    cells = [Cell(0, "code", "", code=code, filename="<c1>")]
    runner = Runner(
        Launcher(Mode.BUBBLEWRAP), cells, module_name="__main__", timeouts=Timeouts(call=1.0)
    )
    try:
        runner.start()
        proxy = SubmissionProxy(runner)
        with pytest.raises(StudentTimeout, match="did not finish within 1 s"):
            proxy.spin(1)
        runner.current_check_error = None  # the next check begins
        t0 = time.perf_counter()
        with pytest.raises(StudentTimeout, match=r"not called again.*within 1 s"):
            proxy.spin(2)
        assert time.perf_counter() - t0 < 0.5  # no second time limit spent
        assert proxy.double(21) == 42  # other functions are still called, in a new child
        assert runner.restarts == 1
    finally:
        runner.close()


BIG_RETURN = """
import numpy as np

def backward(x, y, w1, b1, w2, b2):
    return {"w1": np.ones(30_000_000), "b1": 0.0, "w2": 0.0, "b2": 0.0}

def many(n):
    return [np.ones(6_000_000) for _ in range(n)]
"""


@pytest.mark.slow
@pytest.mark.parametrize("zygote", [False, True])
def test_a_returned_array_too_large_is_said_so_the_same_way_with_or_without_a_zygote(
    zygote: bool,
) -> None:
    from grader.errors import CheckFailed
    from grader.grading import SandboxFactory
    from grader.remote import Runner, SubmissionProxy
    from grader.sandbox.launcher import Limits
    from grader.submission import Cell

    factory = SandboxFactory("bubblewrap", allow_fallback=False, zygote=zygote)
    cells = [Cell(0, "code", "", code=BIG_RETURN, filename="<c1>")]
    runner = Runner(
        factory.launcher(Limits()),
        cells,
        module_name="__main__",
        zygote=(lambda: factory.zygote(Limits())) if zygote else None,
    )
    try:
        runner.start()
        assert runner.child is not None and (runner.child.zygote is not None) == zygote
        proxy = SubmissionProxy(runner)
        with pytest.raises(CheckFailed) as info:
            proxy.backward(1.0, 1.0, 0.1, 0.2, 0.3, 0.4)
        assert info.value.message == (
            "backward(...) returned an array of shape (30000000,) (229 MiB), more than the "
            "64 MiB the grader accepts; it cannot be checked"
        )
        with pytest.raises(CheckFailed, match=r"arrays of 137 MiB in all, more than the 128"):
            proxy.many(3)  # each small enough, too much together
        assert len(proxy.many(1)[0]) == 6_000_000  # the child still serves
        assert runner.restarts == 0
    finally:
        runner.close()
        factory.close()


def test_a_too_large_tag_is_checked_like_any_value() -> None:
    with pytest.raises(wire.ValueTooLarge, match=r"shape \(3,\) \(1 MiB\)"):
        wire.decode_value({"t": "too_large", "bytes": 1 << 20, "shape": [3]}, [])
    for bad in ({"t": "too_large", "bytes": -1}, {"t": "too_large", "bytes": 1, "shape": "x"}):
        with pytest.raises(wire.WireError, match="malformed too_large"):
            wire.decode_value(bad, [])


def test_a_gradient_that_stayed_in_the_sandbox_is_named_by_its_own_type() -> None:
    from grader.checks.gradcheck import check_gradients
    from grader.errors import CheckFailed
    from grader.remote import RemoteHandle

    tagged = wire.Tagged("handle", handle_id=1, type_name="Gradients", repr_text="?")
    handle = RemoteHandle(None, tagged, "backward(...)")  # type: ignore[arg-type]
    with pytest.raises(CheckFailed, match=r"^backward\(\.\.\.\) returned Gradients; a dict"):
        check_gradients(handle, {"w1": np.zeros(())}, name="backward(...)")
