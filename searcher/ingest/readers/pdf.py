"""PDF with pypdf: the text layer of every page, and headings from the document outline.

The document text is the pages' extracted text joined by a form feed line (``\\n\\f\\n``); each
page is one block carrying its 1-based page number, and chunks never cross a page. Words
hyphenated across a line end are joined again. When the PDF has an outline (bookmarks), each
page's text is cut where an outline entry's title appears at the start of a line, and the text
after it carries that entry's path ("2 Methods > 2.1 Data"); text before the first entry of a
page keeps the path in force from the pages before.

Refused, each with its reason: damaged files ("corrupt PDF: ..."), files that need a password
("encrypted PDF: a password is needed to open it"; PDFs encrypted with an empty user password,
i.e. only restricted against editing or printing, are read), and files without a text layer —
scans and images ("no extractable text: ... (scanned or image-only PDF?)").
"""
from __future__ import annotations

import io
import logging
import re
import warnings

from .base import Extracted, TextBuilder, Unreadable, first_line

_HYPHEN = re.compile(r"(?<=[a-z])-\n(?=[a-z])")
_TRAILING = re.compile(r"[ \t]+\n")
_BLANKS = re.compile(r"\n{3,}")
PAGE_SEPARATOR = "\n\f\n"


def read(data: bytes, kind: str) -> Extracted:
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError

    logging.getLogger("pypdf").setLevel(logging.ERROR)   # broken files make pypdf log, not fail
    if not data.lstrip()[:1024].startswith(b"%PDF") and b"%PDF" not in data[:1024]:
        raise Unreadable("corrupt PDF: no PDF header")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            reader = PdfReader(io.BytesIO(data), strict=False)
            if reader.is_encrypted:
                try:
                    opened = reader.decrypt("")
                except (DependencyError, NotImplementedError) as exc:
                    raise Unreadable(f"encrypted PDF: {first_line(exc)}") from None
                if not opened:
                    raise Unreadable("encrypted PDF: a password is needed to open it")
            pages = reader.pages
            n = len(pages)
        except FileNotDecryptedError:
            raise Unreadable("encrypted PDF: a password is needed to open it") from None
        except PdfReadError as exc:
            raise Unreadable(f"corrupt PDF: {first_line(exc)}") from None
        if n == 0:
            raise Unreadable("no extractable text: the PDF has no pages")
        outline = _outline(reader)
        texts: list[str] = []
        failed = 0
        for page in pages:
            try:
                texts.append(_clean(page.extract_text() or ""))
            except Unreadable:
                raise
            except Exception:  # noqa: BLE001 - one damaged page should not lose the others
                texts.append("")
                failed += 1
    if not any(t.strip() for t in texts):
        if failed == n:
            raise Unreadable(f"corrupt PDF: no page could be read ({n} pages)")
        raise Unreadable(f"no extractable text: {n} page{'s' * (n != 1)} without a text layer "
                         "(scanned or image-only PDF?)")
    out = TextBuilder()
    path: tuple[str, ...] = ()
    for number, text in enumerate(texts, 1):
        pieces, path = _split_at_headings(text, outline.get(number - 1, []), path)
        first = True
        for piece, heading in pieces:
            out.add(piece, "text", heading, number, separator="\n\f\n" if first else "\n\n")
            first = False
    return out.build("page")


def _clean(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    text = _HYPHEN.sub("", text)
    text = _TRAILING.sub("\n", text)
    return _BLANKS.sub("\n\n", text).strip()


def _outline(reader) -> dict[int, list[tuple[str, tuple[str, ...]]]]:
    """Outline entries by 0-based page: (title, full heading path), in document order."""
    out: dict[int, list[tuple[str, tuple[str, ...]]]] = {}

    def walk(items, parents: tuple[str, ...], depth: int) -> None:
        last: tuple[str, ...] = parents
        for item in items:
            if isinstance(item, list):
                if depth < 16:
                    walk(item, last, depth + 1)
                continue
            title = " ".join(str(getattr(item, "title", "") or "").split())
            if not title:
                continue
            last = parents + (title,)
            try:
                page = reader.get_destination_page_number(item)
            except Exception:  # noqa: BLE001 - a broken bookmark only loses its heading
                continue
            if page is not None and page >= 0:
                out.setdefault(page, []).append((title, last))

    try:
        walk(reader.outline, (), 0)
    except Exception:  # noqa: BLE001
        return {}
    return out


def _split_at_headings(text: str, entries: list[tuple[str, tuple[str, ...]]],
                       path: tuple[str, ...]) -> tuple[list[tuple[str, tuple[str, ...]]], tuple[str, ...]]:
    """Cut a page's text where its outline entries' titles start a line."""
    pieces: list[tuple[str, tuple[str, ...]]] = []
    pos, current, found = 0, path, False
    for title, entry_path in entries:
        m = re.search(r"(?m)^[ \t]*" + r"\s+".join(map(re.escape, title.split())), text[pos:])
        if m is None:
            continue
        found = True
        at = pos + m.start()
        if text[pos:at].strip():
            pieces.append((text[pos:at], current))
        pos, current = at, entry_path
    if entries and not found:
        # the titles are not in the text as lines (drawn as images, or worded differently):
        # the page belongs to its first entry, and the last one is in force after it
        return [(text, entries[0][1])], entries[-1][1]
    pieces.append((text[pos:], current))
    return pieces, current
