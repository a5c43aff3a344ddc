"""Open a local HTML file in a real headless Chromium and report what it loaded.

Chromium is driven through the DevTools protocol over a pipe (``--remote-debugging-pipe``: JSON
messages separated by NUL bytes, read from fd 3 and written to fd 4), so no port is opened and
no Python package is needed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

IMAGES = "JSON.stringify([...document.images].map(i => [i.alt, i.complete, i.naturalWidth, i.naturalHeight]))"


def chromium() -> str | None:
    """The Chromium executable (Debian's package: `chromium`), if installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass(frozen=True)
class PageLoad:
    images: list[tuple[str, bool, int, int]]  # alt, complete, naturalWidth, naturalHeight
    requests: list[str]  # the URL of every request the page made, the page itself included
    blocked: list[str]  # what the page's Content-Security-Policy refused


class DevTools:
    def __init__(self, process: subprocess.Popen, to_browser: int, from_browser: int, limit_s: float):
        self.process, self.to_browser, self.from_browser = process, to_browser, from_browser
        self.deadline = time.monotonic() + limit_s
        self.buffer, self.events, self.next_id = b"", [], 0

    def _message(self) -> dict:
        while b"\0" not in self.buffer:
            if time.monotonic() > self.deadline:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self.from_browser, 1 << 16)
            if not chunk:
                raise RuntimeError(f"Chromium closed the pipe (exit code {self.process.poll()})")
            self.buffer += chunk
        raw, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method: str, session: str | None = None, **params) -> dict:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self.to_browser, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._message()
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def wait_for(self, method: str) -> dict:
        for event in self.events:
            if event.get("method") == method:
                return event
        while True:
            event = self._message()
            self.events.append(event)
            if event.get("method") == method:
                return event


def load(page: Path, limit_s: float = 60) -> PageLoad:
    """Open ``page`` (a file) in headless Chromium; the images' decoded sizes and every request."""
    browser_to_us, us_to_browser = os.pipe(), os.pipe()
    with tempfile.TemporaryDirectory() as profile:
        command = [
            chromium(),
            "--headless=new",
            "--no-sandbox",  # the tests may run as root
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            f"--user-data-dir={profile}",
            "--remote-debugging-pipe",
            "about:blank",
        ]
        # fd 3: what the browser reads; fd 4: where it writes.
        wrapper = [
            "bash",
            "-c",
            f'exec "$@" 3<&{us_to_browser[0]} 4>&{browser_to_us[1]}',
            "chromium",
            *command,
        ]
        process = subprocess.Popen(
            wrapper,
            pass_fds=(us_to_browser[0], browser_to_us[1]),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(us_to_browser[0])
        os.close(browser_to_us[1])
        tools = DevTools(process, us_to_browser[1], browser_to_us[0], limit_s)
        try:
            target = tools.call("Target.createTarget", url="about:blank")["targetId"]
            session = tools.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
            for domain in ("Network", "Page", "Log"):
                tools.call(f"{domain}.enable", session)
            tools.call("Page.navigate", session, url=page.resolve().as_uri())
            tools.wait_for("Page.loadEventFired")
            images = json.loads(
                tools.call("Runtime.evaluate", session, expression=IMAGES, returnByValue=True)["result"][
                    "value"
                ]
            )
            tools.call("Browser.close")
            process.wait(timeout=20)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            os.close(us_to_browser[1])
            os.close(browser_to_us[0])
    requests = [
        e["params"]["request"]["url"] for e in tools.events if e.get("method") == "Network.requestWillBeSent"
    ]
    blocked = [
        e["params"]["entry"]["text"]
        for e in tools.events
        if e.get("method") == "Log.entryAdded" and "Content Security Policy" in e["params"]["entry"]["text"]
    ]
    return PageLoad([tuple(i) for i in images], requests, blocked)
