"""Each reader on real files built on the fly: the extracted text, its blocks, headings and pages."""
from __future__ import annotations

import codecs
import json
from pathlib import Path

import pytest

from searcher.ingest.readers import Unreadable, decode, extract, kind_of

from . import makefiles as mk


def _blocks(ex, kind=None):
    return [(b.kind, ex.text[b.start:b.end], b.heading, b.page) for b in ex.blocks if kind is None or b.kind == kind]


@pytest.mark.parametrize("name,kind", [
    ("a.md", "markdown"), ("b.RST", "rst"), ("c.htm", "html"), ("d.xhtml", "html"), ("e.pdf", "pdf"),
    ("f.docx", "docx"), ("g.ipynb", "notebook"), ("h.py", "code"), ("i.txt", "text"), ("README", "text"),
    ("changelog.Debian.gz", "text"), ("NEWS.md.gz", "markdown"), ("Makefile", "code"), ("photo.png", None),
    ("archive.tar.gz", None), ("notes.log", "text"),
])
def test_kind_of(name, kind):
    assert kind_of(name) == kind


# ---- encodings -------------------------------------------------------------------------------------
@pytest.mark.parametrize("codec,text", [
    ("utf-8", mk.CHINESE), ("utf-8-sig", mk.CHINESE), ("utf-16", mk.CHINESE), ("utf-16-le", "plain ascii in utf-16 " * 5),
    ("gb18030", mk.CHINESE), ("gbk", mk.CHINESE), ("big5", mk.TRADITIONAL),
    ("latin-1", "Grüße aus Köln, schöne Straße und Äpfel. Ça va très bien à Paris."),
])
def test_encodings_are_detected(codec, text):
    assert decode(text.encode(codec)) == text


def test_gb18030_file_is_read_and_split_into_chinese_sentences(encoder):
    from searcher.ingest.chunking import sentences

    ex = extract("text", mk.CHINESE.encode("gb18030"))
    assert ex.text == mk.CHINESE
    assert [ex.text[a:b] for a, b in sentences(ex.text, 0, len(ex.text))] == [
        "搜索引擎在本地运行，不需要网络。", "它读取文件夹中的文档，并按照意思进行搜索！", "你可以用自己的话提问吗？",
        "当然可以；", "结果会显示文件和行号。"]


@pytest.mark.parametrize("data,reason", [
    (bytes(range(256)) * 8, "binary file"),                   # NUL bytes, not at every other byte
    (b"\x7fELF\x02\x01\x01" + bytes(range(1, 32)) * 300, "binary file"),   # control characters, no NUL
    (codecs.BOM_UTF8 + b"\xff\xfe\xfd bad", "undecodable: invalid utf-8"),
])
def test_undecodable_and_binary_text_is_refused(data, reason):
    with pytest.raises(Unreadable, match=reason):
        extract("text", data)


# ---- Markdown, reStructuredText, code ----------------------------------------------------------------
def test_markdown_headings_code_and_positions():
    ex = extract("markdown", mk.MARKDOWN.encode())
    assert ex.text == mk.MARKDOWN                                 # the document text is the file's text
    heads = [(t, h) for k, t, h, _ in _blocks(ex, "heading")]
    assert heads == [("# Guide", ("Guide",)), ("## Install", ("Guide", "Install")),
                     ("### Linux", ("Guide", "Install", "Linux")), ("### Windows", ("Guide", "Install", "Windows")),
                     ("## Usage", ("Guide", "Usage"))]
    (code,) = _blocks(ex, "code")
    assert code[1] == '```python\ndef main():\n    print("hello")\n```' and code[2] == ("Guide", "Install", "Linux")
    assert ("text", "Run `searcher index` on a folder.", ("Guide", "Usage"), None) in _blocks(ex)


def test_markdown_front_matter_setext_and_tables():
    md = "---\ntitle: Not a heading\ntags: [a]\n---\n\nSetext Title\n============\n\nBody.\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"
    ex = extract("markdown", md.encode())
    kinds = [(k, t, h) for k, t, h, _ in _blocks(ex)]
    assert kinds == [("text", "---\ntitle: Not a heading\ntags: [a]\n---", ()),
                     ("heading", "Setext Title\n============", ("Setext Title",)),
                     ("text", "Body.", ("Setext Title",)),
                     ("lines", "| a | b |\n|---|---|\n| 1 | 2 |", ("Setext Title",))]


def test_rst_titles_literal_blocks_and_directives():
    ex = extract("rst", mk.RST.encode())
    assert ex.text == mk.RST
    assert [(t.split("\n")[0], h) for _, t, h, _ in _blocks(ex, "heading")] == [
        ("Guide", ("Guide",)), ("Install", ("Guide", "Install")), ("Linux", ("Guide", "Install", "Linux")),
        ("Usage", ("Guide", "Usage"))]
    codes = [(t, h) for _, t, h, _ in _blocks(ex, "code")]
    assert codes == [("pip install searcher\n    searcher --help", ("Guide", "Install")),
                     (".. code-block:: python\n\n   import searcher\n   searcher.run()", ("Guide", "Install", "Linux"))]


