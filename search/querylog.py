"""What visitors search for: an append-only, rotating log of searches and clicks.

Each line is a JSON object: time, query, filters, number of hits and time
taken, or a click on a result.  No IP address, cookie or user agent is
written.  ``search report`` reads it back for editors.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
from collections import Counter
from pathlib import Path

MAX_BYTES = 10 * 1024 * 1024
KEEP = 5


class QueryLog:
    """Appends one JSON line per event; rotates at MAX_BYTES, keeping KEEP old files."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def search(self, params: dict, hits: int, took_ms: float) -> None:
        self._write({"event": "search", "q": params.get("q", ""), "tags": list(params.get("tags", ())),
                     "type": params.get("content_type"), "sort": params.get("sort"), "page": params.get("page"),
                     "hits": hits, "ms": took_ms})

    def click(self, q: str, slug: str) -> None:
        self._write({"event": "click", "q": q, "slug": slug})

    def _write(self, record: dict) -> None:
        record = {"t": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), **record}
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "ab") as f:
                fcntl.flock(f, fcntl.LOCK_EX)
                if f.tell() + len(line) > MAX_BYTES:
                    self._rotate()
                    with open(self.path, "ab") as fresh:
                        fresh.write(line)
                else:
                    f.write(line)
        except OSError:
            pass  # the log must never break a search

    def _rotate(self) -> None:
        for i in range(KEEP - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{i}")
            if older.exists():
                os.replace(older, self.path.with_name(f"{self.path.name}.{i + 1}"))
        os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))


def read_events(path: Path, since: str | None = None):
    """Events of the log and its rotated files, oldest file first."""
    files = [path.with_name(f"{path.name}.{i}") for i in range(KEEP, 0, -1)] + [path]
    for file in files:
        if not file.exists():
            continue
        with open(file, encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if since and event.get("t", "") < since:
                    continue
                yield event


def summarize(path: Path, since: str | None = None, top: int = 20) -> dict:
    """Most frequent queries, queries that found nothing, queries never clicked."""
    searches, empty, clicked = Counter(), Counter(), set()
    for event in read_events(path, since):
        q = " ".join(str(event.get("q", "")).split())
        if not q:
            continue
        if event.get("event") == "click":
            clicked.add(q)
        elif event.get("event") == "search":
            searches[q] += 1
            if event.get("hits") == 0:
                empty[q] += 1
    unclicked = Counter({q: n for q, n in searches.items() if q not in clicked and q not in empty})
    return {"searches": sum(searches.values()), "top": searches.most_common(top),
            "no_results": empty.most_common(top), "never_clicked": unclicked.most_common(top)}


def format_report(summary: dict) -> str:
    lines = [f"{summary['searches']} searches"]
    for key, title in (("top", "Most frequent queries"), ("no_results", "Queries that found nothing"),
                       ("never_clicked", "Queries whose results were never clicked")):
        lines += ["", title + ":"]
        lines += [f"  {n:6d}  {q}" for q, n in summary[key]] or ["  (none)"]
    return "\n".join(lines)
