"""Load a report in a real headless Chromium and check it: no console error, no uncaught
exception, no network request (only the file itself), every expected figure drawn and every
expected table filled, and a screenshot that is not blank.

Needs the optional extra ``groklab[browser]`` (Playwright's Python client, which drives the
system's Chromium: Debian's ``chromium`` package, which ``make test`` installs; Playwright's
own browser download is never used).

    from groklab.report.browser import check_report
    result = check_report("runs/x/report.html", figures=["curves"], screenshot="x.png")
    assert not result.problems, result.problems
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")


def find_chromium() -> str | None:
    """``$GROKLAB_CHROMIUM``, else chromium / chromium-browser / google-chrome on PATH."""
    env = os.environ.get("GROKLAB_CHROMIUM")
    if env:
        return env if Path(env).is_file() else None
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class BrowserCheck:
    problems: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)  # every console message, "type: text"
    requests: list[str] = field(default_factory=list)  # every URL the page asked for
    figures: dict[str, int] = field(default_factory=dict)  # name -> plotly traces drawn
    tables: dict[str, int] = field(default_factory=dict)  # name -> body rows
    screenshot: Path | None = None
    ink: float = 0.0  # share of the screenshot's pixels that are not background


def blank_share(png: Path) -> float:
    """Share of pixels that differ from the most common colour (the page background)."""
    import numpy as np
    from PIL import Image

    a = np.asarray(Image.open(png).convert("RGB")).reshape(-1, 3).astype(np.int32)
    packed = (a[:, 0] << 16) | (a[:, 1] << 8) | a[:, 2]
    values, counts = np.unique(packed, return_counts=True)
    bg = values[counts.argmax()]
    bg_rgb = np.array([(bg >> 16) & 255, (bg >> 8) & 255, bg & 255])
    return float((np.abs(a - bg_rgb).sum(1) > 30).mean())


def check_report(html_path: str | Path, figures: list[str] = (), tables: list[str] = (),
                 screenshot: str | Path | None = None, chromium: str | None = None,
                 width: int = 1280, height: int = 1600, min_ink: float = 0.01) -> BrowserCheck:
    """Open ``html_path`` in headless Chromium; return what was seen and every problem."""
    from playwright.sync_api import sync_playwright

    exe = chromium or find_chromium()
    if exe is None:
        raise FileNotFoundError("no Chromium found (install Debian's chromium, or set GROKLAB_CHROMIUM)")
    res = BrowserCheck()
    url = Path(html_path).resolve().as_uri()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.on("console", lambda m: res.console.append(f"{m.type}: {m.text}"))
            page.on("pageerror", lambda e: res.problems.append(f"uncaught exception: {e}"))
            page.on("request", lambda r: res.requests.append(r.url))
            page.goto(url, wait_until="load")
            page.wait_for_function("() => [...document.querySelectorAll('.plotly-graph-div')]"
                                   ".every(d => d.querySelector('.main-svg'))", timeout=30_000)
            for name in figures:
                n = page.evaluate("""(name) => {
                    const s = document.querySelector(`section[data-figure="${name}"]`);
                    if (!s) return -1;
                    const d = s.querySelector('.plotly-graph-div');
                    if (!d || !d.querySelector('.main-svg') || !d.data) return -2;
                    return d.data.length; }""", name)
                res.figures[name] = n
                if n == -1:
                    res.problems.append(f"figure {name!r}: not in the page")
                elif n == -2:
                    res.problems.append(f"figure {name!r}: not drawn")
                elif n == 0:
                    res.problems.append(f"figure {name!r}: no data")
            for name in tables:
                n = page.evaluate("(name) => { const t = document.querySelector(`table[data-table=\"${name}\"]`);"
                                  " return t ? t.querySelectorAll('tbody tr').length : -1; }", name)
                res.tables[name] = n
                if n <= 0:
                    res.problems.append(f"table {name!r}: " + ("not in the page" if n < 0 else "empty"))
            if screenshot is not None:
                res.screenshot = Path(screenshot)
                res.screenshot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(res.screenshot), full_page=False)
                res.ink = blank_share(res.screenshot)
                if res.ink < min_ink:
                    res.problems.append(f"screenshot {screenshot}: blank ({res.ink:.2%} of pixels drawn)")
        finally:
            browser.close()
    res.problems += [f"console {c}" for c in res.console if c.startswith(("error", "warning"))]
    res.problems += [f"network request: {u}" for u in res.requests if not u.startswith(LOCAL_SCHEMES)]
    res.problems += [f"request for another file: {u}" for u in res.requests
                     if u.startswith("file:") and u != url]
    return res


__all__ = ["check_report", "find_chromium", "blank_share", "BrowserCheck", "CHROMIUM_ARGS"]