def test_code_is_one_code_block_of_the_file_text():
    ex = extract("code", mk.PYTHON.encode())
    assert ex.text == mk.PYTHON and [(b.kind, b.start, b.end) for b in ex.blocks] == [("code", 0, len(mk.PYTHON))]


# ---- HTML ----------------------------------------------------------------------------------------
def test_html_main_text_headings_code_and_no_boilerplate():
    ex = extract("html", mk.HTML.encode())
    for junk in ("tracking", "color: red", "Home", "navigation link", "Sidebar advertisement", "Copyright footer"):
        assert junk not in ex.text
    assert _blocks(ex) == [
        ("heading", "Station manual", ("Station manual",), None),
        ("text", "The station measures wind and rain.", ("Station manual",), None),
        ("heading", "Install", ("Station manual", "Install"), None),
        ("text", "Mount the mast on a flat roof.", ("Station manual", "Install"), None),
        ("heading", "Linux", ("Station manual", "Install", "Linux"), None),
        ("text", "Run the installer as root.\nThen reboot the machine.", ("Station manual", "Install", "Linux"), None),
        ("code", "def read_wind(sensor):\n    return sensor.speed()", ("Station manual", "Install", "Linux"), None),
        ("lines", "Part | Weight\nMast | 4 kg", ("Station manual", "Install", "Linux"), None),
        ("heading", "Troubleshooting", ("Station manual", "Troubleshooting"), None),
        ("text", "No data: check the cable.", ("Station manual", "Troubleshooting"), None),
        ("text", "Wrong time: set the clock.", ("Station manual", "Troubleshooting"), None),
    ]
    # the document text is the extracted text, blocks separated by a blank line
    assert ex.text.startswith("Station manual\n\nThe station measures wind and rain.\n\nInstall\n\n")


def test_html_charset_from_meta_and_xml_declaration():
    page = '<html><head><meta charset="gb2312"></head><body><h1>标题</h1><p>中文网页的内容。</p></body></html>'
    ex = extract("html", page.encode("gb2312"))
    assert [(k, t, h) for k, t, h, _ in _blocks(ex)] == [("heading", "标题", ("标题",)), ("text", "中文网页的内容。", ("标题",))]
    xhtml = ('<?xml version="1.0" encoding="iso-8859-1"?>\n<html xmlns="http://www.w3.org/1999/xhtml"><body>'
             '<p>Caf\xe9 cr\xe8me</p></body></html>').encode("latin-1")
    assert extract("html", xhtml).text == "Café crème"


def test_html_without_text_is_refused():
    with pytest.raises(Unreadable, match="no extractable text"):
        extract("html", b"<html><head><script>x()</script></head><body><nav>menu</nav></body></html>")


# ---- PDF -----------------------------------------------------------------------------------------
def test_pdf_text_per_page_with_outline_headings(tmp_path: Path):
    ex = extract("pdf", mk.pdf(tmp_path / "p.pdf").read_bytes())
    assert ex.page_unit == "page"
    pages = [(b.page, b.heading, ex.text[b.start:b.end]) for b in ex.blocks]
    assert pages == [(i + 1, (title,), "\n".join([title, *lines])) for i, (title, lines) in enumerate(mk.PDF_PAGES)]
    assert "\f" in ex.text


def test_pdf_heading_mid_page_splits_the_page(tmp_path: Path):
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(tmp_path / "m.pdf"))
    c.drawString(72, 770, "Chapter One")
    c.bookmarkPage("a")
    c.addOutlineEntry("Chapter One", "a", level=0)
    c.drawString(72, 750, "The first chapter talks about rivers.")
    c.drawString(72, 700, "Section Two")
    c.bookmarkHorizontal("b", 0, 710)
    c.addOutlineEntry("Section Two", "b", level=1)
    c.drawString(72, 680, "The second section talks about lakes.")
    c.showPage()
    c.save()
    ex = extract("pdf", (tmp_path / "m.pdf").read_bytes())
    assert [(b.page, b.heading, ex.text[b.start:b.end]) for b in ex.blocks] == [
        (1, ("Chapter One",), "Chapter One\nThe first chapter talks about rivers."),
        (1, ("Chapter One", "Section Two"), "Section Two\nThe second section talks about lakes.")]


def test_pdf_refusals(tmp_path: Path):
    with pytest.raises(Unreadable, match="^encrypted PDF: a password is needed"):
        extract("pdf", mk.encrypted_pdf(tmp_path / "e.pdf").read_bytes())
    with pytest.raises(Unreadable, match=r"^no extractable text: 2 pages without a text layer"):
        extract("pdf", mk.image_only_pdf(tmp_path / "i.pdf").read_bytes())
    with pytest.raises(Unreadable, match="^corrupt PDF"):
        extract("pdf", b"%PDF-1.7\n1 0 obj << /Type /Catalog >> garbage \x00\xff" * 20)
    with pytest.raises(Unreadable, match="^corrupt PDF: no PDF header"):
        extract("pdf", b"this is not a pdf at all")
    truncated = mk.pdf(tmp_path / "t.pdf").read_bytes()[:400]
    with pytest.raises(Unreadable, match="^(corrupt PDF|no extractable text)"):
        extract("pdf", truncated)


