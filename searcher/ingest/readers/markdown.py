"""Markdown with markdown-it-py (CommonMark + tables): headings, paragraphs, lists, tables, code.

The document text is the file's own text, so line numbers are the file's. markdown-it gives every
top-level block its line range; headings (ATX and setext) set the heading path, fenced and
indented code become ``code`` blocks (kept whole by the chunker when they fit), tables ``lines``
blocks. YAML front matter is one text block outside any heading.
"""
from __future__ import annotations

import re

from ...records import Block
from .base import Extracted, clean_heading, decode, push_heading

_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n.*?^(?:---|\.\.\.)[ \t]*$", re.S | re.M)


def read(data: bytes, kind: str) -> Extracted:
    text = decode(data)
    return Extracted(text, tuple(markdown_blocks(text, 0, len(text), [], None)))


def _parser():
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": True}).enable("table")


def markdown_blocks(text: str, start: int, end: int, stack: list[tuple[int, str]],
                    page: int | None) -> list[Block]:
    """Blocks of the Markdown in ``text[start:end]``; ``stack`` is the heading stack in force,
    updated in place (a notebook's cells share one)."""
    blocks: list[Block] = []
    m = _FRONT_MATTER.match(text, start, end)
    if m and m.end() - start < 20000:
        blocks.append(Block(start, m.end(), "text", (), page))
        start = m.end()
    src = text[start:end]
    line_starts = [0] + [m.end() for m in re.finditer("\n", src)]
    tokens = _parser().parse(src)

    def span(line_a: int, line_b: int) -> tuple[int, int]:
        a = line_starts[line_a] if line_a < len(line_starts) else len(src)
        b = line_starts[line_b] if line_b < len(line_starts) else len(src)
        while b > a and src[b - 1].isspace():
            b -= 1
        while a < b and src[a] in " \t":
            a += 1
        return start + a, start + b

    path = tuple(t for _, t in stack)
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.level != 0 or tok.nesting == -1 or tok.map is None:
            i += 1
            continue
        a, b = span(*tok.map)
        if a >= b:
            i += 1
            continue
        if tok.type == "heading_open":
            title = _inline_text(tokens[i + 1]) if i + 1 < len(tokens) else ""
            path = push_heading(stack, int(tok.tag[1]), clean_heading(title) or "(untitled)")
            blocks.append(Block(a, b, "heading", path, page))
        elif tok.type in ("fence", "code_block"):
            blocks.append(Block(a, b, "code", path, page))
        elif tok.type == "table_open":
            blocks.append(Block(a, b, "lines", path, page))
        else:
            blocks.append(Block(a, b, "text", path, page))
        i += 1
    return _no_overlap(blocks)


def _inline_text(tok) -> str:
    if not tok.children:
        return tok.content
    return "".join(c.content for c in tok.children if c.type in ("text", "code_inline", "html_inline")
                   or c.type == "softbreak")


def _no_overlap(blocks: list[Block]) -> list[Block]:
    out: list[Block] = []
    for b in sorted(blocks, key=lambda x: x.start):
        if out and b.start < out[-1].end:
            if b.end <= out[-1].end:
                continue
            b = Block(out[-1].end, b.end, b.kind, b.heading, b.page)
        out.append(b)
    return out

