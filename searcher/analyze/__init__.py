"""Analyze: what else stored embeddings are for — similar documents, duplicates, outliers,
topics and a map of the corpus. Reads the store and the vectors, never the other way round.
"""
