"""Readable result snippets: the chunk's sentence that best matches the query, with the query's
words marked, and the line that sentence starts on."""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..ingest.chunking import paragraphs, sentences
from ..store.keyword import terms

_WORDISH = re.compile(r"\w+(?:[._']\w+)*")


@dataclass(frozen=True)
class Snippet:
    text: str                                  # white space folded, at most ~width characters
    line_offset: int                           # lines between the chunk's first line and the snippet's
    marks: tuple[tuple[int, int], ...]         # spans of ``text`` that match query words


def make_snippet(chunk_text: str, query: str, width: int = 200) -> Snippet:
    qterms = set(terms(query))
    spans = [s for a, b in paragraphs(chunk_text) for s in sentences(chunk_text, a, b)] or [(0, len(chunk_text))]
    best = max(spans, key=lambda s: (len(qterms.intersection(terms(chunk_text[s[0]:s[1]]))), -s[0]))
    start = best[0]
    raw = chunk_text[start:]
    text = " ".join(raw.split())
    if len(text) > width:
        text = text[:width].rsplit(" ", 1)[0] + " …"
    marks = []
    for m in _WORDISH.finditer(text):
        if qterms.intersection(terms(m.group())):
            marks.append((m.start(), m.end()))
    for t in qterms:
        if not t.isascii():   # segmented CJK words: mark every occurrence
            marks += [(m.start(), m.end()) for m in re.finditer(re.escape(t), text)]
    return Snippet(text, chunk_text.count("\n", 0, start), tuple(sorted(set(marks))))
