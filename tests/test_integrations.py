"""The MCP adapter, answered by a real MCP client session over stdio (LangChain: tests/test_langchain.py)."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from .conftest import NOTES, write_tree

REPO = Path(__file__).resolve().parent.parent


def _result(res) -> dict:
    if getattr(res, "is_error", getattr(res, "isError", False)):
        raise AssertionError(res.content[0].text)
    structured = getattr(res, "structured_content", getattr(res, "structuredContent", None))
    if structured is not None:
        return structured.get("result", structured) if set(structured) == {"result"} else structured
    return json.loads(res.content[0].text)


def _is_error(res) -> bool:
    return bool(getattr(res, "is_error", getattr(res, "isError", False)))


def test_mcp_tools_answer_a_real_client(tmp_path):
    pytest.importorskip("mcp")
    anyio = pytest.importorskip("anyio")
    from mcp import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    notes = write_tree(tmp_path / "notes", NOTES)
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "searcher", "mcp", "--index", str(tmp_path / "idx"),
                                      "--folder", str(notes)],
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
             "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})

    async def session_run() -> None:
        with open(tmp_path / "mcp.log", "w") as errlog:
            async with stdio_client(params, errlog=errlog) as (read, write):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    tools = {t.name: t for t in (await session.list_tools()).tools}
                    assert {"search", "similar", "index_status", "reindex"} <= set(tools)
                    assert "query" in tools["search"].input_schema["properties"] if hasattr(
                        tools["search"], "input_schema") else tools["search"].inputSchema["properties"]

                    status = _result(await session.call_tool("index_status", {}))
                    assert status["name"] == "idx" and status.get("exists") is False

                    run = _result(await session.call_tool("reindex", {}))
                    assert run["folders"][0]["added"] == len(NOTES)

                    found = _result(await session.call_tool("search", {"query": "how do I keep more days of logs",
                                                                       "k": 2}))
                    assert found["hits"][0]["path"].endswith("ops/logging.md") and len(found["hits"]) == 2
                    py = _result(await session.call_tool("search", {"query": "network", "types": ["py"]}))
                    assert py["hits"] and all(h["path"].endswith(".py") for h in py["hits"])

                    logging_md = found["hits"][0]["path"]
                    like = _result(await session.call_tool("similar", {"id": logging_md, "k": 2}))
                    assert len(like["similar"]) == 2 and logging_md not in [d["id"] for d in like["similar"]]
                    bad = await session.call_tool("similar", {"id": "no/such.md"})
                    assert _is_error(bad) and "not an indexed document" in bad.content[0].text

                    status = _result(await session.call_tool("index_status", {}))
                    assert status["files"] == len(NOTES) and status["last_reindex"]["folders"][0]["added"] == 5

                    bad = await session.call_tool("search", {"query": "   "})
                    assert _is_error(bad) and "query is empty" in bad.content[0].text
                    bad = await session.call_tool("search", {"query": "logs", "index": "../etc"})
                    assert _is_error(bad) and "no index named" in bad.content[0].text

    anyio.run(session_run)
