"""Search: the query pipeline (dense and keyword legs, fusion, feedback, rerank), snippets, and
the evaluation metrics used to measure it.

May import the stages below it; never ``analyze``, the façade or the interfaces.
"""
