"""Real files of every format, built on the fly with the libraries that write them.

PDFs are drawn with reportlab (and encrypted with pypdf), DOCX files written with python-docx,
Chinese text encoded with Python's own GB18030 and Big5 codecs. Each builder returns the path.
"""
from __future__ import annotations

import io
import json
from pathlib import Path

PDF_PAGES = [
    ("1 Introduction", ["Searcher reads the text layer of every page of a PDF.",
                        "Glaciers move slowly down the valley and carve it into a U shape."]),
    ("2 Methods", ["We measured the thickness of the ice with ground penetrating radar.",
                   "The radar survey covered forty kilometres of the glacier tongue."]),
    ("3 Results", ["The ice lost two metres of thickness every year since 2001.",
                   "Meltwater lakes formed on the surface in late summer."]),
]


def pdf(path: Path, pages=PDF_PAGES, outline: bool = True) -> Path:
    """A PDF with one titled section per page and an outline (bookmarks) naming them."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(path), pagesize=A4)
    for i, (title, lines) in enumerate(pages):
        c.setFont("Helvetica-Bold", 16)
        c.drawString(72, 770, title)
        if outline:
            c.bookmarkPage(f"p{i}")
            c.addOutlineEntry(title, f"p{i}", level=0)
        c.setFont("Helvetica", 11)
        y = 740
        for line in lines:
            c.drawString(72, y, line)
            y -= 16
        c.showPage()
    c.save()
    return path


def pdf_bytes(pages=PDF_PAGES) -> bytes:
    buf = io.BytesIO()
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(buf, pagesize=A4)
    for title, lines in pages:
        c.drawString(72, 770, title)
        for j, line in enumerate(lines):
            c.drawString(72, 740 - 16 * j, line)
        c.showPage()
    c.save()
    return buf.getvalue()


def encrypted_pdf(path: Path, user_password: str = "secret") -> Path:
    """A PDF that needs ``user_password`` to open (AES-256); with "" only an owner password is set."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf_bytes())))
    writer.encrypt(user_password=user_password, owner_password="owner-" + user_password, algorithm="AES-256")
    with open(path, "wb") as f:
        writer.write(f)
    return path


def image_only_pdf(path: Path) -> Path:
    """A two-page 'scan': shapes and no text layer."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(path), pagesize=A4)
    for _ in range(2):
        c.rect(72, 600, 300, 100, fill=1)
        c.circle(300, 400, 50, fill=1)
        c.showPage()
    c.save()
    return path


def docx(path: Path) -> Path:
    import docx as python_docx

    d = python_docx.Document()
    d.add_heading("Field Guide", level=0)
    d.add_paragraph("This guide describes how to set up the weather station.")
    d.add_heading("Install", level=1)
    d.add_paragraph("Unpack the station and mount it on a pole two metres above the ground.")
    d.add_heading("Linux", level=2)
    d.add_paragraph("Install the driver with apt install weather-station and plug in the USB cable.")
    table = d.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Sensor", "Range"
    table.cell(1, 0).text, table.cell(1, 1).text = "Thermometer", "-40 to 60 degrees"
    d.add_heading("Maintenance", level=1)
    d.add_paragraph("Clean the rain gauge every month and replace the batteries every year.")
    d.save(str(path))
    return path


HTML = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Station manual</title>
<style>body { color: red; } .secret-style { display: block }</style>
<script>var tracking = "do not index this script";</script></head>
<body>
<nav class="navbar"><a href="/">Home</a> | <a href="/about">About us navigation link</a></nav>
<div class="sidebar"><p>Sidebar advertisement for shoes</p></div>
<main>
<h1>Station manual</h1>
<p>The station measures <b>wind</b> and rain.</p>
<h2>Install</h2>
<p>Mount the mast on a flat roof.</p>
<h3>Linux</h3>
<p>Run the installer as root.<br>Then reboot the machine.</p>
<pre><code>def read_wind(sensor):
    return sensor.speed()
</code></pre>
<table><tr><th>Part</th><th>Weight</th></tr><tr><td>Mast</td><td>4 kg</td></tr></table>
<h2>Troubleshooting</h2>
<ul><li>No data: check the cable.</li><li>Wrong time: set the clock.</li></ul>
</main>
<footer class="footer">Copyright footer text 2024</footer>
</body></html>
"""

MARKDOWN = """# Guide

Intro text for the guide.

## Install

Install instructions follow.

### Linux

Use the package manager to install it. Then run the service.

```python
def main():
    print("hello")
```

### Windows

Run the installer.

## Usage

Run `searcher index` on a folder.
"""

RST = """Guide
=====

Intro paragraph of the guide.

Install
-------

Run the installer like this::

    pip install searcher
    searcher --help

Linux
~~~~~

Use apt on Debian.

.. code-block:: python

   import searcher
   searcher.run()

Usage
-----

Index a folder and search it.
"""

PYTHON = '''"""A module."""
import os


def first(x):
    """Return the first thing."""
    return x[0]


class Box:
    """A box."""

    def __init__(self, items):
        self.items = items

    def size(self):
        return len(self.items)
'''


def notebook(path: Path) -> Path:
    nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "markdown", "metadata": {}, "source": ["# Analysis\n", "\n", "We load the rainfall data."]},
        {"cell_type": "code", "metadata": {}, "execution_count": 1, "outputs": [
            {"output_type": "stream", "name": "stdout", "text": ["OUTPUT SHOULD NOT BE INDEXED\n"]}],
         "source": ["import pandas as pd\n", "df = pd.read_csv('rain.csv')"]},
        {"cell_type": "markdown", "metadata": {}, "source": "## Plot\n\nA chart of monthly rainfall."},
        {"cell_type": "code", "metadata": {}, "execution_count": 2, "outputs": [], "source": "df.plot()"},
    ]}
    path.write_text(json.dumps(nb), encoding="utf-8")
    return path


CHINESE = ("搜索引擎在本地运行，不需要网络。它读取文件夹中的文档，并按照意思进行搜索！"
           "你可以用自己的话提问吗？当然可以；结果会显示文件和行号。")
TRADITIONAL = "繁體中文的文件通常使用大五碼編碼。我們需要正確地識別它，並且建立索引。"
