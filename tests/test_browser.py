"""The report and the class summary in a real browser: headless Chromium over DevTools.

Each page is loaded from a file; the tests assert it is not blank (screenshot pixels), logs no
console error, requests nothing but itself, fits a phone's width, prints, and that a student's
``<script>`` (in markdown or in an HTML output) never runs.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import struct
import subprocess
import tempfile
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

from grader.report.gradebook import Entry, summarise
from grader.report.html import render_report, render_summary
from grader.results import CheckResult, GradeResult, GradientRow, GradientTable, Outcome
from grader.results import QuestionResult as Q
from grader.submission import read_submission

pytestmark = pytest.mark.browser

PWN = "<script>document.title='pwned';console.error('student script ran')</script>"
ONERROR = "<img src=x onerror=\"document.title='pwned'\">"


class Chromium:
    """A headless Chromium driven over ``--remote-debugging-pipe`` (fds 3 and 4)."""

    def __init__(self) -> None:
        exe = shutil.which("chromium") or shutil.which("chromium-browser")
        assert exe, "Chromium is not installed (apt-get install -y chromium)"
        self.profile = tempfile.TemporaryDirectory()
        cmd_r, self.cmd_w = os.pipe()
        self.ev_r, ev_w = os.pipe()

        def plumb() -> None:  # in the child: the pipes become fds 3 and 4, inheritable
            a, b = os.dup(cmd_r), os.dup(ev_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [
                exe,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--remote-debugging-pipe",
                f"--user-data-dir={self.profile.name}",
                "about:blank",
            ],
            preexec_fn=plumb,
            close_fds=False,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(cmd_r)
        os.close(ev_w)
        self.buf = b""
        self.next_id = 0
        self.events: list[dict[str, Any]] = []
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable", session=True)

    def call(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        session: bool = False,
        timeout: float = 30,
    ) -> dict[str, Any]:
        self.next_id += 1
        msg: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = self.session
        os.write(self.cmd_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self.next_id:
                assert "error" not in reply, reply["error"]
                return dict(reply["result"])
            self.events.append(reply)

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            assert left > 0, "Chromium did not answer in time"
            ready, _, _ = select.select([self.ev_r], [], [], left)
            if ready:
                chunk = os.read(self.ev_r, 1 << 20)
                assert chunk, "Chromium closed the DevTools pipe"
                self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return dict(json.loads(msg))

    def load(
        self, path: Path, *, width: int = 1000, height: int = 800, mobile: bool = False
    ) -> list[dict[str, Any]]:
        """Open ``path``; return the events it caused (requests, console, log)."""
        self.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
            session=True,
        )
        self.events.clear()
        self.call("Page.navigate", {"url": path.as_uri()}, session=True)
        deadline = time.monotonic() + 30
        while not any(e.get("method") == "Page.loadEventFired" for e in self.events):
            self.events.append(self._read(deadline))
        time.sleep(0.2)  # let late console messages or requests arrive
        self.call("Runtime.evaluate", {"expression": "1"}, session=True)
        return list(self.events)

    def eval(self, expression: str) -> Any:
        reply = self.call(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=True
        )
        return reply["result"].get("value")

    def screenshot(self, width: int = 320, height: int = 240) -> bytes:
        clip = {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}
        data = self.call("Page.captureScreenshot", {"format": "png", "clip": clip}, session=True)[
            "data"
        ]
        return base64.b64decode(data)

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=5)
        except (AssertionError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self.cmd_w)
        os.close(self.ev_r)
        self.profile.cleanup()


def png_pixels(png: bytes) -> tuple[int, int, list[tuple[int, int, int]]]:
    """Decode an 8-bit, non-interlaced RGB or RGBA PNG (what Chromium writes)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", b""
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, body = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour in (2, 6) and interlace == 0
    bpp = 3 if colour == 2 else 4
    raw, stride = zlib.decompress(idat), width * bpp
    prev = bytearray(stride)
    pixels: list[tuple[int, int, int]] = []
    for y in range(height):
        start = y * (stride + 1)
        kind, row = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = row[i - bpp] if i >= bpp else 0
            up, corner = prev[i], prev[i - bpp] if i >= bpp else 0
            if kind == 1:
                row[i] = (row[i] + left) & 255
            elif kind == 2:
                row[i] = (row[i] + up) & 255
            elif kind == 3:
                row[i] = (row[i] + (left + up) // 2) & 255
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                pred = left if pa <= pb and pa <= pc else (up if pb <= pc else corner)
                row[i] = (row[i] + pred) & 255
        pixels += [(row[i], row[i + 1], row[i + 2]) for i in range(0, stride, bpp)]
        prev = row
    return width, height, pixels


def assert_quiet(events: list[dict[str, Any]], page: Path) -> None:
    """No console error, no exception, no request other than the page itself."""
    requests = [
        e["params"]["request"]["url"]
        for e in events
        if e.get("method") == "Network.requestWillBeSent"
    ]
    assert requests == [page.as_uri()], requests
    errors = [
        e
        for e in events
        if e.get("method") == "Runtime.exceptionThrown"
        or (
            e.get("method") == "Runtime.consoleAPICalled"
            and e["params"]["type"] in ("error", "assert", "warning")
        )
        or (
            e.get("method") == "Log.entryAdded"
            and e["params"]["entry"]["level"] in ("error", "warning")
        )
    ]
    assert errors == [], errors


def assert_not_blank(png: bytes) -> None:
    width, height, pixels = png_pixels(png)
    dark = sum(1 for r, g, b in pixels if min(r, g, b) < 160)
    assert width * height == len(pixels) and dark > 0.01 * len(pixels), dark


@pytest.fixture(scope="module")
def browser() -> Iterator[Chromium]:
    chrome = Chromium()
    try:
        yield chrome
    finally:
        chrome.close()


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("pages")
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell(
            f"# My answers\n\n{PWN}\n\n{ONERROR}\n\n![remote](https://example.com/x.png)"
        ),
        nbformat.v4.new_code_cell(
            "def backward(x, y, w1, b1, w2, b2):\n    d2 = a2 - y\n    return {'w1': d2 * w2 * x}\n"
        ),
    ]
    nb.cells[1].outputs = [
        nbformat.v4.new_output(
            "display_data", data={"text/html": PWN + ONERROR, "text/plain": "<table>"}
        ),
        nbformat.v4.new_output(
            "display_data", data={"application/javascript": "document.title='pwned'"}
        ),
        nbformat.v4.new_output("stream", name="stdout", text=PWN),
    ]
    nb_path = root / "alice.ipynb"
    nb_path.write_text(nbformat.writes(nb), encoding="utf-8")
    rows = (
        GradientRow("w1", -0.4447, -0.1065, 0.61, False),
        GradientRow("b1", -0.6120, -0.1466, 0.61, False),
        GradientRow("w2", 0.1093, 0.1093, 1e-10, True),
    )
    check = CheckResult(
        name="gradients agree with finite differences",
        question="5",
        description=PWN,
        outcome=Outcome.FAILED,
        score=1.0,
        max_score=3.0,
        message=f"w1, b1 are wrong {PWN}",
        hint="check σ′(z1) = a1(1 − a1)",
        inputs=PWN,
        expected="w1: -0.1065",
        actual="w1: -0.4447",
        traceback=PWN,
        details=(GradientTable(rows, 1e-5, 1e-6),),
    )
    result = GradeResult(
        "backprop",
        "alice.ipynb",
        "process",
        (
            Q(
                "5",
                "code",
                f"backward {PWN}",
                1.0,
                3.0,
                (check,),
                answer_cell=1,
                answer_source="the cell that defines `backward`",
            ),
        ),
    )
    report = root / "alice.html"
    report.write_text(render_report(result, read_submission(nb_path), None), encoding="utf-8")
    entries = [
        Entry("alice", "alice", "alice.ipynb", "graded", result=result),
        Entry(f"bob{PWN}", f"bob{PWN}", "bob.ipynb", "unreadable", PWN),
    ]
    summary = root / "summary.html"
    summary.write_text(render_summary(summarise(entries, {}, folder="class")), encoding="utf-8")
    return {"report": report, "summary": summary}


