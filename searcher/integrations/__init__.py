"""Adapters to other frameworks; each needs its optional extra (``searcher[mcp]``, ``searcher[langchain]``)."""
