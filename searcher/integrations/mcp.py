"""The MCP server, at its documented path; it lives in ``searcher.interfaces.mcp``."""
from ..interfaces.mcp import build_server, run_stdio

__all__ = ["build_server", "run_stdio"]
