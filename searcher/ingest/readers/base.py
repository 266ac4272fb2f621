"""What every reader shares: the ``Unreadable`` refusal, text decoding, and a builder for the
extracted text of converted formats (HTML, DOCX, PDF, notebooks).
"""
from __future__ import annotations

import codecs
import re
from collections.abc import Sequence
from dataclasses import dataclass

from ...records import Block

HEADING_SEPARATOR = " > "


class Unreadable(Exception):
    """A file that cannot be indexed, with the one-line reason shown to the user.

    Reasons read ``category: detail`` (the category is what the run summary counts).
    ``transient`` marks problems that may be gone next time (permissions, a file being written):
    a previously indexed version of such a file is kept.
    """

    def __init__(self, reason: str, transient: bool = False, failed: bool = True):
        super().__init__(reason)
        self.reason = reason
        self.transient = transient
        self.failed = failed      # False: not a document at all (binary content), not a failure to read one


@dataclass(frozen=True)
class Extracted:
    """A reader's output: the document text and its structure.

    ``text`` is the file's decoded contents for text formats (Markdown, reStructuredText, code,
    plain text), and the text the reader extracted for converted formats. ``blocks`` cover the
    text's content in order (gaps are white space); empty means "plain prose, no structure".
    """

    text: str
    blocks: tuple[Block, ...] = ()
    page_unit: str | None = None     # what Block.page counts: "page" (PDF) or "cell" (notebooks)


def first_line(exc: BaseException) -> str:
    """An exception as one short line, for a skip reason."""
    msg = " ".join(str(exc).split())
    msg = msg if msg else type(exc).__name__
    return msg if len(msg) <= 120 else msg[:117] + "..."


def heading_path(stack: Sequence[tuple[int, str]]) -> tuple[str, ...]:
    return tuple(text for _, text in stack)


def push_heading(stack: list[tuple[int, str]], level: int, text: str) -> tuple[str, ...]:
    """Enter a heading of ``level``: close headings at that level or deeper, return the new path."""
    while stack and stack[-1][0] >= level:
        stack.pop()
    stack.append((level, text))
    return heading_path(stack)


def clean_heading(text: str) -> str:
    return " ".join(text.split()).strip(" #:")


class TextBuilder:
    """Builds the extracted text of a converted format one block at a time.

    Blocks are separated by a blank line, so the text reads naturally and paragraph boundaries
    are visible to the chunker; each block's position is recorded as it is appended.
    """

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._len = 0
        self.blocks: list[Block] = []

    def add(self, text: str, kind: str = "text", heading: tuple[str, ...] = (), page: int | None = None,
            separator: str = "\n\n") -> None:
        text = text.strip("\n") if kind == "code" else text.strip()
        if not text.strip():
            return
        if self._parts:
            self._parts.append(separator)
            self._len += len(separator)
        start = self._len
        self._parts.append(text)
        self._len += len(text)
        self.blocks.append(Block(start, self._len, kind, heading, page))

    def build(self, page_unit: str | None = None) -> Extracted:
        return Extracted("".join(self._parts), tuple(self.blocks), page_unit)


# ---- decoding ----------------------------------------------------------------------------------
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


def decode(data: bytes, declared: str | None = None) -> str:
    """Bytes → text: a byte-order mark, else a declared charset (HTML), else strict UTF-8, else
    the charset that charset-normalizer finds coherent.

    Refuses binary data and bytes no charset explains, rather than indexing mojibake.
    """
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(codec).lstrip("\ufeff")
            except UnicodeDecodeError:
                raise Unreadable(f"undecodable: invalid {codec} after its byte-order mark") from None
    head = data[:8192]
    if b"\x00" in head:
        return _decode_utf16_without_bom(data)
    if declared:
        try:
            return _refuse_binary(data.decode(declared))
        except (LookupError, UnicodeDecodeError):
            pass  # a wrong or unknown declaration: detect instead
    try:
        return _refuse_binary(data.decode("utf-8"))
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    for match in from_bytes(data):
        # UTF-16/32 without a byte-order mark always has NUL bytes in mostly-ASCII text; a guess
        # of one for bytes without any is charset-normalizer explaining short 8-bit text badly
        if match.encoding.startswith(("utf_16", "utf_32")):
            continue
        return _refuse_binary(str(match))
    raise Unreadable("undecodable: no text encoding fits its bytes")


def utf16_codec(sample: bytes) -> str | None:
    """The UTF-16 codec of text written without a BOM (NUL bytes at every other byte), else None."""
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    half = len(sample) // 2 or 1
    for codec, zeros, other in (("utf-16-le", odd, even), ("utf-16-be", even, odd)):
        if zeros > half * 0.3 and other < half * 0.02:
            return codec
    return None


def _decode_utf16_without_bom(data: bytes) -> str:
    """NUL bytes mean binary, unless they sit at every other byte: UTF-16 written without a BOM."""
    codec = utf16_codec(data[:8192])
    if codec and len(data) % 2 == 0:
        try:
            return _refuse_binary(data.decode(codec))
        except UnicodeDecodeError:
            pass
    raise Unreadable("binary file")


def _refuse_binary(text: str) -> str:
    sample = text[:65536]
    if "\x1b" in sample or "\x08" in sample:
        sample = strip_terminal_formatting(sample)
    if sample and len(_CONTROL.findall(sample)) > len(sample) * 0.01:
        raise Unreadable("binary file")
    return text


# ANSI escape sequences (colour, bold) and backspace overstrikes ("N\bN", "_\bx"), as in manuals
# formatted for a terminal (man, grotty): formatting, not content.
_TERMINAL = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]|[^\n]\x08")


def strip_terminal_formatting(text: str) -> str:
    """Remove terminal formatting; line breaks are untouched, so line numbers stay the file's."""
    return _TERMINAL.sub("", text)


def normalize_newlines(text: str) -> str:
    """Extracted text uses \\n only (decoded text files keep what they have: positions index it)."""
    return text.replace("\r\n", "\n").replace("\r", "\n")
