"""Plain text and source code: the document text is the decoded file, as it is.

Plain text has no structure beyond paragraphs and sentences, which the chunker finds itself.
Source code is one ``code`` block: the chunker cuts it at top-level definitions when it must.
"""
from __future__ import annotations

from ..records import Block
from .base import Extracted, decode


def read(data: bytes, kind: str) -> Extracted:
    text = decode(data)
    if kind == "code" and text.strip():
        return Extracted(text, (Block(0, len(text), "code"),))
    return Extracted(text)
