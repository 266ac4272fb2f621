"""reStructuredText: section titles, literal blocks and code directives, read line by line.

docutils would parse everything, but it is slow, chatty on imperfect files and needs every
directive and role a project defines; structure is all the chunker needs, and the rules for
it are short: a title is a line of text underlined (optionally also overlined) with one
punctuation character repeated at least as long as the text, and title levels are assigned in
the order their adornment styles first appear. ``::`` literal blocks and ``code-block``/``code``/
``sourcecode`` directives become ``code`` blocks. The document text is the file's own text.
"""
from __future__ import annotations

import re
import unicodedata

from ...records import Block
from .base import Extracted, clean_heading, decode, push_heading

_ADORNMENT = re.compile(r"^([!-/:-@\[-`{-~])\1{2,}[ \t]*$")
_CODE_DIRECTIVE = re.compile(r"^\.\.\s+(code-block|code|sourcecode|highlight|literalinclude|doctest)::", re.I)


def _width(s: str) -> int:
    """Columns the text takes: CJK characters are two wide, so their underlines are twice as long."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in s)


def read(data: bytes, kind: str) -> Extracted:
    text = decode(data)
    lines = text.split("\n")
    starts, pos = [], 0
    for line in lines:
        starts.append(pos)
        pos += len(line) + 1
    styles: list[tuple[str, bool]] = []
    stack: list[tuple[int, str]] = []
    path: tuple[str, ...] = ()
    spans: list[tuple[int, int, str, tuple[str, ...]]] = []   # (first line, end line, kind, heading)
    text_from: int | None = None

    def flush_text(upto: int) -> None:
        nonlocal text_from
        if text_from is not None and text_from < upto:
            spans.append((text_from, upto, "text", path))
        text_from = None

    def blank(i: int) -> bool:
        return i >= len(lines) or not lines[i].strip()

    i, n = 0, len(lines)
    while i < n:
        line = lines[i]
        prev_blank = i == 0 or blank(i - 1)
        title = None
        if prev_blank and i + 2 < n and _ADORNMENT.match(line.rstrip("\r")) and lines[i + 1].strip() \
                and _ADORNMENT.match(lines[i + 2].rstrip("\r")) and lines[i + 2].strip()[0] == line.strip()[0]:
            title, style, used = lines[i + 1], (line.strip()[0], True), 3
        elif prev_blank and i + 1 < n and line.strip() and not line[0].isspace() \
                and not _ADORNMENT.match(line.rstrip("\r")) and _ADORNMENT.match(lines[i + 1].rstrip("\r")) \
                and len(lines[i + 1].strip()) >= min(_width(line.strip()), 3 + len(line.strip()) // 2):
            title, style, used = line, (lines[i + 1].strip()[0], False), 2
        if title is not None:
            flush_text(i)
            if style not in styles:
                styles.append(style)
            path = push_heading(stack, styles.index(style) + 1, clean_heading(title) or "(untitled)")
            spans.append((i, i + used, "heading", path))
            i += used
            continue
        literal = line.rstrip().endswith("::") and not line.lstrip().startswith("..")
        directive = _CODE_DIRECTIVE.match(line.lstrip()) and not line[0].isspace()
        if literal or directive:
            indent = len(line) - len(line.lstrip())
            j = i + 1
            while j < n and (blank(j) or len(lines[j]) - len(lines[j].lstrip()) > indent):
                j += 1
            while j > i + 1 and blank(j - 1):
                j -= 1
            if j > i + 1:
                if directive:
                    flush_text(i)
                    spans.append((i, j, "code", path))
                else:
                    # the paragraph that ends in '::' stays text; the indented block is code
                    if text_from is None:
                        text_from = i
                    flush_text(i + 1)
                    spans.append((i + 1, j, "code", path))
                i = j
                continue
        if text_from is None and line.strip():
            text_from = i
        i += 1
    flush_text(n)

    blocks = []
    for a, b, kind_, heading in spans:
        ca = starts[a]
        cb = starts[b - 1] + len(lines[b - 1]) if b - 1 < n else len(text)
        while cb > ca and text[cb - 1].isspace():
            cb -= 1
        while ca < cb and text[ca] in " \t\r\n":
            ca += 1
        if ca < cb:
            blocks.append(Block(ca, cb, kind_, heading))  # type: ignore[arg-type]
    return Extracted(text, tuple(blocks))
