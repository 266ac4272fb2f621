"""Screenshots of the search page for the docs: a query's results and the document view of one hit.

Start a server first (`searcher serve --index INDEX`), then:

    python scripts/screenshots.py http://127.0.0.1:8765/ "how do I roll back a broken release"

Writes docs/web-search.png and docs/web-document.png, in Debian's Chromium driven by Playwright.
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("url", help="The server's page, e.g. http://127.0.0.1:8765/")
    ap.add_argument("query", help="What to type in the search box.")
    ap.add_argument("--scheme", choices=["light", "dark"], default="light", help="The system colour scheme to show.")
    ap.add_argument("--open", type=int, default=1, help="Which hit to open for the document view (1: the first).")
    ap.add_argument("--out", type=Path, default=ROOT / "docs", help="Folder for the PNG files.")
    args = ap.parse_args()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium", args=ARGS)
        page = browser.new_page(viewport={"width": 1100, "height": 700}, color_scheme=args.scheme)
        page.goto(args.url)
        page.fill("#q", args.query)
        page.wait_for_function("q => document.querySelector('#hits').dataset.query === q", arg=args.query)
        page.screenshot(path=args.out / "web-search.png")
        for _ in range(args.open):
            page.keyboard.press("ArrowDown")
        page.keyboard.press("Enter")
        page.wait_for_selector("#hit-chunk")
        page.wait_for_timeout(300)
        page.screenshot(path=args.out / "web-document.png")
        browser.close()


if __name__ == "__main__":
    main()
