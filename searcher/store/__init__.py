"""Store: SQLite as the source of truth (documents, chunks, vectors, keyword index), the writer
lock, and the vector stores derived from it (FAISS file or Milvus) behind one protocol.

May import ``ingest`` and ``embed``; never ``search`` or anything above it.
"""