@pytest.mark.parametrize("name", ["report", "summary"])
def test_page_renders_quietly_and_student_scripts_never_run(
    browser: Chromium, pages: dict[str, Path], name: str
) -> None:
    events = browser.load(pages[name])
    assert_quiet(events, pages[name])
    assert "pwned" not in browser.eval("document.title")
    assert browser.eval("document.scripts.length") == 0
    assert browser.eval("document.querySelectorAll('[onerror], iframe, object').length") == 0
    assert "<script>" in browser.eval("document.body.innerText")  # shown, as text
    assert_not_blank(browser.screenshot())


def test_report_explains_the_wrong_gradient_and_links_to_the_cell(
    browser: Chromium, pages: dict[str, Path]
) -> None:
    browser.load(pages["report"])
    text = " ".join(browser.eval("document.body.innerText").split())
    assert "Wrong: w1 (yours -0.4447, finite differences -0.1065, relative error 0.61" in text
    assert "Hint: check σ′(z1) = a1(1 − a1)" in text and "Weaker sandbox" in text
    assert browser.eval("document.querySelector('a[href=\"#cell-1\"]') !== null")
    assert browser.eval("document.getElementById('cell-1').innerText").count("backward") >= 1
    bars = browser.eval("document.querySelectorAll('svg.chart rect').length")
    assert bars == 3


@pytest.mark.parametrize("name", ["report", "summary"])
def test_page_fits_a_phone_and_prints(browser: Chromium, pages: dict[str, Path], name: str) -> None:
    events = browser.load(pages[name], width=390, height=844, mobile=True)
    assert_quiet(events, pages[name])
    assert browser.eval("document.documentElement.scrollWidth <= window.innerWidth + 1")
    assert_not_blank(browser.screenshot(300, 200))
    pdf = base64.b64decode(browser.call("Page.printToPDF", {}, session=True)["data"])
    assert pdf.startswith(b"%PDF") and pdf.count(b"/Type /Page") >= 1
