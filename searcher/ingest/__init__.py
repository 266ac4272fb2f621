"""Ingest: find the files of a folder (walk, ignore rules), read each one (readers/), cut it into
chunks that fit the model (chunking), and remember what was skipped and why (skiplog).

Imports only ``records`` and ``errors`` from outside.
"""
