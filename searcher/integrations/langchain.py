"""The LangChain adapter, at its documented path; it lives in ``searcher.interfaces.langchain``."""
from ..interfaces.langchain import SearcherVectorStore

__all__ = ["SearcherVectorStore"]
