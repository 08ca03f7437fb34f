"""Query-time synonyms from a plain text file that editors maintain.

Each line lists words that mean the same thing, separated by commas::

    パソコン, PC, パーソナルコンピューター
    JS, JavaScript

A query word that is one of them also finds the others (ranked a little
below the word itself).  Lines starting with # are comments.  The file is
read again when it changes, so editing it needs no reindex.
"""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

DEFAULT_FILE = Path(__file__).with_name("synonyms.txt")


def _key(word: str) -> str:
    from .analysis import fold

    return fold(unicodedata.normalize("NFKC", word).strip())


class Synonyms:
    """Synonym groups loaded from *path* (the shipped defaults when None)."""

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path else DEFAULT_FILE
        self._stamp = None
        self._groups: dict[str, list[str]] = {}

    def _load(self) -> None:
        try:
            stamp = self.path.stat().st_mtime_ns
        except OSError:
            self._groups, self._stamp = {}, None
            return
        if stamp == self._stamp:
            return
        groups: dict[str, list[str]] = {}
        for line in self.path.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            words = [w.strip() for w in line.split(",") if w.strip()]
            for word in words:
                groups.setdefault(_key(word), []).extend(w for w in words if _key(w) != _key(word))
        self._groups, self._stamp = groups, stamp

    def expand(self, word: str) -> list[str]:
        """The synonyms of *word* (not including itself)."""
        self._load()
        return list(dict.fromkeys(self._groups.get(_key(word), [])))
