"""Topics: clusters of documents, each with distinctive words and its most central documents.

Two seeded steps, so the same index always gives the same topics: k-means (scikit-learn) cuts the
collection into up to ``FINE`` small clusters, then average linkage (cosine, scipy) merges their
centres into ``n`` topics — by default the ``n`` in 2..``MAX_TOPICS`` (and ≤ √(documents / 2), the usual
rule of thumb, so that a small folder is not cut into pairs) at the dendrogram's widest gap (the merge
that would join two clearly separate groups is the one left undone). On four mixes of
real collections the gap recovered the number of sources each time, where silhouette over-split
(scripts/bench_analyze.py, docs/analyze.md). Labels are c-TF-IDF: words frequent in a topic and
rare in the others (Grootendorst 2022, BERTopic), English stop words left out.
"""
from __future__ import annotations

import numpy as np

from ..errors import SearcherError
from ..records import Topic
from .units import Units, require

FINE = 60
MAX_TOPICS = 12
KMEANS_SAMPLE = 5000         # k-means learns its centres on this many documents, then assigns all
LABEL_WORDS = 4
REPRESENTATIVES = 3
_LABEL_CHARS = 5000          # of each document, for the word counts


def cluster(vectors: np.ndarray, n: int | None = None) -> np.ndarray:
    """A topic number per row (0 = the largest topic)."""
    from scipy.cluster.hierarchy import fcluster, linkage
    from sklearn.cluster import KMeans

    rows = len(vectors)
    fine = min(FINE, max(2, rows // 3))
    if n is not None and n > fine:
        fine = min(rows, n)
    fit_on = np.random.default_rng(0).choice(rows, min(rows, KMEANS_SAMPLE), replace=False)
    km = KMeans(fine, n_init=1, max_iter=100, random_state=0).fit(vectors[fit_on])
    fine_labels = km.predict(vectors)
    if n is not None and n >= fine:
        labels = fine_labels
    else:
        merges = linkage(km.cluster_centers_.astype(np.float64), "average", metric="cosine")
        if n is None:
            heights = np.sort(merges[:, 2])[::-1]       # heights[i]: the merge from i + 2 groups to i + 1
            most = min(MAX_TOPICS, fine - 1, max(2, int(np.sqrt(rows / 2))))  # √(n/2): few topics for few documents
            choices = most - 1                           # n = 2 .. most, each with a next merge below it
            n = int(np.argmax(heights[:choices] - heights[1:choices + 1])) + 2 if choices >= 1 else 2
        labels = (fcluster(merges, n, criterion="maxclust") - 1)[fine_labels]
    order = np.argsort(-np.bincount(labels), kind="stable")
    return np.argsort(order)[labels]


def label_words(texts: list[str], labels: np.ndarray, n_topics: int) -> list[tuple[str, ...]]:
    """The ``LABEL_WORDS`` highest c-TF-IDF words of each topic."""
    from scipy.sparse import csr_matrix
    from sklearn.feature_extraction.text import CountVectorizer

    vec = CountVectorizer(stop_words="english", token_pattern=r"(?u)\b[^\W\d_]{3,}\b", max_features=50_000)
    try:
        counts = vec.fit_transform(t[:_LABEL_CHARS] for t in texts)
    except ValueError:        # no words at all
        return [() for _ in range(n_topics)]
    member = csr_matrix((np.ones(len(labels)), (labels, np.arange(len(labels)))), shape=(n_topics, len(labels)))
    tf = np.asarray((member @ counts).todense(), dtype=np.float64)
    words_per_topic = tf.sum(1, keepdims=True)
    idf = np.log1p(words_per_topic.mean() / np.maximum(tf.sum(0), 1))
    ctfidf = tf / np.maximum(words_per_topic, 1) * idf
    vocab = vec.get_feature_names_out()
    return [tuple(vocab[j] for j in np.argsort(-row, kind="stable")[:LABEL_WORDS] if row[j] > 0) for row in ctfidf]


def topics(units: Units, n: int | None = None) -> tuple[list[Topic], np.ndarray]:
    """The topics, largest first, and each unit's topic number."""
    if n is not None and (not isinstance(n, int) or n < 2):
        raise SearcherError(f"the number of topics must be a whole number of at least 2, got {n!r}")
    require(units, 3, "topics")
    if n is not None and n > len(units):
        raise SearcherError(f"asked for {n} topics but only {len(units)} documents are indexed (after filters)")
    labels = cluster(units.vectors, n)
    n_topics = int(labels.max()) + 1
    words = label_words(units.texts, labels, n_topics)
    out = []
    for t in range(n_topics):
        members = np.flatnonzero(labels == t)
        centre = units.vectors[members].mean(0)
        members = members[np.argsort(-(units.vectors[members] @ centre), kind="stable")]
        central = members[:REPRESENTATIVES]
        out.append(Topic(t, ", ".join(words[t]) or f"topic {t}", words[t], len(members),
                         tuple(units.ids[i] for i in central), tuple(units.title(i) for i in central),
                         tuple(units.ids[i] for i in members)))
    return out, labels