def test_pdf_with_only_an_owner_password_is_read(tmp_path: Path):
    ex = extract("pdf", mk.encrypted_pdf(tmp_path / "o.pdf", user_password="").read_bytes())
    assert "ground penetrating radar" in ex.text and [b.page for b in ex.blocks] == [1, 2, 3]


# ---- DOCX ----------------------------------------------------------------------------------------
def test_docx_paragraphs_headings_and_tables(tmp_path: Path):
    ex = extract("docx", mk.docx(tmp_path / "g.docx").read_bytes())
    assert _blocks(ex) == [
        ("heading", "Field Guide", ("Field Guide",), None),
        ("text", "This guide describes how to set up the weather station.", ("Field Guide",), None),
        ("heading", "Install", ("Field Guide", "Install"), None),
        ("text", "Unpack the station and mount it on a pole two metres above the ground.", ("Field Guide", "Install"), None),
        ("heading", "Linux", ("Field Guide", "Install", "Linux"), None),
        ("text", "Install the driver with apt install weather-station and plug in the USB cable.",
         ("Field Guide", "Install", "Linux"), None),
        ("lines", "Sensor | Range\nThermometer | -40 to 60 degrees", ("Field Guide", "Install", "Linux"), None),
        ("heading", "Maintenance", ("Field Guide", "Maintenance"), None),
        ("text", "Clean the rain gauge every month and replace the batteries every year.", ("Field Guide", "Maintenance"), None),
    ]


def test_docx_refusals(tmp_path: Path):
    with pytest.raises(Unreadable, match="^corrupt DOCX: not a zip archive"):
        extract("docx", b"PK\x03\x04 truncated zip")
    with pytest.raises(Unreadable, match="^encrypted DOCX or old .doc format"):
        extract("docx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600)
    import zipfile

    with zipfile.ZipFile(tmp_path / "z.docx", "w") as z:
        z.writestr("hello.txt", "no word document here")
    with pytest.raises(Unreadable, match="^corrupt DOCX: no word/document.xml"):
        extract("docx", (tmp_path / "z.docx").read_bytes())


# ---- notebooks -----------------------------------------------------------------------------------
def test_notebook_cells_headings_and_no_outputs(tmp_path: Path):
    ex = extract("notebook", mk.notebook(tmp_path / "n.ipynb").read_bytes())
    assert "OUTPUT SHOULD NOT BE INDEXED" not in ex.text and ex.page_unit == "cell"
    assert _blocks(ex) == [
        ("heading", "# Analysis", ("Analysis",), 1),
        ("text", "We load the rainfall data.", ("Analysis",), 1),
        ("code", "import pandas as pd\ndf = pd.read_csv('rain.csv')", ("Analysis",), 2),
        ("heading", "## Plot", ("Analysis", "Plot"), 3),
        ("text", "A chart of monthly rainfall.", ("Analysis", "Plot"), 3),
        ("code", "df.plot()", ("Analysis", "Plot"), 4),
    ]


def test_broken_notebook_is_refused():
    with pytest.raises(Unreadable, match="^corrupt notebook: not JSON"):
        extract("notebook", b'{"cells": [')
    with pytest.raises(Unreadable, match="^corrupt notebook: no cells"):
        extract("notebook", json.dumps({"nbformat": 4}).encode())


def test_html_menus_without_names_are_dropped_but_a_page_of_links_is_kept():
    menu = "".join(f'<li><a href="/p{i}.html">Menu entry {i}</a></li>' for i in range(8))
    body = " ".join(f"Paragraph sentence {i} explains how the library transforms documents." for i in range(8))
    page = (f"<html><head><title>Transforms | Example Library Docs</title></head><body><table><tr>"
            f"<td><ul>{menu}</ul></td><td><h2>Transforms</h2><p>{body}</p></td></tr></table></body></html>")
    ex = extract("html", page.encode())
    assert "Menu entry" not in ex.text and body in ex.text
    # the title's site name is dropped, and a title equal to the first heading is not repeated
    assert [b.heading for b in ex.blocks] == [("Transforms",), ("Transforms",)]
    index = f"<html><body><h1>Index</h1><ul>{menu}</ul></body></html>"
    assert "Menu entry 7" in extract("html", index.encode()).text


def test_terminal_formatted_text_is_text_without_its_formatting():
    manual = ("\n\n    \x1b[1mman-db - the database cached manual pager suite\x1b[0m\n\n"
              "    N\bNA\bAM\bME\bE\n        _\bm_\ba_\bn - an interface to the system reference manuals\n") * 20
    ex = extract("text", manual.encode())
    assert "\x1b" not in ex.text and "\x08" not in ex.text
    assert "man-db - the database cached manual pager suite" in ex.text and "    NAME\n        man - an" in ex.text
    assert ex.text.count("\n") == manual.count("\n")
