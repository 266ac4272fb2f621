"""Jupyter notebooks (.ipynb, nbformat 3 and 4) with the standard library's json.

Markdown cells are read as Markdown (their headings set the heading path for the cells that
follow), code cells become ``code`` blocks, raw cells text. Outputs are left out: they are
results, often large, rarely what one searches for. The document text is the cells' sources
joined by a blank line; each block carries its 1-based cell number as its ``page`` (page unit
"cell"), and a chunk's cell is the cell it starts in. Unlike PDF pages, small neighbouring
cells may share a chunk.
"""
from __future__ import annotations

import json

from ...records import Block
from .base import Extracted, Unreadable, clean_heading, decode, heading_path, push_heading
from .markdown import markdown_blocks


def read(data: bytes, kind: str) -> Extracted:
    try:
        nb = json.loads(decode(data))
    except json.JSONDecodeError as exc:
        raise Unreadable(f"corrupt notebook: not JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(nb, dict):
        raise Unreadable("corrupt notebook: not a notebook object")
    cells = nb.get("cells")
    if cells is None and isinstance(nb.get("worksheets"), list):   # nbformat 3
        cells = [c for ws in nb["worksheets"] if isinstance(ws, dict) for c in ws.get("cells", [])]
    if not isinstance(cells, list):
        raise Unreadable("corrupt notebook: no cells")
    parts: list[str] = []
    blocks: list[Block] = []
    stack: list[tuple[int, str]] = []
    pos = 0
    for number, cell in enumerate(cells, 1):
        if not isinstance(cell, dict):
            continue
        source = cell.get("source", cell.get("input", ""))
        if isinstance(source, list):
            source = "".join(s for s in source if isinstance(s, str))
        if not isinstance(source, str):
            continue
        source = source.replace("\r\n", "\n").strip("\n")
        if not source.strip():
            continue
        if parts:
            parts.append("\n\n")
            pos += 2
        start = pos
        parts.append(source)
        pos += len(source)
        cell_type = cell.get("cell_type")
        if cell_type == "markdown":
            blocks += [Block(b.start + start, b.end + start, b.kind, b.heading, number)
                       for b in markdown_blocks(source, 0, len(source), stack, number)]
        elif cell_type == "heading":   # nbformat 3 heading cells
            level = cell.get("level", 1)
            level = level if isinstance(level, int) and 1 <= level <= 6 else 1
            path = push_heading(stack, level, clean_heading(source) or "(untitled)")
            blocks.append(Block(start, pos, "heading", path, number))
        elif cell_type == "code":
            blocks.append(Block(start, pos, "code", heading_path(stack), number))
        else:
            blocks.append(Block(start, pos, "text", heading_path(stack), number))
    return Extracted("".join(parts), tuple(blocks), "cell")

