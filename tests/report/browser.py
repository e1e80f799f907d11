"""A headless Chromium driven over the DevTools protocol on a pipe: no WebSocket, no package.

`chromium --remote-debugging-pipe` reads protocol commands from file
descriptor 3 and writes replies and events to descriptor 4, each message a
JSON object ended by a NUL byte. `open_page` loads a file and returns what a
test asserts on: a full-page screenshot (PNG), the console messages,
uncaught exceptions and log entries, every URL the page asked for, and the
value of a JavaScript expression evaluated in the page.

Also a command, to look at a report:

    python tests/report/browser.py report.html screenshot.png [WIDTH]
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BINARIES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
TIMEOUT_S = 60.0


def find_chromium() -> str | None:
    """The path of a Chromium binary on PATH, or None."""
    for name in BINARIES:
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class Page:
    screenshot: bytes
    console: list[tuple[str, str]] = field(default_factory=list)
    """(level, text) of every console message, exception and log entry of the page."""
    requests: list[str] = field(default_factory=list)
    value: Any = None


class _Pipe:
    def __init__(self, binary: str, profile: str) -> None:
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def wire() -> None:  # in the child: commands on fd 3, replies on fd 4
            a, b = os.dup(to_child_r), os.dup(from_child_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [
                binary, "--headless", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu",
                "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                "--disable-background-networking", "--disable-dev-shm-usage",
                "--hide-scrollbars", f"--user-data-dir={profile}", "about:blank",
            ],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            pass_fds=(3, 4), preexec_fn=wire,
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, params: dict[str, Any] | None = None,
             session: str | None = None) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        os.write(self._to_child, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result
            self.events.append(reply)

    def wait_for(self, method: str) -> dict[str, Any]:
        for event in self.events:
            if event.get("method") == method:
                return event
        while True:
            event = self._read()
            self.events.append(event)
            if event.get("method") == method:
                return event

    def _read(self) -> dict[str, Any]:
        deadline = time.monotonic() + TIMEOUT_S
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._from_child], [], [], max(left, 0))
            if not ready:
                raise TimeoutError("chromium did not answer")
            chunk = os.read(self._from_child, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the pipe")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        parsed: dict[str, Any] = json.loads(message)
        return parsed

    def close(self) -> None:
        with contextlib.suppress(Exception):  # it may be gone already
            self.send("Browser.close")
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_child)
        os.close(self._from_child)


def open_page(path: Path, *, width: int = 1200, expression: str | None = None,
              binary: str | None = None) -> Page:
    """Load `path` in headless Chromium; return its full-page screenshot and what it logged."""
    binary = binary or find_chromium()
    if binary is None:
        raise FileNotFoundError("no chromium on PATH")
    with tempfile.TemporaryDirectory() as profile:
        pipe = _Pipe(binary, profile)
        try:
            target = pipe.send("Target.createTarget", {"url": "about:blank"})["targetId"]
            session = pipe.send(
                "Target.attachToTarget", {"targetId": target, "flatten": True}
            )["sessionId"]
            for domain in ("Page", "Runtime", "Log", "Network"):
                pipe.send(f"{domain}.enable", session=session)
            pipe.send("Emulation.setDeviceMetricsOverride",
                      {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False},
                      session=session)
            pipe.send("Page.navigate", {"url": path.resolve().as_uri()}, session=session)
            pipe.wait_for("Page.loadEventFired")
            value = None
            if expression is not None:
                value = pipe.send("Runtime.evaluate",
                                  {"expression": expression, "returnByValue": True},
                                  session=session)["result"].get("value")
            height = pipe.send("Page.getLayoutMetrics", session=session)["cssContentSize"]
            pipe.send("Emulation.setDeviceMetricsOverride",
                      {"width": width, "height": int(height["height"]) + 1,
                       "deviceScaleFactor": 1, "mobile": False}, session=session)
            shot = pipe.send("Page.captureScreenshot", {"format": "png"}, session=session)
            page = Page(base64.b64decode(shot["data"]), value=value)
            for event in pipe.events:
                page.console += _messages(event)
                if event.get("method") == "Network.requestWillBeSent":
                    page.requests.append(event["params"]["request"]["url"])
            return page
        finally:
            pipe.close()


def _messages(event: dict[str, Any]) -> list[tuple[str, str]]:
    method, params = event.get("method"), event.get("params", {})
    if method == "Runtime.consoleAPICalled":
        text = " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"])
        return [(params["type"], text)]
    if method == "Runtime.exceptionThrown":
        return [("exception", params["exceptionDetails"].get("text", ""))]
    if method == "Log.entryAdded":
        entry = params["entry"]
        return [(entry["level"], entry.get("text", ""))]
    return []


if __name__ == "__main__":
    html, png = Path(sys.argv[1]), Path(sys.argv[2])
    shown = open_page(html, width=int(sys.argv[3]) if len(sys.argv) > 3 else 1200)
    png.write_bytes(shown.screenshot)
    for level, message in shown.console:
        print(f"{level}: {message}")
