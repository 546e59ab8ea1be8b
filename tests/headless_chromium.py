"""Headless Chromium for the report tests, driven over the DevTools protocol on 127.0.0.1.

The protocol, not ``--dump-dom``, because the tests need what only a live page tells: console
errors (including Content-Security-Policy refusals), uncaught exceptions, and JavaScript dialogs
(an ``alert`` opening means injected script ran).
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import debian_package
import websocket

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",  # Chromium picks a free port and writes it to DevToolsActivePort
]
TIMEOUT = 30.0


class ChromiumUnavailable(Exception):
    """Chromium is not installed and could not be installed here (the reason says why)."""


def find_or_install() -> str:
    """The chromium binary; installs Debian's package when missing and we are root."""
    return debian_package.find_or_install("chromium", "chromium", ChromiumUnavailable)


class Page:
    """One tab: navigate, evaluate, screenshot; records console errors and dialogs as they come."""

    def __init__(self, ws_url: str) -> None:
        self._socket = websocket.create_connection(ws_url, timeout=TIMEOUT, suppress_origin=True)
        self._next_id = 0
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self._events: list[str] = []
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable")

    def _post(self, method: str, params: dict[str, Any] | None = None) -> int:
        self._next_id += 1
        self._socket.send(json.dumps({"id": self._next_id, "method": method, "params": params or {}}))
        return self._next_id

    def _handle_event(self, message: dict[str, Any]) -> None:
        method, params = message.get("method", ""), message.get("params", {})
        self._events.append(method)
        if method == "Page.javascriptDialogOpening":
            self.dialogs.append(f"{params.get('type')}: {params.get('message')}")
            self._post("Page.handleJavaScriptDialog", {"accept": False})  # else the page hangs
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            self.errors.append(f"exception: {details.get('exception', {}).get('description') or details}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in {"error", "assert"}:
            self.errors.append("console: " + " ".join(str(a.get("value", a)) for a in params.get("args", [])))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            self.errors.append(f"log: {params['entry'].get('text')}")

    def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        wanted = self._post(method, params)
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            message = json.loads(self._socket.recv())
            if message.get("id") == wanted:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            if "method" in message:
                self._handle_event(message)
        raise TimeoutError(method)

    def open(self, url: str, width: int = 1280, height: int = 900) -> None:
        """Navigate and wait for the load event, then a moment for late errors."""
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        self._events.clear()
        self.send("Page.navigate", {"url": url})
        deadline = time.monotonic() + TIMEOUT
        while "Page.loadEventFired" not in self._events:
            if time.monotonic() > deadline:
                raise TimeoutError(f"loading {url}")
            message = json.loads(self._socket.recv())
            if "method" in message:
                self._handle_event(message)
        self.evaluate("new Promise(done => setTimeout(done, 300))")

    def evaluate(self, expression: str) -> Any:
        result = self.send(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True}
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path: Path, full_page: bool = False) -> Path:
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            params["captureBeyondViewport"] = True
        data = self.send("Page.captureScreenshot", params)["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        self._socket.close()


class Chromium:
    """A headless Chromium process with a fresh profile, reachable only on loopback."""

    def __init__(self, binary: str) -> None:
        self.profile = Path(tempfile.mkdtemp(prefix="report-chromium-"))
        self.process = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + TIMEOUT
        while not (port_file.exists() and port_file.read_text().strip()):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError("chromium did not open its DevTools port")
            time.sleep(0.1)
        self.port = int(port_file.read_text().split()[0])

    def new_page(self) -> Page:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/json/new?about:blank", method="PUT")
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return Page(json.load(response)["webSocketDebuggerUrl"])

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.profile, ignore_errors=True)
