"""The sandboxed child: runs a submission's cells, then serves calls from the parent.

Runs inside the sandbox, as an unprivileged user, with student code in the same process: it
imports only the standard library and NumPy, holds no secret, and decides nothing. Whatever it
sends back is treated by the parent as the student's data, never as a verdict.

Protocol (one request, one reply, over two inherited pipes):
``init`` (limits, module name) → ``cell`` × N → ``names`` / ``get`` / ``call`` / ``attr`` /
``item`` / ``release`` … → EOF.
"""

from __future__ import annotations

import io
import linecache
import os
import resource
import sys
import time
import traceback
import types
from typing import Any

try:  # in the parent's package (tests) ...
    from . import wire
except ImportError:  # ... and inside the sandbox, where this folder is on sys.path
    import wire  # type: ignore[import-not-found,no-redef,unused-ignore]

OUTPUT_CAP = 64 * 1024
REPR_CAP = 300


class CappedText(io.TextIOBase):
    """A stdout/stderr replacement that keeps the first ``cap`` characters and drops the rest."""

    def __init__(self, cap: int = OUTPUT_CAP) -> None:
        self.cap = cap
        self.parts: list[str] = []
        self.size = 0
        self.dropped = 0

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        s = str(s)
        room = self.cap - self.size
        if room > 0:
            self.parts.append(s[:room])
            self.size += min(len(s), room)
        self.dropped += max(0, len(s) - max(room, 0))
        return len(s)

    def text(self) -> str:
        out = "".join(self.parts)
        if self.dropped:
            out += f"\n… ({self.dropped} more characters not shown)"
        return out


def _safe_str(obj: Any, cap: int = 2000) -> str:
    try:
        text = str(obj)
    except BaseException:  # a student's __str__ may raise anything
        text = f"<{type(obj).__name__} that cannot be shown>"
    return text if len(text) <= cap else text[:cap] + "…"


