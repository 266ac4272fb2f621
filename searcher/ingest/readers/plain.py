"""Plain text and source code: the document text is the decoded file, as it is.

Plain text has no structure beyond paragraphs and sentences, which the chunker finds itself.
Terminal formatting (ANSI escape codes, backspace overstrike, as in manuals formatted by man) is
removed from plain text: it is not content, and it would make the file look binary.
Source code is one ``code`` block: the chunker cuts it at top-level definitions when it must.
"""
from __future__ import annotations

from ...records import Block
from .base import Extracted, decode, strip_terminal_formatting


def read(data: bytes, kind: str) -> Extracted:
    text = decode(data)
    if kind == "text" and ("\x1b" in text or "\x08" in text):
        text = strip_terminal_formatting(text)   # a manual formatted for a terminal; lines unchanged
    if kind == "code" and text.strip():
        return Extracted(text, (Block(0, len(text), "code"),))
    return Extracted(text)
