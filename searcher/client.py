"""The HTTP client, at the path the docs give (``searcher.client.Client``); it lives in
``searcher.interfaces.client``."""
from .interfaces.client import Client, ClientError

__all__ = ["Client", "ClientError"]