class Child:
    def __init__(self, fd_in: int, fd_out: int) -> None:
        self.reader = wire.RecordReader(fd_in)
        self.fd_out = fd_out
        self.module = types.ModuleType("__main__")
        self.namespace = self.module.__dict__
        self.handles: dict[int, Any] = {}
        self.next_handle = 1
        self.filenames: set[str] = set()

    # --- replies --------------------------------------------------------------------------

    def reply(self, header: dict[str, Any], blobs: list[bytes] | None = None) -> None:
        wire.write_record(self.fd_out, header, blobs)

    def make_handle(self, value: Any) -> dict[str, Any]:
        mod = type(value).__module__ or ""
        if mod.startswith("sympy"):
            text = _safe_str(value, wire.MAX_STR)
            if type(value).__name__ == "Equality":
                text = f"{_safe_str(value.lhs)} = {_safe_str(value.rhs)}"
            return {"t": "sym", "text": text, "type": type(value).__name__}
        hid = self.next_handle
        self.next_handle += 1
        self.handles[hid] = value
        try:
            rep = repr(value)[:REPR_CAP]
        except BaseException:
            rep = "?"
        return {"t": "handle", "id": hid, "type": type(value).__name__[:100], "repr": rep}

    def encode(self, value: Any, blobs: list[bytes]) -> Any:
        before = len(blobs)
        try:
            encoded = wire.encode_value(value, blobs, handle=self.make_handle)
        except wire.ValueTooLarge as exc:
            # Said as such: neither a handle (the student returned data) nor a broken reply.
            del blobs[before:]
            return exc.to_wire()
        except BaseException:
            del blobs[before:]
            return self.make_handle(value)
        total = sum(len(b) for b in blobs)
        if total > wire.MAX_RECORD_BYTES - wire.MAX_JSON_BYTES:
            del blobs[before:]
            return wire.ValueTooLarge(total).to_wire()
        return encoded

    def error_info(self, exc: BaseException) -> dict[str, Any]:
        frames = [
            f for f in traceback.extract_tb(exc.__traceback__) if f.filename in self.filenames
        ]
        lines = traceback.format_list(frames)
        try:
            only = traceback.format_exception_only(type(exc), exc)
        except BaseException:
            only = [type(exc).__name__ + "\n"]
        text = "Traceback (most recent call last):\n" + "".join(lines) + "".join(only)
        return {
            "type": type(exc).__name__,
            "message": _safe_str(exc),
            "traceback": text[-8000:],
        }

    # --- operations -----------------------------------------------------------------------

    def op_init(self, req: dict[str, Any]) -> dict[str, Any]:
        self.module.__name__ = str(req.get("module_name", "__main__"))
        self.namespace["__builtins__"] = __builtins__
        sys.modules[self.module.__name__] = self.module
        for name in req.get("preload", []):
            __import__(name)
        _install_notebook_stub()
        limits = req.get("limits") or {}
        apply_limits(limits)
        return {"ok": True}

    def op_cell(self, req: dict[str, Any]) -> dict[str, Any]:
        source = str(req["source"])
        filename = str(req.get("filename", "<cell>"))
        first_line = int(req.get("first_line", 1))
        self.filenames.add(filename)
        padded = "\n" * (first_line - 1) + source
        linecache.cache[filename] = (len(padded), None, padded.splitlines(True), filename)
        out, err = CappedText(), CappedText()
        started = time.perf_counter()
        old = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = out, err
        try:
            code = compile(padded, filename, "exec", dont_inherit=True)
            exec(code, self.namespace)
        except BaseException as exc:
            sys.stdout, sys.stderr = old
            info = self.error_info(exc)
            if isinstance(exc, SyntaxError):
                info["message"] = f"{exc.msg} (line {exc.lineno})"
            return {
                "ok": False,
                "error": info,
                "stdout": out.text(),
                "stderr": err.text(),
                "seconds": time.perf_counter() - started,
            }
        finally:
            sys.stdout, sys.stderr = old
        return {
            "ok": True,
            "stdout": out.text(),
            "stderr": err.text(),
            "seconds": time.perf_counter() - started,
        }

    def op_names(self, req: dict[str, Any]) -> dict[str, Any]:
        names: dict[str, dict[str, str]] = {}
        for name, value in list(self.namespace.items()):
            if name.startswith("_") or isinstance(value, types.ModuleType):
                continue
            kind = "function" if callable(value) else "value"
            names[name[:200]] = {"kind": kind, "type": type(value).__name__[:100]}
            if len(names) > 2000:
                break
        return {"ok": True, "names": names}

    def _target(self, req: dict[str, Any]) -> Any:
        if "handle" in req:
            return self.handles[int(req["handle"])]
        name = str(req["name"])
        if name not in self.namespace:
            raise _Missing(name)
        return self.namespace[name]

    def op_get(self, req: dict[str, Any]) -> tuple[dict[str, Any], list[bytes]]:
        try:
            value = self._target(req)
        except _Missing as missing:
            return {"ok": False, "missing": missing.name}, []
        blobs: list[bytes] = []
        return {"ok": True, "value": self.encode(value, blobs)}, blobs

    def op_call(
        self, req: dict[str, Any], blobs_in: list[bytes]
    ) -> tuple[dict[str, Any], list[bytes]]:
        try:
            func = self._target(req)
        except _Missing as missing:
            return {"ok": False, "missing": missing.name}, []
        if req.get("attr"):
            func = getattr(func, str(req["attr"]))
        args = wire.decode_value(req.get("args", {"t": "list", "v": []}), blobs_in)
        kwargs = wire.decode_value(req.get("kwargs", {"t": "dict", "v": []}), blobs_in)
        out, err = CappedText(), CappedText()
        old = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = out, err
        started = time.perf_counter()
        try:
            value = func(*args, **kwargs)
        except BaseException as exc:
            sys.stdout, sys.stderr = old
            return {"ok": False, "error": self.error_info(exc), "stdout": out.text()}, []
        finally:
            sys.stdout, sys.stderr = old
        seconds = time.perf_counter() - started
        blobs: list[bytes] = []
        reply: dict[str, Any] = {
            "ok": True,
            "value": self.encode(value, blobs),
            "stdout": out.text(),
            "stderr": err.text(),
            "seconds": seconds,
        }
        if req.get("return_args"):
            reply["args_after"] = self.encode(list(args), blobs)
            reply["kwargs_after"] = self.encode(dict(kwargs), blobs)
        return reply, blobs

    def op_attr(self, req: dict[str, Any]) -> tuple[dict[str, Any], list[bytes]]:
        target = self._target(req)
        try:
            if "key" in req:
                key = wire.decode_value(req["key"], [])
                value = target[key]
            else:
                value = getattr(target, str(req["attr"]))
        except BaseException as exc:
            return {"ok": False, "error": self.error_info(exc)}, []
        blobs: list[bytes] = []
        return {"ok": True, "value": self.encode(value, blobs)}, blobs

    def serve(self) -> None:
        while True:
            try:
                req, blobs_in = self.reader.read()
            except wire.WireEOF:
                return
            op = req.get("op")
            blobs: list[bytes] = []
            try:
                if op == "init":
                    reply = self.op_init(req)
                elif op == "cell":
                    reply = self.op_cell(req)
                elif op == "names":
                    reply = self.op_names(req)
                elif op == "get":
                    reply, blobs = self.op_get(req)
                elif op == "call":
                    reply, blobs = self.op_call(req, blobs_in)
                elif op in ("attr", "item"):
                    reply, blobs = self.op_attr(req)
                elif op == "release":
                    self.handles.pop(int(req["handle"]), None)
                    reply = {"ok": True}
                else:
                    reply = {
                        "ok": False,
                        "error": {
                            "type": "ProtocolError",
                            "message": f"unknown op {op!r}",
                            "traceback": "",
                        },
                    }
            except BaseException as exc:
                reply = {"ok": False, "error": self.error_info(exc)}
                blobs = []
            reply["id"] = req.get("id")
            self.reply(reply, blobs)


