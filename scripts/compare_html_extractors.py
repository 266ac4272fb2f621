#!/usr/bin/env python
"""Compare searcher's HTML reader with trafilatura on real pages (the measurement in docs/formats.md).

trafilatura is not a dependency: run this in a throwaway environment that has both, e.g.

    python -m venv /tmp/cmp && /tmp/cmp/bin/pip install -e . trafilatura lxml_html_clean
    find /usr/share/doc -name '*.html' | /tmp/cmp/bin/python scripts/compare_html_extractors.py

For each page it measures extraction time and text length, and checks how many ``<pre>`` blocks
(their first line), headings (h1–h4) and boilerplate snippets (the first 40 characters of a
nav/footer/sidebar/navheader/navfooter/toc element) appear in each extractor's output.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from lxml import html as lh

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def norm(s: str) -> str:
    return " ".join(s.replace("#", " ").split()).strip(" :")


def main() -> None:
    import trafilatura

    from searcher.ingest.readers import Unreadable, extract

    def ours(data: bytes) -> str:
        try:
            return extract("html", data).text
        except Unreadable:
            return ""

    def traf(data: bytes) -> str:
        return trafilatura.extract(data, include_tables=True) or ""

    paths = [p for p in sys.stdin.read().split() if p]
    totals = {name: {"time": 0.0, "chars": 0, "empty": 0, "pre": 0, "head": 0, "junk": 0}
              for name in ("searcher", "trafilatura")}
    n_pre = n_head = n_junk = 0
    for p in paths:
        data = Path(p).read_bytes()
        doc = lh.fromstring(data)
        pres = [norm(lines[0]) for pre in doc.iter("pre")
                if (lines := [x.strip() for x in pre.text_content().splitlines() if len(x.strip()) > 8])]
        heads = [h for h in (norm(e.text_content()) for e in doc.iter("h1", "h2", "h3", "h4")) if len(h) > 3]
        junk = [s[:40] for s in (norm(e.text_content()) for e in doc.xpath(
            "//nav|//footer|//*[contains(@class,'sidebar') or contains(@id,'toc') or "
            "contains(@class,'navheader') or contains(@class,'navfooter')]")) if len(s) > 40]
        n_pre, n_head, n_junk = n_pre + len(pres), n_head + len(heads), n_junk + len(junk)
        for name, fn in (("searcher", ours), ("trafilatura", traf)):
            t = time.perf_counter()
            text = fn(data)
            tot = totals[name]
            tot["time"] += time.perf_counter() - t
            tot["chars"] += len(text)
            tot["empty"] += not text
            flat = norm(text)
            tot["pre"] += sum(x in flat for x in pres)
            tot["head"] += sum(x in flat for x in heads)
            tot["junk"] += sum(x in flat for x in junk)
    print(f"{len(paths)} pages, {n_pre} pre blocks, {n_head} headings, {n_junk} boilerplate snippets")
    for name, t in totals.items():
        print(f"{name:12} {t['time']:6.1f} s  {t['chars'] / 1e6:5.2f} M chars  empty {t['empty']}  "
              f"pre kept {t['pre']}/{n_pre}  headings kept {t['head']}/{n_head}  boilerplate leaked {t['junk']}/{n_junk}")


if __name__ == "__main__":
    main()
