"""Embed: text → vectors. The indexing encoder (sentence-transformers, run through ONNX Runtime),
the light ONNX query encoder (no torch), and Ray workers for clusters.

May import ``ingest``; never the store or anything above it.
"""
