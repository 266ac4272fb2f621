"""Word .docx with python-docx: body paragraphs and tables in document order, headings from styles.

A paragraph styled ``Title`` is the root heading, ``Heading 1``–``Heading 9`` (or any paragraph
with an outline level) set the heading path; tables become ``lines`` blocks with one row per line
(cells joined by `` | ``, merged cells once). Headers, footers, comments and footnotes are left
out. The document text is the extracted text (paragraphs separated by a blank line).

Refused: files that are not a zip archive ("corrupt DOCX", or for an OLE file "encrypted DOCX or
old .doc format"), archives without ``word/document.xml``, and archives that would decompress to
more than 512 MiB (a zip bomb) — checked from the archive's directory before anything is inflated.
"""
from __future__ import annotations

import io
import re
import zipfile

from .base import Extracted, TextBuilder, Unreadable, clean_heading, heading_path, push_heading

MAX_UNPACKED = 512 * 2**20
_HEADING_STYLE = re.compile(r"^heading\s*(\d)$", re.I)
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def read(data: bytes, kind: str) -> Extracted:
    if data.startswith(_OLE_MAGIC):
        raise Unreadable("encrypted DOCX or old .doc format: only unencrypted .docx files are read")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise Unreadable("corrupt DOCX: not a zip archive") from None
    names = set(archive.namelist())
    if "word/document.xml" not in names:
        raise Unreadable("corrupt DOCX: no word/document.xml in the archive")
    unpacked = sum(i.file_size for i in archive.infolist())
    if unpacked > MAX_UNPACKED:
        raise Unreadable(f"too large: {unpacked} bytes when decompressed (zip bomb?)")

    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    document = docx.Document(io.BytesIO(data))
    out = TextBuilder()
    stack: list[tuple[int, str]] = []
    for el in _body_items(document.element.body):
        local = el.tag.rsplit("}", 1)[-1]
        if local == "p":
            para = Paragraph(el, document)
            text = para.text.strip()
            if not text:
                continue
            level = _heading_level(para)
            if level is not None and len(text) <= 300:
                title = clean_heading(text)
                out.add(text, "heading", push_heading(stack, level, title or "(untitled)"))
            else:
                out.add(text, "text", heading_path(stack))
        elif local == "tbl":
            out.add(_table_text(Table(el, document)), "lines", heading_path(stack))
    return out.build()


def _body_items(body):
    """Paragraphs and tables of the body in order, looking inside content controls (w:sdt)."""
    for el in body.iterchildren():
        local = el.tag.rsplit("}", 1)[-1]
        if local in ("p", "tbl"):
            yield el
        elif local == "sdt":
            for content in el.iterchildren():
                if content.tag.endswith("}sdtContent"):
                    yield from _body_items(content)


def _heading_level(para) -> int | None:
    try:
        style = para.style
    except Exception:  # noqa: BLE001 - a broken style reference is just body text
        style = None
    while style is not None:
        name = (style.name or "").strip()
        if name.lower() == "title":
            return 0
        m = _HEADING_STYLE.match(name)
        if m:
            return int(m.group(1))
        level = _outline_level(style.element)
        if level is not None:
            return level
        style = style.base_style
    return _outline_level(para._p)


def _outline_level(el) -> int | None:
    for node in el.iter():
        if node.tag.endswith("}outlineLvl"):
            for key, value in node.attrib.items():
                if key.endswith("}val") and value.isdigit() and int(value) < 9:
                    return int(value) + 1
    return None


def _table_text(table) -> str:
    rows = []
    for row in table.rows:
        cells: list[str] = []
        prev = None
        for cell in row.cells:
            if cell._tc is prev:
                continue     # a merged cell is repeated once per grid column it spans
            prev = cell._tc
            cells.append(" ".join(cell.text.split()))
        if any(cells):
            rows.append(" | ".join(cells))
    return "\n".join(rows)
