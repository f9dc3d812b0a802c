"""Check ``playground serve`` by hand in a real headless Chromium.

Starts ``playground serve agents/support_router.yaml`` on 127.0.0.1 with a fresh store,
starts the system's Chromium headless with its DevTools port, opens the page, waits for
the TUI to draw, types a request and Enter, waits for the run to finish, and prints what
the browser shows (the terminal's text, read from the page's xterm.js buffer) and saves
screenshots. Exits 0 when the run screen showed the request's route and its output.

Needs: the serve extra (pip install 'agent-playground[serve]') and Chromium
(apt-get install chromium). Nothing leaves 127.0.0.1.

Usage: python scripts/serve_check.py [--out DIR] [--request TEXT]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
# The terminal is drawn on a canvas (xterm.js), so its text is read where it arrives: every
# message the page's websocket receives is kept (installed before the page's own scripts),
# and the screen's text is that stream with the terminal's escape sequences taken out.
KEEP_TERMINAL_OUTPUT = """(() => {
  const Native = window.WebSocket;
  window.__terminal = [];
  const decode = (data) => new TextDecoder().decode(data);
  function Kept(url, protocols) {
    const ws = protocols === undefined ? new Native(url) : new Native(url, protocols);
    ws.addEventListener('message', (ev) => {
      const d = ev.data;
      if (typeof d === 'string') window.__terminal.push(d);
      else if (d instanceof ArrayBuffer) window.__terminal.push(decode(d));
      else if (d instanceof Blob) d.arrayBuffer().then((b) => window.__terminal.push(decode(b)));
    });
    return ws;
  }
  Kept.prototype = Native.prototype;
  for (const k of ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED']) Kept[k] = Native[k];
  window.WebSocket = Kept;
})();"""
READ_SCREEN = r"""(window.__terminal || []).join('')
  .replace(/\x1b\][^\x07\x1b]*(\x07|\x1b\\)/g, '')
  .replace(/\x1b\[[0-9;?<>=]*[ -\/]*[@-~]/g, ' ')
  .replace(/\x1b[()][0-9A-Za-z]/g, '')
  .replace(/[\x00-\x08\x0b-\x1f]/g, '')"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_http(url: str, seconds: float = 60) -> None:
    import urllib.request

    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(url, timeout=5).read()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


class Page:
    """A Chromium page over the DevTools protocol."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.next_id = 0

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        await self.ws.send_json({"id": self.next_id, "method": method, "params": params})
        while True:
            message = await self.ws.receive_json()
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))

    async def screen(self) -> str:
        result = await self.call("Runtime.evaluate", expression=READ_SCREEN, returnByValue=True)
        return str(result.get("result", {}).get("value", ""))

    async def wait_for(self, text: str, seconds: float = 60) -> str:
        deadline = time.monotonic() + seconds
        while True:
            screen = await self.screen()
            if text in screen:
                return screen
            if time.monotonic() > deadline:
                raise TimeoutError(f"{text!r} never showed; the screen was:\n{screen}")
            await asyncio.sleep(0.3)

    async def type(self, text: str) -> None:
        for char in text:
            await self.call("Input.dispatchKeyEvent", type="char", text=char)

    async def key(self, key: str, code: int) -> None:
        for kind in ("rawKeyDown", "keyUp"):
            await self.call(
                "Input.dispatchKeyEvent", type=kind, key=key, code=key, windowsVirtualKeyCode=code
            )

    async def screenshot(self, path: Path) -> None:
        data = (await self.call("Page.captureScreenshot", format="png"))["data"]
        path.write_bytes(base64.b64decode(data))


async def drive(url: str, devtools: int, request: str, out: Path) -> str:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{devtools}/json") as response:
            targets = await response.json()
        target = next(t for t in targets if t.get("type") == "page")
        async with http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            page = Page(ws)
            await page.call("Page.enable")
            await page.call("Page.addScriptToEvaluateOnNewDocument", source=KEEP_TERMINAL_OUTPUT)
            await page.call(
                "Emulation.setDeviceMetricsOverride",
                width=1280,
                height=800,
                deviceScaleFactor=1,
                mobile=False,
            )
            await page.call("Page.navigate", url=url)
            await asyncio.sleep(1)
            await page.wait_for("Type a request", 90)
            await asyncio.sleep(1)  # the first frame drawn
            await page.screenshot(out / "serve-1-open.png")
            seen = len(await page.screen())
            # Keys go to xterm.js through its (hidden) input element.
            await page.call(
                "Runtime.evaluate", expression="document.querySelector('.xterm-helper-textarea').focus()"
            )
            await page.type(request)
            await page.key("Enter", 13)
            await page.wait_for("COMPLETED", 90)
            await asyncio.sleep(1)
            await page.screenshot(out / "serve-2-finished.png")
            return (await page.screen())[seen:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=tempfile.mkdtemp(prefix="serve-check-"), help="screenshots here")
    parser.add_argument("--request", default="I was charged twice on my last invoice")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if chromium is None:
        print("no Chromium here: apt-get install chromium", file=sys.stderr)
        return 2
    port, devtools = free_port(), free_port()
    store = out / "serve.db"
    log = (out / "serve.log").open("w")
    serve = subprocess.Popen(
        [
            *(sys.executable, "-m", "playground.cli", "serve", "agents/support_router.yaml"),
            *("--port", str(port), "--db", str(store)),
        ],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    browser = subprocess.Popen(
        [
            chromium,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            f"--user-data-dir={out / 'chromium-profile'}",
            f"--remote-debugging-port={devtools}",
            "--remote-allow-origins=*",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_http(url)
        wait_http(f"http://127.0.0.1:{devtools}/json/version")
        screen = asyncio.run(drive(url, devtools, args.request, out))
    finally:
        browser.terminate()
        serve.terminate()
        browser.wait(timeout=30)
        serve.wait(timeout=30)
    print(" ".join(screen.split())[-3000:])  # what the terminal drew after the request, as text
    print(f"\nscreenshots: {out / 'serve-1-open.png'}, {out / 'serve-2-finished.png'}")
    flat = " ".join(screen.split())
    checks = {
        "the request echoed": args.request[:20] in flat,
        "handed to billing": "billing" in flat,
        "the run completed": "COMPLETED" in flat,
        "the invoice answer shown": "INV-1042" in flat,
    }
    print(json.dumps(checks))
    shown = all(checks.values())
    return 0 if shown else 1


if __name__ == "__main__":
    raise SystemExit(main())
