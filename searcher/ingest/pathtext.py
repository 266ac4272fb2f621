"""File names that are not valid UTF-8, kept exactly.

On POSIX a file name is bytes; Python turns the bytes that are not UTF-8 into lone surrogates
(U+DC80–U+DCFF, "surrogateescape"), so ``os.fsencode(path)`` gives the original bytes back and
``open(path)`` works. SQLite text must be valid UTF-8, so the store keeps such names with each
surrogate replaced by a code point of plane 16's private use area (U+10FF80–U+10FFFF), and any
such code point that a name really contains is prefixed with the escape U+10FF00.
``to_db`` and ``from_db`` are exact inverses; valid UTF-8 names (all but a few) are unchanged.
"""
from __future__ import annotations

import re

_ESC = "\U0010ff00"
_NEEDS_DB = re.compile("[\udc80-\udcff\U0010ff00-\U0010ffff]")
_NEEDS_PY = re.compile("[\U0010ff00-\U0010ffff]")
_DB_TOKEN = re.compile("\U0010ff00[\\s\\S]|[\U0010ff80-\U0010ffff]")


def to_db(text: str | None) -> str | None:
    if text is None or not _NEEDS_DB.search(text):
        return text
    out = []
    for ch in text:
        o = ord(ch)
        if 0xDC80 <= o <= 0xDCFF:
            out.append(chr(0x10FF00 + (o - 0xDC00)))
        elif o >= 0x10FF00:
            out.append(_ESC + ch)
        else:
            out.append(ch)
    return "".join(out)


def from_db(text: str | None) -> str | None:
    if text is None or not _NEEDS_PY.search(text):
        return text
    return _DB_TOKEN.sub(lambda m: m.group()[1] if len(m.group()) == 2 else chr(0xDC00 + ord(m.group()) - 0x10FF00),
                         text)


def display(text: str) -> str:
    """A name for printing: bytes that are not UTF-8 shown as \\xNN escapes (never an encoding error)."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace") \
            .encode("utf-8", "backslashreplace").decode("utf-8")
