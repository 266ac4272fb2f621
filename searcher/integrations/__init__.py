"""Documented import paths of the adapters (``searcher.integrations.langchain``,
``searcher.integrations.mcp``); the code lives in ``searcher.interfaces``."""