class _Missing(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _install_notebook_stub() -> None:
    """Templates hold ``from grader.notebook import check; check("5")`` cells for students.

    The grader package is not (and must not be) inside the sandbox: a stand-in ``check`` that
    only says so keeps those cells from failing.
    """
    package = types.ModuleType("grader")
    package.__path__ = []
    notebook = types.ModuleType("grader.notebook")

    def check(*args: Any, **kwargs: Any) -> None:
        print("(self-check cells do nothing while the grader runs your notebook)")

    notebook.check = check  # type: ignore[attr-defined]
    package.notebook = notebook  # type: ignore[attr-defined]
    sys.modules.setdefault("grader", package)
    sys.modules.setdefault("grader.notebook", notebook)


LIMIT_NAMES = {
    "cpu": resource.RLIMIT_CPU,
    "as": resource.RLIMIT_AS,
    "nproc": resource.RLIMIT_NPROC,
    "fsize": resource.RLIMIT_FSIZE,
    "nofile": resource.RLIMIT_NOFILE,
    "core": resource.RLIMIT_CORE,
}


def apply_limits(limits: dict[str, Any]) -> None:
    """Lower resource limits before any student code runs (soft < hard for CPU: SIGXCPU first)."""
    for key, value in limits.items():
        which = LIMIT_NAMES[key]
        if isinstance(value, list):
            soft, hard = int(value[0]), int(value[1])
        else:
            soft = hard = int(value)
        resource.setrlimit(which, (soft, hard))


def main(argv: list[str]) -> int:
    fd_in, fd_out = int(argv[0]), int(argv[1])
    # Student code must not read our requests from stdin nor write into our replies.
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    Child(fd_in, fd_out).serve()
    return 0


if __name__ == "__main__":  # pragma: no cover - entry point inside the sandbox
    sys.exit(main(sys.argv[1:]))
