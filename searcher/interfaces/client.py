"""``Client``: the HTTP API of ``searcher serve`` with the same ``search()`` signature as ``Searcher``.

Standard library only (urllib), so a program that just queries a server needs nothing else.

>>> c = Client("http://127.0.0.1:8765")          # doctest: +SKIP
>>> c.search("how do I rotate the logs", k=5)    # doctest: +SKIP
"""
from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, is_dataclass
from typing import Any

from ..errors import LockedError, SearcherError
from ..records import Filters, Hit


class ClientError(SearcherError):
    """The server refused a request; ``status`` is the HTTP status (0 when it could not be reached)."""

    def __init__(self, message: str, status: int = 0):
        super().__init__(message)
        self.status = status


class ClientLockedError(ClientError, LockedError):
    """HTTP 409: the index is being written; retry later."""


class Client:
    def __init__(self, url: str = "http://127.0.0.1:8765", *, token: str | None = None, index: str | None = None,
                 timeout: float = 60.0):
        self.url = url.rstrip("/")
        self.token = token if token is not None else os.environ.get("SEARCHER_TOKEN")
        self.index_name = index
        self.timeout = timeout

    # ---- transport -----------------------------------------------------------------------------
    def _request(self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None) -> Any:
        url = self.url + path
        if params:
            params = {k: v for k, v in params.items() if v is not None}
            if params:
                url += "?" + urllib.parse.urlencode(params)
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read()).get("error") or exc.reason
            except (ValueError, AttributeError):
                message = str(exc.reason)
            cls = ClientLockedError if exc.code == 409 else ClientError
            raise cls(f"{message} (HTTP {exc.code})", exc.code) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ClientError(f"cannot reach searcher server at {self.url}: {reason}") from None

    # ---- the API -------------------------------------------------------------------------------
    def search(self, query: str, k: int = 10, *, mode: str = "hybrid", filters: Filters | dict | None = None,
               group_by_file: bool = False, min_score: float | None = None,
               rerank: str | None = None, fusion: str = "zscore", feedback: bool = True) -> list[Hit]:
        """Same as ``Searcher.search``, answered by the server."""
        if is_dataclass(filters):
            filters = {key: list(v) if key == "types" else v for key, v in asdict(filters).items()}
        body = {"query": query, "k": k, "mode": mode, "filters": filters, "group_by_file": group_by_file,
                "min_score": min_score, "rerank": rerank, "fusion": fusion, "feedback": feedback,
                "index": self.index_name}
        out = self._request("POST", "/search", {key: v for key, v in body.items() if v is not None})
        return [Hit.from_dict(h) for h in out["hits"]]

    def add(self, texts: Sequence[str], ids: Sequence[str] | None = None,
            metadata: Sequence[dict[str, Any]] | None = None) -> list[str]:
        """Add (or replace, by id) texts; returns their ids."""
        if isinstance(texts, str):
            raise SearcherError("add() takes a list of texts, not one string")
        texts = list(texts)
        docs: list[dict[str, Any]] = [{"text": t} for t in texts]
        if ids is not None:
            for d, i in zip(docs, ids, strict=True):
                d["id"] = str(i)
        if metadata is not None:
            for d, m in zip(docs, metadata, strict=True):
                d["metadata"] = dict(m or {})
        body: dict[str, Any] = {"documents": docs}
        if self.index_name:
            body["index"] = self.index_name
        return self._request("POST", "/documents", body)["ids"]

    def delete(self, ids: Sequence[str] | str) -> int:
        """Remove documents by id; returns how many existed."""
        if isinstance(ids, str):
            ids = [ids]
        if not ids:
            return 0
        body: dict[str, Any] = {"ids": [str(i) for i in ids]}
        if self.index_name:
            body["index"] = self.index_name
        return self._request("POST", "/documents/delete", body)["deleted"]

    def reindex(self, *, wait: bool = True, timeout: float = 3600, poll: float = 0.2) -> dict[str, Any]:
        """Start a re-index of the server's folders; with ``wait``, return the finished job."""
        body = {"index": self.index_name} if self.index_name else {}
        job = self._request("POST", "/index", body)
        deadline = time.monotonic() + timeout
        while wait and job["status"] in ("queued", "running"):
            if time.monotonic() > deadline:
                raise ClientError(f"index job {job['id']} still {job['status']} after {timeout:.0f}s")
            time.sleep(poll)
            job = self.job(job["id"])
        if wait and job["status"] == "failed":
            raise ClientError(job.get("error") or "index job failed")
        return job

    def job(self, job_id: str) -> dict[str, Any]:
        return self._request("GET", f"/index/{urllib.parse.quote(job_id, safe='')}")

    def info(self) -> dict[str, Any]:
        return self._request("GET", "/info", params={"index": self.index_name})

    def health(self) -> dict[str, Any]:
        return self._request("GET", "/health")

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until the server answers /health."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.health()
                return
            except ClientError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
