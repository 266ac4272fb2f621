"""Interfaces: thin layers over the ``Searcher`` façade — the command line, the HTTP server and
its client, MCP and LangChain adapters.
"""
