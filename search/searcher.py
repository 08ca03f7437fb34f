"""The search core: query language, ranking, facets, snippets.

Both fronts (``search query`` and ``GET /api/search``) call
:meth:`Searcher.search` and print or serialise the :class:`SearchResult`.
"""

from __future__ import annotations

import datetime as dt
import gc
import heapq
import html
import io
import json
import math
import mmap
import os
import pickle
import re
import struct
import threading
import time
import unicodedata
import weakref
from array import array
from bisect import bisect_left
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from itertools import accumulate, chain
from pathlib import Path

from whoosh import query as wq
from whoosh.codec.whoosh3 import LENGTHS_COLUMN, W3LeafMatcher, W3TermInfo
from whoosh.util.numeric import byte_to_length

from . import analysis
from .analysis import READING, Unit, alternatives, fold, is_kana, query_units, to_hiragana, to_katakana
from .config import MAX_PAGE, MAX_PER_PAGE, MAX_QUERY_LENGTH, SEARCH_TIME_LIMIT
from .errors import IndexMissing, QueryError
from .indexer import _ENTRY_LENGTHS, _HASH_SLOT, CURRENT, MANIFEST, damaged, key_hash_function, open_index, read_info
from .synonyms import Synonyms

FIELD_WEIGHTS = {"title": 5.0, "tags": 3.0, "abstract": 2.0, "body": 1.0}
KIND_WEIGHTS = {"exact": 1.0, "variant": 0.7, "synonym": 0.6, "reading": 0.4}
RECENCY_WEIGHT = 0.05  # at most +5% for today's article, decaying over about two years
RERANK_WINDOW = 30
RELAXED_BLOCK = 4 * RERANK_WINDOW  # candidates scored together when a question falls back to most of its words
FEW_RESULTS = 10  # fewer matches than a page: also offer articles with most of the words
MOST_WORDS_MIN_UNITS = 3
MOST_WORDS_SHARE = 0.6
MAX_WORDS = 16
SNIPPET_CHARS = 120
MAX_SUGGESTED_TAG = 30  # characters; longer tags (whole headlines on the large corpus) are not offered
# Did-you-mean also for a query that found at most this many articles, with a word in at most
# this many one edit or swap away from a word in RARE_WORD_RATIO times as many (typescirpt: TypeScript).
RARE_WORD = 3
RARE_WORD_RATIO = 20
# Suggest: a word written in hiragana only counts this much of its frequency (な: ない, なる,
# なり, ... came before any noun; now ナビゲーション, 内容, 名前 do, and then they).
HIRAGANA_WORD_WEIGHT = 0.05
SCAN_CHARS = 6000  # how far into a body the analyzer looks for a variant-only match
FACET_LIMIT = 30
SORTS = ("relevance", "date")
LIGHT_VERBS = frozenset({"する", "為る"})


# --- results ---------------------------------------------------------------------------------


@dataclass
class Hit:
    """One article in a result list."""

    slug: str
    url: str
    title: str
    title_html: str
    date: str | None
    tags: list[str]
    contentType: str
    description: str
    image: str
    snippet: str
    score: float
    snippet_text: str = ""  # the snippet with matches between \x02 and \x03, unescaped, for terminals
    readTime: int | None = None
    featured: bool = False


@dataclass
class FacetValue:
    value: str
    count: int
    selected: bool


@dataclass
class SearchResult:
    """What a search returns; ``to_dict`` is the JSON contract of the API."""

    query: str
    total: int
    page: int
    per_page: int
    took_ms: float
    hits: list[Hit]
    facets: dict[str, list[FacetValue]]
    suggestion: str | None = None
    relaxed: bool = False  # compound words were matched as separate words: no phrase was found
    timed_out: bool = False

    def to_dict(self) -> dict:
        """What ``dataclasses.asdict`` gives, built directly: asdict deep-copies
        every value one by one, 1.3 ms for a page of ten hits on the large
        corpus, most of what the API added to a search."""
        data = dict(vars(self))
        data["hits"] = [{**vars(hit), "tags": list(hit.tags)} for hit in self.hits]
        data["facets"] = {name: [dict(vars(v)) for v in values] for name, values in self.facets.items()}
        return data


# --- the query language ---------------------------------------------------------------------


@dataclass
class Word:
    """A word or quoted phrase the user typed."""

    text: str
    phrase: bool = False


@dataclass
class ParsedQuery:
    """Clauses are AND-ed; the words inside a clause are OR-ed; excluded words are NOT-ed."""

    clauses: list[list[Word]] = field(default_factory=list)
    excluded: list[Word] = field(default_factory=list)

    def words(self) -> list[Word]:
        return [w for clause in self.clauses for w in clause]


_TOKEN = re.compile(r'(-?)"([^"]*)"?|(\S+)')


def clean_query(q: str) -> str:
    """NFKC, no control characters, lone surrogates or bidi marks; one space between words."""
    q = "".join(" " if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c
                for c in q if unicodedata.category(c) not in ("Cs", "Cf", "Co", "Cn"))
    return " ".join(unicodedata.normalize("NFKC", q).split())


def parse_query(q: str) -> ParsedQuery:
    """Parse what a person typed: words, "phrases", -excluded, OR.  Never fails.

    Everything else (field:value, wildcards, boosts, brackets) is plain text,
    which the analyzer reduces to words.
    """
    parsed = ParsedQuery()
    pending_or = False
    for m in _TOKEN.finditer(clean_query(q)):
        neg, phrase, plain = m.group(1), m.group(2), m.group(3)
        if plain is not None:
            if plain == "OR" and parsed.clauses:
                pending_or = True
                continue
            if plain.startswith("-") and len(plain) > 1:
                parsed.excluded.append(Word(plain[1:]))
                continue
            word = Word(plain)
        else:
            if not phrase.strip():
                continue
            word = Word(phrase.strip(), phrase=True)
            if neg:
                parsed.excluded.append(word)
                continue
        if pending_or:
            parsed.clauses[-1].append(word)
            pending_or = False
        else:
            parsed.clauses.append([word])
    return parsed


# --- the searcher ---------------------------------------------------------------------------


class _Snapshot:
    """An open index generation and the per-document arrays that make facets cheap."""

    def __init__(self, index_dir: Path):
        ix, gen = open_index(index_dir)
        try:
            self.searcher = ix.searcher()
        except Exception as e:  # a segment file that is missing, truncated or garbage
            raise damaged(index_dir, e) from None
        # Closed explicitly, or when garbage-collected: a weakref finalizer runs
        # before the file objects' own finalizers, so no file is left to warn.
        self.term_tables: list[_TermTable] = []
        self._finalizer = weakref.finalize(self, _close_quietly, self.searcher, self.term_tables)
        try:
            self._load(ix, gen)
        except Exception as e:
            self.close()
            raise damaged(index_dir, e) from None

    def _load(self, ix, gen: Path) -> None:
        self.gen = gen
        reader = self.searcher.reader()
        self.generation = f"{gen.name}/{ix.latest_generation()}"
        self.info = read_info(gen)
        self.doc_count = reader.doc_count()
        self.tags = _FacetField(reader, "tag")
        self.types = _FacetField(reader, "type")
        self.products = _FacetField(reader, "product")
        self.days = list(reader.column_reader("day")) if reader.has_column("day") else []
        self.today = dt.date.today().toordinal()
        self.live = frozenset(reader.all_doc_ids())
        self.term_tables.extend(_TermTable(leaf) for leaf, _ in reader.leaf_readers())
        self._lengths: dict[str, list[int]] = {}
        self._norms: dict[str, list[float | None]] = {}
        self._lexicon: _Lexicon | None = None
        self._common_latin: dict[str, int] | None = None
        self.spellings: dict[str, str] = {}  # folded word -> how the articles write it (suggest)
        self.written: dict[str, list] = {}  # reading term -> how titles write the word (suggest)
        self._recency: list[float] | None = None

    def recency(self) -> list[float]:
        """Every document's recency factor: at most 1 + RECENCY_WEIGHT for today's, decaying over about two years."""
        if self._recency is None:
            self._recency = [1.0 + RECENCY_WEIGHT * math.exp(-(max(0, self.today - day) / 365.0) / 2)
                             for day in self.days]
        return self._recency

    def field_lengths(self, fieldname: str) -> list[int]:
        """Every document's length of the field as BM25F sees it (Whoosh stores it rounded); read on first use."""
        lengths = self._lengths.get(fieldname)
        if lengths is None:
            lengths = self._lengths[fieldname] = _field_lengths(self.searcher.reader(), fieldname)
        return lengths

    def length_norms(self, fieldname: str) -> list[float | None]:
        """Every document's ``K1 * ((1 - B) + B * fl / avgfl)``: the part of Whoosh's bm25() that depends on the document.

        Computed as bm25() computes it, so that a term's scores are the same
        floats; None for a document without the field.
        """
        norms = self._norms.get(fieldname)
        if norms is None:
            weighting = self.searcher.weighting
            b, k1 = weighting._field_B.get(fieldname, weighting.B), weighting.K1
            avgfl = self.searcher.avg_field_length(fieldname) or 1
            norms = self._norms[fieldname] = [None if fl is None else k1 * ((1 - b) + b * fl / avgfl)
                                              for fl in self.field_lengths(fieldname)]
        return norms

    def common_latin(self) -> dict[str, int]:
        """Latin words of titles and bodies in at least RARE_WORD_RATIO articles, with that number
        (did-you-mean for a rare word); only the Latin part of the lexicon is read, once."""
        if self._common_latin is None:
            common: dict[str, int] = {}
            reader = self.searcher.reader()
            for fieldname in ("title", "body"):
                words = _TermList(reader, fieldname, [("a", "{")])  # words that start with a letter
                for i in range(len(words.terms)):
                    if words.frequencies[i] >= RARE_WORD_RATIO:
                        term = words.terms[i]
                        common[term] = max(common.get(term, 0), words.frequencies[i])
            self._common_latin = common
        return self._common_latin

    def lexicon(self) -> "_Lexicon":
        """The words and readings suggest completes; read on first use (CLI queries never need it)."""
        if self._lexicon is None:
            self._lexicon = _Lexicon(self.searcher.reader(), self.gen)
            _release_free_memory()  # reading it takes ~25 MB for a moment on the large corpus
        return self._lexicon

    def close(self):
        """Close the index files (segments are separate files, opened on demand)."""
        self._finalizer()


def _settle_garbage_collector() -> None:
    """Leave what an index generation loads out of Python's full garbage collections.

    A full collection walks every object the collector tracks; with the large
    corpus open, one took 25-57 ms in a web worker, about once every 150
    searches, and those searches were the slowest (gc.callbacks over 305
    searches through the Flask app: max 64-82 ms, 21 ms with this). Frozen
    objects are skipped by collections; unfreezing first lets the previous
    generation's cyclic garbage be collected once.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    _release_free_memory()


def _release_free_memory() -> None:
    """Give the free pages of the C heap back to the system (glibc's malloc_trim), after a big transient.

    Memory Python frees stays in the process's heap, counted in its RSS,
    unless it is at the heap's top. In a serving process on the large
    corpus after the first suggest: 27 -> 14 MB of heap.
    """
    try:
        import ctypes

        ctypes.CDLL(None).malloc_trim(0)
    except (ImportError, OSError, AttributeError):  # not glibc: nothing to release this way
        pass


def _field_lengths(reader, fieldname: str) -> list:
    """reader.doc_field_length(d, fieldname, 1) for every document, read a column at a time.

    One call per document costs ~10 µs through Whoosh's readers (0.3 s for
    the four text fields of the large corpus, on every first query after a
    build or update and in every CLI query); the lengths are a byte column
    per segment, which this reads whole.  Same values, None included: Whoosh
    returns None for a length byte of 0.
    """
    lengths: list = []
    for leaf, _ in reader.leaf_readers():
        perdoc = leaf._perdoc  # whoosh-reloaded is pinned; tests compare this with doc_field_length
        column = f"_{fieldname}_len"
        if perdoc.has_column(column):
            lengths.extend(byte_to_length(b) if b else None for b in perdoc.column_reader(column, LENGTHS_COLUMN))
        else:
            lengths.extend([1] * leaf.doc_count_all())
    return lengths


def _close_quietly(searcher, term_tables: list["_TermTable"]) -> None:
    for table in term_tables:
        table.close()
    try:
        searcher.close()
    except Exception:  # a damaged index may fail to close cleanly; nothing to save
        pass


class _TermTable:
    """One segment's term table (Whoosh's hash file of term -> term info), looked up in a memory map.

    Whoosh's reader seeks and reads the file four or five times per lookup
    and raises an exception for a term the segment does not have: 10 µs for
    a term found, 6 µs for one not found, against 3 and 1.6 µs here. A query
    looks each of its terms and their variants and readings up in every field
    of every segment (up to 1,500 lookups for a kana word split into readings).
    Same hash function, slots and probing as ``OrderedHashReader.ranges_for_key``.
    """

    def __init__(self, leaf):
        terms = leaf._terms  # whoosh-reloaded is pinned; tests compare this with Whoosh's term_info
        self._tindex = terms._tindex
        self._keycoder = terms._keycoder
        self._hash = key_hash_function(self._tindex)
        raw = self._tindex.dbfile.file
        # A segment written without a compound file is a plain file, read from its start.
        self._buffer = mmap.mmap(raw.fileno(), 0, access=mmap.ACCESS_READ) \
            if isinstance(raw, io.BufferedReader) else None

    def term_info(self, fieldname: str, tbytes: bytes) -> W3TermInfo | None:
        """The term's info in this segment (None if the segment does not have it)."""
        key = self._keycoder(fieldname, tbytes)
        value = self._tindex.get(key) if self._buffer is None else self._value(key)
        return None if value is None else W3TermInfo.from_bytes(value)

    def _value(self, key: bytes) -> bytes | None:
        tindex, buffer = self._tindex, self._buffer
        keyhash = self._hash(key)
        tablestart, numslots = tindex.tables[keyhash & 255]
        if not numslots:
            return None
        slot_size = _HASH_SLOT.size
        slotpos = tablestart + ((keyhash >> 8) % numslots) * slot_size
        tableend = tablestart + numslots * slot_size
        for _ in range(numslots):
            slothash, itempos = _HASH_SLOT.unpack_from(buffer, slotpos)
            if not itempos:
                return None
            if slothash == keyhash:
                keylen, datalen = _ENTRY_LENGTHS.unpack_from(buffer, itempos)
                keystart = itempos + _ENTRY_LENGTHS.size
                if keylen == len(key) and buffer[keystart:keystart + keylen] == key:
                    return buffer[keystart + keylen:keystart + keylen + datalen]
            slotpos += slot_size
            if slotpos == tableend:
                slotpos = tablestart
        return None

    def close(self) -> None:
        if self._buffer is not None:
            self._buffer.close()


# A folded word that may be written otherwise: Latin letters (case) or katakana (a final ー).
_FOLDED_AWAY = re.compile(r"[a-z]|^[\u30a0-\u30ff]{3,}$")


def _commonest_spelling(snap, term: str, titles: int = 2) -> str | None:
    """The commonest way the first titles with *term* write it, else the first body's; None if none does."""
    for fieldname, sample in (("title", titles), ("body", 1)):
        found: Counter = Counter()
        for docnum in _first_docs(snap, fieldname, term, sample):
            stored = snap.searcher.stored_fields(docnum)
            text = stored["meta"]["title"] if fieldname == "title" else stored.get("body", "")[:SCAN_CHARS * 4]
            spelling = _spelled_in(text, term)
            if spelling:
                found[spelling] += 1
        if found:
            return found.most_common(1)[0][0]  # ties: the first met
    return None


def _first_docs(snap, fieldname: str, term: str, count: int) -> list[int]:
    """The first *count* live documents with *term* in the field: only the first block of its postings is read."""
    field = snap.searcher.schema[fieldname]
    tbytes = field.to_bytes(term)
    docs: list[int] = []
    for (leaf, base), table in zip(snap.searcher.reader().leaf_readers(), snap.term_tables):
        info = table.term_info(fieldname, tbytes)
        if info is None:
            continue
        terms = leaf._terms  # as _segment_postings reads them
        m = terms._codec.postings_reader(terms._postfile, info, field.format)
        deleted = leaf.deleted_docs_set
        while m.is_active():
            if not deleted or m.id() not in deleted:
                docs.append(base + m.id())
                if len(docs) == count:
                    return docs
            m.next()
    return docs


def _spelled_in(text: str, term: str) -> str | None:
    """*term* as *text* writes it, where it is a word of its own there (java is not in JavaScript)."""
    normal = unicodedata.normalize("NFKC", text)  # Wi-Fi＋3G: Wi-Fi+3G, as the index saw it
    if len(normal) == len(text):
        text = normal
    lowered = text.lower()
    if len(lowered) != len(text):
        return None
    katakana = not term.isascii()
    i = lowered.find(term)
    while i >= 0:
        end = i + len(term)
        if katakana:
            while end < len(text) and text[end] == "ー":
                end += 1
            inside = (i and _script(text[i - 1]) == "katakana") or (end < len(text) and _script(text[end]) == "katakana")
        else:
            inside = (i and lowered[i - 1].isascii() and lowered[i - 1].isalnum()) or \
                     (end < len(text) and lowered[end].isascii() and lowered[end].isalnum())
        if not inside:
            return text[i:end]
        i = lowered.find(term, i + 1)
    return None


class _Lexicon:
    """The words of the fields suggest completes, and the readings of title words, with their document frequencies.

    Sorted as in the index, so that a prefix is a bisection instead of a walk
    through Whoosh's term index (two seeks and a decode per term). Variants
    (=) and readings (~) sort in blocks of their own and are left out of the
    words: no typed prefix but = or ~ reaches them, and those complete nothing.
    """

    FIELDS = ("title", "tags", "body")

    def __init__(self, reader, gen: Path):
        after_variants, after_readings = chr(ord(analysis.VARIANT) + 1), chr(ord(READING) + 1)
        word_ranges = [("", analysis.VARIANT), (after_variants, READING), (after_readings, None)]
        self.words = {f: _TermList(reader, f, word_ranges) for f in self.FIELDS}
        self.title_readings = _TermList(reader, "title", [(READING, after_readings)])
        self.compounds = _title_compounds(gen)
        live = {leaf.segment().segment_id() for leaf, _ in reader.leaf_readers()}
        for key in [k for k in _SEGMENT_TERMS if k[0] not in live]:  # merged away or an older generation's
            del _SEGMENT_TERMS[key]


def _title_compounds(gen: Path) -> "_TermList":
    """The compound words of titles (analysis.title_compounds) in at least two titles, with the
    number of titles: the build keeps each article's in the manifest, so no serving process
    runs MeCab over the titles."""
    try:
        manifest = json.loads((gen / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        manifest = {}
    total: Counter = Counter()
    for entry in manifest.values():
        if len(entry) > 4:  # an index built before compounds were kept has none
            total.update(entry[4])
    return _TermList.of({c: n for c, n in total.items() if n >= 2})


class _TermList:
    """Terms of a field from some ranges of its lexicon, in order, with their document frequencies.

    Held as one string and where each term ends in it: a list of str costs
    ~70 bytes a term more (the large corpus's word lists, 150,000 terms:
    14.1 MB traced as lists of str, 3.1 MB this way), in every serving process.
    """

    def __init__(self, reader, fieldname: str, ranges: list[tuple[str, str | None]]):
        self.terms = _Joined("", array("I"))
        self.frequencies = array("I")
        if reader is None or fieldname not in reader.schema:
            return
        frequencies: dict[bytes, int] = {}
        for leaf, _ in reader.leaf_readers():
            terms, dfs = _segment_terms(leaf, fieldname, ranges)
            for term, df in zip(terms, dfs):
                frequencies[term] = frequencies.get(term, 0) + df
        ordered = sorted(frequencies)
        self.frequencies.extend(map(frequencies.__getitem__, ordered))
        ends = array("I", accumulate(len(_text(term)) for term in ordered))
        self.terms = _Joined(_text(b"".join(ordered)), ends)

    @classmethod
    def of(cls, frequencies: dict[str, int]) -> "_TermList":
        """A list of these terms (not read from an index) with their frequencies."""
        made = cls(None, "", [])
        ordered = sorted(frequencies)
        made.frequencies.extend(map(frequencies.__getitem__, ordered))
        made.terms = _Joined("".join(ordered), array("I", accumulate(map(len, ordered))))
        return made

    def prefixed(self, prefix: str, limit: int) -> list[tuple[str, int]]:
        """The first *limit* terms that start with *prefix*, with their document frequencies."""
        terms, found = self.terms, []
        i = bisect_left(terms, prefix)  # str order is code point order, the index's UTF-8 byte order
        while i < len(terms) and len(found) < limit and (term := terms[i]).startswith(prefix):
            found.append((term, self.frequencies[i]))
            i += 1
        return found


class _Joined:
    """A sorted sequence of strings stored as their concatenation and the end of each (what bisect needs)."""

    __slots__ = ("ends", "text")

    def __init__(self, text: str, ends: array):
        self.text, self.ends = text, ends

    def __len__(self) -> int:
        return len(self.ends)

    def __getitem__(self, i: int) -> str:
        if not 0 <= i < len(self.ends):
            raise IndexError(i)
        return self.text[self.ends[i - 1] if i else 0:self.ends[i]]


_DF = struct.Struct("!I")  # a term's document frequency, 5 bytes into Whoosh 3's term info ("!BfIBBfII")


def _segment_terms(leaf, fieldname: str, ranges: list[tuple[str, str | None]]) -> tuple[list[bytes], array]:
    """The terms of *fieldname* in *ranges* in one segment, and their document frequencies.

    Read straight from the segment's term table: Whoosh's reader over
    several segments merges them term by term and decodes every term's
    full info (16 s for the large corpus in 9 segments, against 0.65 s
    here).  Segments never change, so what is read is kept for the next
    generation, which an update makes by adding a small segment: the word
    lists of the new generation then cost a merge (0.13 s on the large
    corpus), not a read of every segment.  What is kept is the terms joined
    by NUL into one bytes object: a list of bytes objects costs ~45 bytes a
    term more (15 MB of a serving worker's memory on the large corpus);
    splitting it again is one C call.  tests/test_searcher.py compares the
    result with Whoosh's iter_field.
    """
    segment = leaf.segment().segment_id()
    key = (segment, fieldname, tuple(ranges))
    found = _SEGMENT_TERMS.get(key)
    if found is not None:
        joined, dfs = found
        return joined.split(b"\0") if isinstance(joined, bytes) else joined, dfs
    table = leaf._terms._tindex  # whoosh-reloaded is pinned
    field = leaf._terms._keycoder(fieldname, b"")
    terms, dfs = [], array("I")
    for low, high in ranges:
        stop = field + high.encode("utf-8") if high is not None else None
        for name, info in table.items_from(field + low.encode("utf-8")):
            if not name.startswith(field) or (stop is not None and name >= stop):
                break
            terms.append(name[len(field):])
            dfs.append(_DF.unpack_from(info, 5)[0])
    joined = b"\0".join(terms)
    _SEGMENT_TERMS[key] = (joined if joined.count(b"\0") == len(terms) - 1 else terms), dfs
    return terms, dfs


# (segment id, field, ranges) -> (terms joined by NUL, or their list if a term has a NUL; frequencies)
_SEGMENT_TERMS: dict[tuple, tuple[bytes | list[bytes], array]] = {}


class _FacetField:
    """Facet values of one keyword field, case- and width-folded, with their documents."""

    def __init__(self, reader, fieldname: str):
        spellings: dict[str, Counter] = {}
        docs: dict[str, set[int]] = {}
        if fieldname in reader.schema:
            for term in reader.field_terms(fieldname):
                ids = set(reader.postings(fieldname, term).all_ids())
                if not ids:
                    continue
                key = facet_key(term)
                spellings.setdefault(key, Counter())[term] += len(ids)
                docs.setdefault(key, set()).update(ids)
        # Show the most common spelling; ties go to the alphabetically first one.
        self.display = {k: min(c.items(), key=lambda kv: (-kv[1], kv[0]))[0] for k, c in spellings.items()}
        self.docs = docs
        self.keys = list(docs)
        by_doc: list[tuple[int, ...]] = [()] * reader.doc_count_all()
        for i, ids in enumerate(docs.values()):
            for d in ids:
                by_doc[d] += (i,)
        self.by_doc = by_doc  # a list, not a dict: map() over its __getitem__ runs without a Python call per document

    def count(self, docnums) -> Counter:
        """How many of *docnums* have each value (by key index)."""
        return Counter(chain.from_iterable(map(self.by_doc.__getitem__, docnums)))


def facet_key(value: str) -> str:
    """Facet values that differ only in case or width are one value."""
    return unicodedata.normalize("NFKC", value).casefold().strip()


class Searcher:
    """Searches the index in *index_dir*; notices rebuilds and updates by itself."""

    def __init__(self, index_dir: str | os.PathLike, url_template: str = "/articles/{slug}/",
                 synonyms: str | os.PathLike | None = None, cache_size: int = 256, server: bool = False):
        """*server*: a long-running process (the web app); see :func:`_settle_garbage_collector`."""
        self.index_dir = Path(index_dir)
        self._server = server
        self.url_template = url_template
        self.synonyms = Synonyms(synonyms)
        # Whoosh readers share file handles (seek, then read): one search at a
        # time per process. Gunicorn's sync workers are single-threaded anyway.
        self._lock = threading.RLock()
        self._snapshot: _Snapshot | None = None
        self._stamp = None
        self._cache: OrderedDict = OrderedDict()
        self._cache_size = cache_size

    # -- index lifecycle --

    def _index_stamp(self):
        """Cheap fingerprint of the served index: CURRENT's content and its generation's folder."""
        try:
            name = (self.index_dir / CURRENT).read_text(encoding="utf-8").strip()
            st = os.stat(self.index_dir / name)
        except (OSError, ValueError):
            return None
        return name, st.st_mtime_ns, st.st_ino

    def snapshot(self) -> _Snapshot:
        """The current index, reopened if a build or update changed it.  Call with the lock held."""
        stamp = self._index_stamp()
        with self._lock:
            if self._snapshot is not None and stamp == self._stamp:
                return self._snapshot
            try:
                new = _Snapshot(self.index_dir)
            except IndexMissing:
                if self._snapshot is not None and stamp is not None:
                    return self._snapshot  # mid-switch: keep serving what we have
                raise
            if self._snapshot is not None:
                self._snapshot.close()  # nobody else reads it: every read holds the lock
            self._snapshot, self._stamp = new, stamp
            self._cache.clear()
            if self._server:
                _settle_garbage_collector()
            return new

    def close(self) -> None:
        """Close the open index files."""
        with self._lock:
            if self._snapshot is not None:
                self._snapshot.close()
            self._snapshot = self._stamp = None

    def warm(self) -> None:
        """Open the index and read what the first search and suggestion would (a server, at start).

        Else the first suggestion a worker answers reads the lexicon (~0.4 s on
        the large corpus) and the first search the field lengths.
        """
        with self._lock:
            try:
                snap = self.snapshot()
            except IndexMissing:
                return  # answered as such when asked
            snap.lexicon()
            snap.common_latin()
            for fieldname in FIELD_WEIGHTS:
                snap.length_norms(fieldname)
            snap.recency()

    def health(self) -> dict:
        """Documents, generation and build time of the served index (IndexMissing if none)."""
        with self._lock:
            snap = self.snapshot()
            return {"status": "ok", "documents": snap.doc_count, "generation": snap.generation,
                    "built_at": snap.info.get("built_at")}

    def all_tags(self) -> list["FacetValue"]:
        """Every tag (case variants merged) with its number of articles, most used first."""
        with self._lock:
            snap = self.snapshot()
        values = [FacetValue(snap.tags.display[k], len(snap.tags.docs[k] & snap.live), False) for k in snap.tags.keys]
        return sorted((v for v in values if v.count), key=lambda v: (-v.count, v.value))

    def suggest(self, q: str, limit: int = 8) -> list[dict]:
        """Completions of the last word of *q*: tags, title words, then body words.

        A kana prefix also completes through the indexed readings, so that
        hiragana typed before IME conversion (とうきょ) offers 東京.
        """
        with self._lock:
            return self._completions(self.snapshot(), q, limit)

    def _completions(self, snap, q: str, limit: int) -> list[dict]:
        text = clean_query(q)
        if not text or q[-1:].isspace():
            return []  # a word finished with a space: the next one is not begun
        head, _, last = text.rpartition(" ")
        head = head + " " if head else ""
        found = self._completions_of(snap, head, last, limit)
        if not found:
            # Japanese is typed without spaces (JavaScriptのテス, Firefoxアド): complete the analyzer's
            # last word of it, where a word plainly ends before it: after a particle, or where the
            # script changes (not inside スマートフォン, read スマート|フォン: not スマートフォント).
            # Nothing is begun after a particle (JavaScriptの); a lone ア or 新 is read as a symbol.
            units = analysis.units(last)
            if len(units) > 1 and (not units[-1].stop or units[-1].pos == "記号" and units[-1].text.isalpha()):
                start = units[-1].start
                if units[-2].stop or _script(last[start - 1]) != _script(last[start]):
                    found = self._completions_of(snap, head + last[:start], last[start:], limit)
        return found

    def _completions_of(self, snap, head: str, last: str, limit: int) -> list[dict]:
        """Completions of the word *last* typed after *head*."""
        prefix = fold(last)
        if not prefix:
            return []
        # ろぼ also completes ロボット, ついったー ツイッタ (folded as the index folds katakana: no final ー)
        prefixes = {prefix, fold(to_katakana(prefix))} if is_kana(last) else {prefix}
        seen: dict[str, tuple] = {}

        def add(word: str, kind: str, weight: float):
            key = word.lower()
            if kind == "word" and _is_hiragana(word):
                if word[-1] == "っ":
                    return  # the stem of an inflected verb (なっ, しまっ), not a word to complete to
                weight *= HIRAGANA_WORD_WEIGHT  # mostly inflections and function words (ない, しれ)
            if key not in seen or seen[key][0] < weight:
                if key in seen and seen[key][2] == "tag":  # a tag that is also a word: as the tag is written
                    word, kind = seen[key][1:]
                seen[key] = (weight, word, kind)

        for key in snap.tags.keys:
            if key.startswith(prefix) and len(key) <= MAX_SUGGESTED_TAG:  # not a headline used as a tag
                add(snap.tags.display[key], "tag", 1000.0 + len(snap.tags.docs[key]))
        lexicon = snap.lexicon()
        for fieldname, weight in (("title", 10.0), ("tags", 10.0), ("body", 1.0)):
            for start in prefixes:
                for term, df in lexicon.words[fieldname].prefixed(start, 200):
                    add(term, "word", weight * df)
        for start in prefixes:
            for compound, df in lexicon.compounds.prefixed(start, 100):
                add(compound, "word", 10.0 * df)
        if _is_hiragana(last):  # kana typed before conversion; katakana typed is the word itself (サッカー)
            for word, df in self._complete_reading(snap, fold(to_katakana(last))):
                add(word, "word", 5.0 * df)
        ranked, joined = [], set()
        for _, word, kind in sorted(seen.values(), key=lambda v: (-v[0], v[1])):
            key = analysis.joined_form(word.lower()) or word.lower()
            if key not in joined:  # nextjs, indexed beside next.js (analysis.joined_form), is the same word
                joined.add(key)
                ranked.append((word, kind))
                if len(ranked) == limit + 1:
                    break
        shown = [(self._shown_as(snap, word) if kind == "word" else word, kind) for word, kind in ranked]
        # Not the word as typed; but ロボット for ろぼっと, and サッカー for サッカ (indexed folded as サッカ):
        # how it is written is the suggestion.
        typed = unicodedata.normalize("NFKC", last).lower()
        shown = [(word, kind) for word, kind in shown if word.lower() != typed]
        if typed.endswith("ー") and not _is_hiragana(typed):  # サッカー, searched as サッカ: not サッカリン
            shown = [(word, kind) for word, kind in shown if word.lower().startswith(typed)]
        shown = shown[:limit]
        return [{"text": head + word, "word": word, "kind": kind} for word, kind in shown]

    @staticmethod
    def _shown_as(snap, term: str) -> str:
        """How the articles write a word the index holds folded: javascript is shown as JavaScript,
        next.js as Next.js, ツイッタ as ツイッター (the final ー folded away).

        The commonest spelling in the first titles that have the word, else in
        the first body; the folded word when neither shows it plainly.
        """
        if not _FOLDED_AWAY.search(term):
            return term  # folding changed nothing that can be seen (most Japanese words)
        tag = snap.tags.display.get(facet_key(term))
        if tag is not None:
            return tag  # GitHub, as the tags write it (a title may write Github)
        spellings = snap.spellings
        shown = spellings.get(term)
        if shown is None:
            if len(spellings) >= 50_000:
                spellings.clear()
            shown = spellings[term] = _commonest_spelling(snap, term) or term
        return shown

    def _complete_reading(self, snap, kana: str, limit: int = 5) -> list[tuple[str, float]]:
        """Written forms of title words whose reading starts with *kana*, most frequent first."""
        candidates = sorted(snap.lexicon().title_readings.prefixed(READING + kana, 50), key=lambda c: -c[1])
        found: list[tuple[str, float]] = []
        for term, df in candidates:  # the most frequent first: titles are analysed only until *limit* are found
            forms = snap.written.get(term)
            if forms is None:
                if len(snap.written) >= 50_000:
                    snap.written.clear()
                forms = snap.written[term] = self._written_forms(snap, term)
            found += ((written, df * share) for written, share in forms)
            if len(found) >= limit:
                break
        return found

    @staticmethod
    def _written_forms(snap, reading_term: str, sample: int = 3) -> list[tuple[str, float]]:
        """How titles with the reading term write the word, each with its share of *sample* titles
        spread over them (ケイタイ: 携帯 and 形態); empty if MeCab reads them otherwise now."""
        ids = _first_docs(snap, "title", reading_term, 1_000)
        if not ids:
            return []
        picked = sorted({ids[i * (len(ids) - 1) // max(1, sample - 1)] for i in range(sample)})
        forms: Counter = Counter()
        for docnum in picked:
            title = snap.searcher.stored_fields(docnum)["meta"]["title"]
            for unit in analysis.units(title):
                if unit.reading == reading_term[1:]:
                    forms[title[unit.start:unit.end]] += 1
                    break
        return [(form, count / len(picked)) for form, count in forms.most_common()]

    # -- searching --

    def search(self, q: str = "", tags=(), content_type: str | None = None, date_from=None, date_to=None,
               sort: str = "relevance", page: int = 1, per_page: int = 10) -> SearchResult:
        """Run a search; raise QueryError for parameters that make no sense."""
        started = time.perf_counter()
        q = q or ""
        if len(q) > MAX_QUERY_LENGTH:
            raise QueryError(f"q is too long ({len(q)} characters; the limit is {MAX_QUERY_LENGTH})")
        if sort not in SORTS:
            raise QueryError(f"sort must be one of {', '.join(SORTS)}, not {sort!r}")
        if not isinstance(page, int) or not 1 <= page <= MAX_PAGE:
            raise QueryError(f"page must be a whole number from 1 to {MAX_PAGE}")
        if not isinstance(per_page, int) or not 1 <= per_page <= MAX_PER_PAGE:
            raise QueryError(f"per_page must be a whole number from 1 to {MAX_PER_PAGE}")
        tags = tuple(t for t in (tags or ()) if t and t.strip())
        day_from, day_to = _day(date_from, "from"), _day(date_to, "to")
        if day_from is not None and day_to is not None and day_from > day_to:
            raise QueryError("the from date is after the to date")
        with self._lock:
            snap = self.snapshot()
            key = (snap.generation, q, tags, content_type, day_from, day_to, sort, page, per_page)
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return _with_time(cached, started)
            result = self._search(snap, q, tags, content_type, day_from, day_to, sort, page, per_page)
            self._cache[key] = result
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return _with_time(result, started)

    def _search(self, snap, q, tags, content_type, day_from, day_to, sort, page, per_page) -> SearchResult:
        parsed = parse_query(q)
        allowed = _filter_docs(snap, tags, content_type, day_from, day_to)
        postings = _Postings(snap)
        builder = _QueryBuilder(snap.searcher, self.synonyms, postings=postings)
        whoosh_query = builder.build(parsed)
        relaxed = timed_out = False
        needed = page * per_page
        if whoosh_query is None:
            if parsed.clauses:  # words that are all stop words or symbols: nothing to find
                matched = set()
            else:  # browse: no words, filters only, and the articles -excluded words leave out
                matched = set(snap.live) if allowed is None else set(allowed)
                excluded = builder.excluded(parsed)
                if excluded is not None:
                    matched -= self._matches(snap, postings, excluded, allowed)
                sort = "date"
            scores = {}
        else:
            matched, scores, timed_out = self._run(snap, postings, whoosh_query, allowed, needed)
            if len(matched) < FEW_RESULTS:
                extra = self._most_words(snap, postings, parsed, allowed, matched, needed)
                if extra is not None:
                    # Articles with all the words first, then by how many they have.
                    extra_matched, extra_scores = extra
                    top = max(extra_scores.values(), default=0.0)
                    scores = {d: s + top for d, s in scores.items()}
                    scores.update(extra_scores)
                    matched = matched | extra_matched
                    relaxed = bool(extra_matched)
                elif not matched and builder.has_compounds:
                    relaxed_query = _QueryBuilder(snap.searcher, self.synonyms, phrases=False,
                                                  postings=postings).build(parsed)
                    matched, scores, timed_out = self._run(snap, postings, relaxed_query, allowed, needed)
                    relaxed = bool(matched)
        total = len(matched)
        if sort == "date":
            ranked = sorted(matched, key=lambda d: (-snap.days[d], d))[:needed]
            scores = {d: 0.0 for d in ranked}
        else:
            ranked = sorted(scores, key=lambda d: (-scores[d], -snap.days[d], d))
        page_docs = ranked[(page - 1) * per_page:needed]
        marker = _Marker(builder.highlight_terms, builder.needles, builder.words)
        in_body = [postings.docs("body", term) for term in builder.highlight_terms]
        hits = [self._hit(snap, d, scores[d], marker, any(d in docs for docs in in_body)) for d in page_docs]
        facets = {
            "tags": _facet_values(snap.tags, matched, tags),
            "contentType": _facet_values(snap.types, matched, [content_type] if content_type else []),
            "relatedProducts": _facet_values(snap.products, matched, []),
        }
        suggestion = None
        if total <= RARE_WORD and parsed.clauses:
            suggestion = self._suggest(snap, postings, parsed, allowed, found=total)
        return SearchResult(query=q, total=total, page=page, per_page=per_page, took_ms=0.0, hits=hits,
                            facets=facets, suggestion=suggestion, relaxed=relaxed, timed_out=timed_out)

    def _matches(self, snap, postings: "_Postings", whoosh_query, allowed) -> set[int]:
        """Every matching live document (for exclusions and suggestions)."""
        docs = set(_Scorer(snap, postings).scores(whoosh_query))
        return docs if allowed is None else docs & allowed

    def _most_words(self, snap, postings: "_Postings", parsed: ParsedQuery, allowed, matched: set[int],
                    needed: int):
        """Articles with most (60%) of the query's words, for questions typed as sentences.

        "Firefoxの起動を速くする方法" should find the article about making
        Firefox start faster even if it never says 方法.  Ranked by how many
        of the words an article has, then by score.  None when the query has
        too few words (or a quoted phrase) for this to apply.
        """
        builder = _QueryBuilder(snap.searcher, self.synonyms, phrases=False, postings=postings)
        units, excluded = builder.loose_units(parsed)
        if len(units) < MOST_WORDS_MIN_UNITS:
            return None
        need = max(2, math.ceil(len(units) * MOST_WORDS_SHARE))
        # The light verb する (and its forms) is taken as in every article (on the large corpus
        # it is in 98.7%): reading its posting lists took 19 of the 23 ms of 電池が長持ちする
        # スマートフォン, and as a scored word it says nothing of the topic.
        topical = [unit for unit in units if not _is_light_verb(unit)] or units
        need -= len(units) - len(topical)
        units = topical
        # Counted from the terms' posting lists: one Whoosh query per unit costs far more.
        unit_docs = (builder.unit_docs(unit) for unit in units)
        counts = Counter(chain.from_iterable(docs if allowed is None else docs & allowed for docs in unit_docs))
        if excluded is not None:
            for d in self._matches(snap, postings, excluded, allowed):
                counts.pop(d, None)
        candidates = {d for d, n in counts.items() if n >= need} - matched
        if not candidates:
            return set(), {}
        unit_queries = (_any_or_nothing(builder._field_slots(unit)) for unit in units)
        live = [q for q in unit_queries if q is not wq.NullQuery]
        # The order of the first pages, made the same for every page: the candidates in
        # blocks of RELAXED_BLOCK by number of words, then document number; in a block,
        # groups of RERANK_WINDOW by score; in a group, by number of words, then score.
        # (The cuts used to grow with the page wanted, so deep pages repeated and skipped
        # articles. Ranking all the candidates with the most words by score instead
        # ranked the relevance set worse, nDCG@10 0.8867 -> 0.8767: BM25 over the words an
        # article has ranks the articles missing some poorly.)
        window = max(needed, RERANK_WINDOW)
        ordered = sorted(candidates, key=lambda d: (-counts[d], d))
        block = {d: i // RELAXED_BLOCK for i, d in
                 enumerate(ordered[:math.ceil(window / RELAXED_BLOCK) * RELAXED_BLOCK])}
        raw = _Scorer(snap, postings).scores(wq.Or(live), set(block))
        group, seen = {}, Counter()
        for d in sorted(raw, key=lambda d: (block[d], -raw[d], d)):
            group[d] = seen[block[d]] // RERANK_WINDOW
            seen[block[d]] += 1
        boost = snap.recency()
        final = {d: score * boost[d] for d, score in raw.items()}
        best = heapq.nsmallest(window, final, key=lambda d: (block[d], group[d], -counts[d], -final[d], d))
        top = max(final.values(), default=0.0) + 1.0
        return candidates, {d: (len(best) - i) * top + final[d] for i, d in enumerate(best)}  # in that order

    def _run(self, snap, postings: "_Postings", whoosh_query, allowed,
             needed: int) -> tuple[set[int], dict[int, float], bool]:
        """Every match (exact total and facets) and the best scored, with whether time ran out.

        Scored from the posting lists of the query's terms as Whoosh's BM25F
        scorer would, without its matchers: they cost several times more per
        posting, and its collector silently drops words that can no longer
        reach the top N, which made totals and facets too small.
        """
        scorer = _Scorer(snap, postings, deadline=time.perf_counter() + SEARCH_TIME_LIMIT)
        raw = scorer.scores(whoosh_query, allowed)
        return set(raw), _top(snap, raw, needed), scorer.timed_out

    def _hit(self, snap, docnum: int, score: float, marker: "_Marker", body_matched: bool) -> Hit:
        stored = snap.searcher.stored_fields(docnum)
        meta = stored["meta"]
        snippet_html, snippet_text = marker.snippet(stored.get("body", ""), body_matched) if marker.active \
            else ("", "")
        if not snippet_html:
            lead = (meta.get("description") or stored.get("body", ""))[:SNIPPET_CHARS]
            snippet_html, snippet_text = html.escape(lead), lead
        title = meta["title"]
        return Hit(
            slug=meta["slug"],
            url=self.url_template.format(slug=meta["slug"]),
            title=title,
            title_html=marker.mark_title(title) if marker.active else html.escape(title),
            date=meta.get("date"),
            tags=meta.get("tags", []),
            contentType=meta.get("contentType", ""),
            description=meta.get("description", ""),
            image=meta.get("image", ""),
            snippet=snippet_html,
            snippet_text=snippet_text,
            score=round(score, 4),
            readTime=meta.get("readTime"),
            featured=bool(meta.get("featured")),
        )

    def _suggest(self, snap, postings: "_Postings", parsed: ParsedQuery, allowed, found: int = 0) -> str | None:
        """A query to offer when nothing (or next to nothing: *found*) was found: spelling fixed,
        else (for nothing) fewer words.

        A misspelling that some article shares (typescirpt: 1 article) found
        that article and nothing else; a word in at most RARE_WORD articles
        with a word one edit or swap away in RARE_WORD_RATIO times as many is
        offered corrected too.
        """
        reader = snap.searcher.reader()
        changed = False

        def frequency(term: str) -> int:
            return max(postings.doc_frequency(f, term) for f in FIELD_WEIGHTS)

        def fixed(word: Word) -> Word:
            nonlocal changed
            text = word.text
            if word.phrase or not re.fullmatch(r"[A-Za-z][A-Za-z0-9.\-#+]{2,}", text):
                return word
            folded = fold(text)
            known = frequency(folded)
            if known > (RARE_WORD if found else 0) or known and len(folded) < 5:
                return word  # a short rare word is more likely a name than a typo: zig, nim, swc, lit
            # A word no article has: the commonest within two edits (Whoosh, ~15 ms). One that some
            # have: a common word one edit or swap away (a lookup per edit; two edits took 80 ms).
            better = _one_edit_away(snap.common_latin(), folded) if known else _spelling(reader, folded)
            if better and frequency(better) >= max(1, known * RARE_WORD_RATIO):
                changed = True
                return Word(self._shown_as(snap, better))  # JavaScript for javasript
            return word

        spelt = ParsedQuery([[fixed(w) for w in clause] for clause in parsed.clauses],
                            [fixed(w) for w in parsed.excluded])
        if changed:
            return _query_text(spelt)  # the operators kept: javascrpt -テスト, Fierfox OR Chrme
        if found:
            return None
        clauses = parsed.clauses
        if len(clauses) > 1:
            builder = _QueryBuilder(snap.searcher, self.synonyms, postings=postings)
            kept = []
            for clause in clauses:
                single = builder.build(ParsedQuery([clause]))
                if single is not None and self._matches(snap, postings, single, allowed):
                    kept.append(clause)
            if kept and len(kept) < len(clauses):
                return _query_text(ParsedQuery(kept, parsed.excluded))
        return None


def _query_text(parsed: ParsedQuery) -> str:
    """*parsed* written back as a query: words, "phrases", OR between alternatives, -excluded."""
    def written(word: Word) -> str:
        return f'"{word.text}"' if word.phrase else word.text

    return " ".join([" OR ".join(map(written, clause)) for clause in parsed.clauses] +
                    ["-" + written(word) for word in parsed.excluded])


def _text(term) -> str:
    """Whoosh hands lexicon terms back as UTF-8 bytes."""
    return term.decode("utf-8") if isinstance(term, bytes) else term


def _top(snap, raw: dict[int, float], needed: int) -> dict[int, float]:
    """The best documents by score with the recency tie-breaker (ties to the lower document number).

    Chosen by that final score among all of *raw*: choosing the best raw
    scores first and applying recency to those only made the order depend on
    how many were wanted, so deep pages repeated one article and skipped
    another (取り扱い, 7 a page on the large corpus: 276 hits, 256 distinct).
    """
    boost = snap.recency()
    best = heapq.nsmallest(max(needed, RERANK_WINDOW), raw, key=lambda d: (-(raw[d] * boost[d]), d))
    return {d: raw[d] * boost[d] for d in best}


def _with_time(result: SearchResult, started: float) -> SearchResult:
    copy = SearchResult(**{f: getattr(result, f) for f in result.__dataclass_fields__})
    copy.took_ms = round((time.perf_counter() - started) * 1000, 2)
    return copy


def _day(value, name: str) -> int | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime):
        return value.date().toordinal()
    if isinstance(value, dt.date):
        return value.toordinal()
    try:
        return dt.date.fromisoformat(str(value)).toordinal()
    except ValueError:
        raise QueryError(f"{name} must be a date like 2026-02-19, not {str(value)[:40]!r}") from None


def _filter_docs(snap, tags, content_type, day_from, day_to) -> set[int] | None:
    """The documents the filters allow, or None when there are no filters."""
    allowed = None
    for tag in tags:
        docs = snap.tags.docs.get(facet_key(tag), set())
        allowed = set(docs) if allowed is None else allowed & docs
    if content_type:
        docs = snap.types.docs.get(facet_key(content_type), set())
        allowed = set(docs) if allowed is None else allowed & docs
    if day_from is not None or day_to is not None:
        lo = day_from if day_from is not None else -(2**31)
        hi = day_to if day_to is not None else 2**31
        pool = allowed if allowed is not None else snap.live
        allowed = {d for d in pool if snap.days[d] and lo <= snap.days[d] <= hi}
    return allowed


def _facet_values(facet: _FacetField, matched: set[int], selected) -> list[FacetValue]:
    chosen = {facet_key(s) for s in selected}
    counts = facet.count(matched)
    values = [FacetValue(facet.display[facet.keys[i]], n, facet.keys[i] in chosen) for i, n in counts.items()]
    values.sort(key=lambda v: (-v.count, v.value))
    shown = values[:FACET_LIMIT]
    shown += [v for v in values[FACET_LIMIT:] if v.selected]
    return shown


def _one_edit_away(common: dict[str, int], word: str) -> str | None:
    """The commonest word of *common* one deletion, insertion, substitution or swap of
    neighbours away from *word* (typescirpt: typescript)."""
    letters = "abcdefghijklmnopqrstuvwxyz0123456789"
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    edits = {a + b[1:] for a, b in splits if b}
    edits.update(a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1)
    edits.update(a + c + b[1:] for a, b in splits if b for c in letters)
    edits.update(a + c + b for a, b in splits for c in letters)
    edits.discard(word)
    found = [(common[e], e) for e in edits if e in common]
    return max(found)[1] if found else None


def _spelling(reader, word: str) -> str | None:
    """The most frequent indexed word within two edits of *word* (not *word* itself)."""
    best = None
    for maxdist in (1, 2):
        for fieldname in ("title", "body"):
            for candidate in reader.terms_within(fieldname, word, maxdist, prefix=1):
                if candidate[:1] in (analysis.VARIANT, READING) or not candidate.isascii() or candidate == word:
                    continue
                freq = reader.doc_frequency(fieldname, candidate)
                if best is None or freq > best[0]:
                    best = (freq, candidate)
        if best:
            return best[1]
    return None


# --- building Whoosh queries ------------------------------------------------------------------


class _QueryBuilder:
    """Turns parsed words into Whoosh queries through the shared analyzer."""

    def __init__(self, searcher, synonyms: Synonyms, postings: "_Postings", phrases: bool = True):
        self.reader = searcher.reader()
        self.postings = postings
        self.synonyms = synonyms
        self.phrases = phrases
        self.has_compounds = False
        self.highlight_terms: set[str] = set()
        self.needles: set[str] = set()
        self.words: set[str] = set()  # the needles that are whole words (not a verb's stem)

    def build(self, parsed: ParsedQuery):
        clauses = []
        for clause in parsed.clauses[:MAX_WORDS]:
            alts = [q for q in (self.word(w) for w in clause) if q is not None]
            if alts:
                clauses.append(alts[0] if len(alts) == 1 else wq.Or(alts))
        if not clauses:
            return None
        main = clauses[0] if len(clauses) == 1 else wq.And(clauses)
        excluded = self.excluded(parsed)
        return main if excluded is None else wq.AndNot(main, excluded)

    def excluded(self, parsed: ParsedQuery):
        """A query for the -excluded words (None if there are none, or none the analyzer keeps)."""
        excluded = [q for q in (self.word(w, highlight=False) for w in parsed.excluded[:MAX_WORDS]) if q is not None]
        return _any_or_nothing(excluded) if excluded else None

    def loose_units(self, parsed: ParsedQuery) -> tuple[list[Unit], object]:
        """The analysed units of the (non-OR) words, to be matched one by one; and the exclusions."""
        if any(w.phrase for w in parsed.words()):
            return [], None  # a quoted phrase is an explicit demand: never loosen it
        units = [unit for clause in parsed.clauses[:MAX_WORDS] if len(clause) == 1
                 for unit in query_units(clause[0].text)]
        return units, self.excluded(parsed)

    def unit_docs(self, unit: Unit) -> set[int]:
        """Documents with any alternative of the unit in any field: what ``_field_slots`` matches."""
        docs: set[int] = set()
        for fieldname in FIELD_WEIGHTS:
            for alt in alternatives(unit):
                docs |= self.postings.docs(fieldname, alt.term)
        return docs

    def word(self, word: Word, highlight: bool = True):
        """A query for one typed word: its analysed units, plus synonyms and readings."""
        units, written = query_units(word.text), word.text
        if not (word.phrase or _is_hiragana(word.text)):  # MeCab misreads hiragana: でんししょせき is で|し|せき
            units = _topic_units(units)
        elif not word.phrase:
            units, written = self._loanword(word.text, units)
        options = [(self._units_query(units, word.phrase, highlight), 1.0)]
        if len(units) == 1 and units[0].pos == "tech" and (spaced := analysis.spaced_version(units[0].text)):
            options.append((self._units_query(query_units(spaced), True, highlight), 1.0))  # Android4.0
        if not word.phrase:
            for synonym in self.synonyms.expand(written):
                options.append((self._units_query(query_units(synonym), True, highlight), KIND_WEIGHTS["synonym"]))
            if is_kana(word.text):
                options.append((self._reading_query(word.text, highlight), 1.0))
        queries = [q if weight == 1.0 else _boosted(q, weight) for q, weight in options if q is not None]
        if not queries:
            return None
        return queries[0] if len(queries) == 1 else wq.Or(queries)

    def _loanword(self, text: str, units: list[Unit]) -> tuple[list[Unit], str]:
        """Hiragana typed for a katakana word (ついったー, すまほ, ぐーぐる, before IME conversion): its
        units and the word (for synonyms: ツイッター = Twitter); else *units* and *text* as they are.

        MeCab splits such hiragana into scraps (ついったー: only いっ is left
        once particles go), which matched 9,431 unrelated articles of the
        large corpus. A word MeCab reads whole (すごい, とうきょう) is kept.
        """
        if [unit.text for unit in units] == [fold(text)]:
            return units, text
        written = to_katakana(text)
        katakana = query_units(written)
        if katakana and all(any(self._indexed(f, unit.text) for f in FIELD_WEIGHTS) for unit in katakana):
            return katakana, written
        return units, text

    def _units_query(self, units: list[Unit], phrase: bool, highlight: bool):
        if not units:
            return None
        if highlight:
            for unit in units:
                self.needles.add(_stem(unit.text))
                self.needles.update(_stem(v) for v in unit.variants)
                self.words.update(w for w in (unit.text, *unit.variants) if _stem(w) == w)
                self.highlight_terms.update(a.term for a in alternatives(unit))
        if len(units) > 1:
            self.has_compounds = self.has_compounds or not phrase
        if len(units) > 1 and not (phrase or self.phrases):
            # Relaxed: every unit somewhere in the article, in any field.
            return _all_or_nothing([_any_or_nothing(self._field_slots(unit)) for unit in units])
        per_field = []
        for fieldname, weight in FIELD_WEIGHTS.items():
            slots = [self._unit_terms(fieldname, unit, weight) for unit in units]
            if None in slots:
                continue  # a unit missing from this field: no phrase or single-word match here
            per_field.append(slots[0] if len(slots) == 1 else wq.Sequence(slots, slop=1))
        return _any_or_nothing(per_field)

    def _field_slots(self, unit: Unit) -> list:
        slots = (self._unit_terms(f, unit, w) for f, w in FIELD_WEIGHTS.items())
        return [slot for slot in slots if slot is not None]

    def _unit_terms(self, fieldname: str, unit: Unit, weight: float):
        """The alternatives of a unit that occur in the field (None if none does)."""
        terms = [wq.Term(fieldname, a.term, boost=weight * KIND_WEIGHTS[a.kind])
                 for a in alternatives(unit) if self._indexed(fieldname, a.term)]
        if not terms:
            return None
        return terms[0] if len(terms) == 1 else wq.Or(terms)

    def _indexed(self, fieldname: str, term: str) -> bool:
        return self.postings.doc_frequency(fieldname, term) > 0

    def _reading_query(self, text: str, highlight: bool):
        """Kana typed for a word written in kanji: match the indexed readings.

        MeCab mis-segments hiragana strings, so the whole kana string is matched
        against readings, split into the fewest indexed readings if needed; when
        several splits are as short (セイジカ: セイ|ジカ and セイジ|カ), any of them.
        """
        kana = fold(to_katakana(text))
        splits = self._split_reading(kana)
        if not splits:
            return None
        options = []
        for pieces in splits:
            terms = [READING + p for p in pieces]
            if highlight:
                self.highlight_terms.update(terms)
            per_field = []
            for fieldname, weight in FIELD_WEIGHTS.items():
                if not all(self._indexed(fieldname, t) for t in terms):
                    continue  # like written forms: a field without every piece cannot match
                slots = [wq.Term(fieldname, t, boost=weight * KIND_WEIGHTS["reading"]) for t in terms]
                per_field.append(slots[0] if len(slots) == 1 else wq.Sequence(slots, slop=1))
            if per_field:
                options.append(_any_or_nothing(per_field))
        return _any_or_nothing(options)

    def _split_reading(self, kana: str, most: int = 4) -> list[list[str]]:
        """The splits of *kana* into the fewest pieces that are all indexed readings (dynamic
        programming), at most *most* of them; none if there is no such split."""
        n = len(kana)
        if n > 24:
            return []
        known = {}

        def indexed(piece):
            if piece not in known:
                known[piece] = any(self.postings.doc_frequency(f, READING + piece) for f in FIELD_WEIGHTS)
            return known[piece]

        best: list[list[list[str]]] = [[] for _ in range(n + 1)]  # the shortest splits of kana[:i]
        best[0] = [[]]
        for end in range(1, n + 1):
            for start in range(end):
                if best[start] and indexed(kana[start:end]):
                    length = len(best[start][0]) + 1
                    if not best[end] or length < len(best[end][0]):
                        best[end] = []
                    if not best[end] or length == len(best[end][0]):
                        best[end] += [split + [kana[start:end]] for split in best[start]][:most - len(best[end])]
        return best[n]


class _Postings:
    """The posting lists a search reads, each read once: documents, term frequencies, phrases."""

    def __init__(self, snap: _Snapshot):
        self.reader = snap.searcher.reader()
        self._segments = [(leaf, base, table) for (leaf, base), table in zip(self.reader.leaf_readers(),
                                                                              snap.term_tables)]
        self._infos: dict[tuple[str, str], list[tuple]] = {}
        self._lists: dict[tuple[str, str], tuple[list[int], list[float], list[bytes]]] = {}
        self._weights: dict[tuple[str, str], dict[int, float]] = {}
        self._docs: dict[tuple[str, str], frozenset[int]] = {}
        self._phrases: dict[tuple, frozenset[int]] = {}

    def _term_infos(self, fieldname: str, term: str) -> list[tuple]:
        """(segment reader, first document number, term info) of each segment with the term.

        One term-table lookup per segment, for the document frequency and the
        postings both; Whoosh's reader looks a term up three times on its way
        to the postings (doc_frequency, ``in``, postings).
        """
        key = (fieldname, term)
        found = self._infos.get(key)
        if found is None:
            found = self._infos[key] = []
            if fieldname in self.reader.schema:
                tbytes = self.reader.schema[fieldname].to_bytes(term)
                for leaf, base, table in self._segments:
                    info = table.term_info(fieldname, tbytes)
                    if info is not None:
                        found.append((leaf, base, info))
        return found

    def doc_frequency(self, fieldname: str, term: str) -> int:
        """In how many documents the field has the term, deleted ones included, as Whoosh counts."""
        return sum(info.doc_frequency() for _, _, info in self._term_infos(fieldname, term))

    def lists(self, fieldname: str, term: str) -> tuple[list[int], list[float], list[bytes]]:
        """Document numbers (ascending), term frequencies and encoded values of the live postings of a term."""
        key = (fieldname, term)
        found = self._lists.get(key)
        if found is None:
            ids: list[int] = []
            weights: list[float] = []
            values: list[bytes] = []
            format_ = self.reader.schema[fieldname].format if fieldname in self.reader.schema else None
            for leaf, base, info in self._term_infos(fieldname, term):
                leaf_ids, leaf_weights, leaf_values = _segment_postings(leaf, info, format_)
                deleted = leaf.deleted_docs_set
                if deleted:
                    kept = [i for i, d in enumerate(leaf_ids) if d not in deleted]
                    leaf_ids = [leaf_ids[i] for i in kept]
                    leaf_weights = [leaf_weights[i] for i in kept]
                    leaf_values = [leaf_values[i] for i in kept]
                ids.extend([base + d for d in leaf_ids] if base else leaf_ids)
                weights.extend(leaf_weights)
                values.extend(leaf_values)
            found = self._lists[key] = ids, weights, values
        return found

    def weights(self, fieldname: str, term: str) -> dict[int, float]:
        """Each live document with the term in the field, and the term's frequency there."""
        key = (fieldname, term)
        found = self._weights.get(key)
        if found is None:
            ids, weights, _ = self.lists(fieldname, term)
            found = self._weights[key] = dict(zip(ids, weights))
        return found

    def docs(self, fieldname: str, term: str) -> frozenset[int]:
        key = (fieldname, term)
        docs = self._docs.get(key)
        if docs is None:
            docs = self._docs[key] = frozenset(self.lists(fieldname, term)[0])
        return docs

    def phrase_docs(self, fieldname: str, slots: list[list[str]], within: set[int] | None = None) -> set[int]:
        """Documents (of *within*, if given) with a term of each slot at consecutive positions in the field.

        What Whoosh's ``Sequence(slop=1)`` matches, found without its span
        matchers. Positions are decoded only for documents with every slot
        and, when the phrase is part of a larger query, only for those the
        rest of it allows; a document is checked once per search.
        """
        key = (fieldname, tuple(tuple(terms) for terms in slots))
        phrase = self._phrases.get(key)
        if phrase is None:
            slots = [[t for t in terms if self.docs(fieldname, t)] for terms in slots]
            phrase = self._phrases[key] = _Phrase([[self.lists(fieldname, t) for t in terms] for terms in slots])
        return phrase.matches(within)


class _Phrase:
    """The documents that have a phrase, checked from the positions of its slots' terms as they are asked for."""

    def __init__(self, slots: list[list[tuple[list[int], list, list[bytes]]]]):
        slot_docs = [frozenset().union(*(ids for ids, _, _ in terms)) for terms in slots]
        self.unchecked = set(frozenset.intersection(*slot_docs))
        self.found: set[int] = set()
        # Rarest slot first: a document is dropped as soon as one slot does not follow the ones before.
        order = sorted(range(len(slots)), key=lambda i: len(slot_docs[i]))
        # (slot number, [{document: encoded positions} of each of its terms])
        self.slots = [(i, [dict(zip(ids, values)) for ids, _, values in slots[i]]) for i in order]

    def matches(self, within: set[int] | None) -> set[int]:
        """The documents (of *within*) with the phrase."""
        todo = self.unchecked if within is None else self.unchecked & within
        if todo:
            self.unchecked = self.unchecked - todo
            self.found.update(self._check(todo))
        return self.found if within is None else self.found & within

    def _check(self, docs) -> list[int]:
        """The documents of *docs* with the phrase.

        A term's positions in all the documents are decoded at once and
        keyed by document (document << 32 | position - the slot's place in
        the phrase), so that a slot's keys are one set and the phrase's
        starts one intersection in C, rather than a set per document and
        slot: スマートフォン (スマート|フォン) on the large corpus checked
        4 fields of 1,780 documents in 5.2 ms, 4.0 ms this way.
        """
        found = None
        for shift, terms in self.slots:
            keys: set[int] = set()
            for values in terms:
                present = values.keys() & docs
                for doc, gaps in zip(present, _position_gaps(map(values.__getitem__, present))):
                    gaps[0] += (doc << 32) - shift  # positions are under 2**32: keys of documents never meet
                    keys.update(accumulate(gaps))
            found = keys if found is None else found & keys
            if not found:
                return []
            docs = {key >> 32 for key in found}
        return list(docs)


def _position_gaps(values) -> list[list[int]]:
    """The positions in each of some postings' values, as gaps from the one before (the first from 0).

    Whoosh's Positions format is a count, then the pickled list of gaps
    (with or without pickle's protocol header and stop); the lists are
    unpickled together, as one tuple, in one call.
    """
    lists = [v[6:-1] if v[4] == 0x80 else v[4:-1] if v[-1] == 0x2E else v[4:] for v in values]
    return list(pickle.loads(b"\x80\x02(" + b"".join(lists) + b"t."))


def _segment_postings(leaf, info, format_) -> tuple:
    """(ids, weights, values) of a term's postings in one segment, deleted documents included.

    Read a block at a time: Whoosh's matchers cost several method calls per
    posting (through the wrappers of a reader over several segments, more).
    Same values as the matcher's id(), weight() and value(): the weights are
    the block's float32 array, or Whoosh's own expansion of a block's one weight.
    """
    terms = leaf._terms  # whoosh-reloaded is pinned; tests compare this with Whoosh's matchers
    m = terms._codec.postings_reader(terms._postfile, info, format_)
    if not isinstance(m, W3LeafMatcher):  # a term in one document: postings inlined in the term table
        ids, weights, values = [], [], []
        while m.is_active():
            ids.append(m.id())
            weights.append(m.weight())
            values.append(m.value())
            m.next()
        return ids, weights, values
    ids, weights, values = [], [], []
    while True:
        m._read_data()
        m._read_weights()
        m._read_values()
        ids.extend(m._data[0] if m._byteids else accumulate(m._data[0]))  # _read_ids(), without its generator
        weights.extend(m._weights)
        values.extend(m._values)
        if m._lastblock:
            return ids, weights, values
        m._goto(m._nextoffset)


class _Scorer:
    """Evaluates a query built by ``_QueryBuilder`` to {document: BM25F score}, as Whoosh would score it.

    Term scores use Whoosh's bm25() with its idf, average field length and the
    (rounded) stored field lengths; ORs and ANDs add their parts' scores; a
    phrase scores the sum of its slots where it occurs; a boost multiplies.
    """

    def __init__(self, snap, postings: _Postings, deadline: float | None = None):
        self.snap = snap
        self.searcher = snap.searcher
        self.weighting = snap.searcher.weighting
        self.postings = postings
        self.deadline = deadline
        self.timed_out = False

    def scores(self, q, within: set[int] | None = None) -> dict[int, float]:
        """Score of every document the query matches (only those *within*, if given)."""
        if isinstance(q, wq.Term):
            found = self._term(q.fieldname, q.text, within)
        elif isinstance(q, wq.Or):
            found = {}
            for sub in q.subqueries:
                part = self.scores(sub, within)
                if not found:
                    found = part  # a new dict; 0.0 + score would be the same float
                    continue
                for d, score in part.items():
                    found[d] = found.get(d, 0.0) + score
        elif isinstance(q, wq.Sequence):
            found = self._phrase(q, within)
        elif isinstance(q, wq.And):
            # Each part only where the ones before it matched, the parts with a phrase last: a phrase
            # is then checked only in the documents that have the other words. Added up in the order
            # of the query, as Whoosh adds them.
            parts = [None] * len(q.subqueries)
            for i in sorted(range(len(parts)), key=lambda i: _has_phrase(q.subqueries[i])):
                parts[i] = self.scores(q.subqueries[i], within)
                within = set(parts[i])
            found = {d: sum(part[d] for part in parts) for d in within}
        elif isinstance(q, wq.AndNot):
            found = self.scores(q.a, within)
            for d in self.scores(q.b, set(found)):
                del found[d]
        elif q is wq.NullQuery:
            return {}
        else:
            raise TypeError(f"cannot score a {type(q).__name__}")
        if q.boost != 1.0:
            found = {d: score * q.boost for d, score in found.items()}
        return found

    def _term(self, fieldname: str, text: str, within: set[int] | None) -> dict[int, float]:
        if self.deadline is not None and time.perf_counter() > self.deadline:
            self.timed_out = True
            return {}
        if within is None:
            ids, weights, _ = self.postings.lists(fieldname, text)
            if not ids:
                return {}
            pairs = zip(ids, weights)
        else:
            weights = self.postings.weights(fieldname, text)
            pairs = ((d, weights[d]) for d in weights.keys() & within)
        idf = self.searcher.idf(fieldname, text)
        k1_plus_1 = self.weighting.K1 + 1
        norms = self.snap.length_norms(fieldname)
        # Whoosh's bm25(idf, tf, fl, avgfl, B, K1): idf * ((tf * (K1 + 1)) / (tf + K1 * ((1 - B) + B * fl / avgfl)))
        return {d: idf * ((tf * k1_plus_1) / (tf + norms[d])) for d, tf in pairs}

    def _phrase(self, q, within: set[int] | None) -> dict[int, float]:
        fieldname = next(iter(q.iter_all_terms()))[0]
        slots = [[sub.text] if isinstance(sub, wq.Term) else [t.text for t in sub.subqueries] for sub in q.subqueries]
        docs = self.postings.phrase_docs(fieldname, slots, within)
        if not docs:
            return {}
        return _pairwise_sums([self.scores(sub, docs) for sub in q.subqueries])


def _has_phrase(q) -> bool:
    return isinstance(q, wq.Sequence) or any(_has_phrase(sub) for sub in q.children())


def _pairwise_sums(parts: list[dict[int, float]]) -> dict[int, float]:
    """Each document's sum of its scores in *parts*, added in the halves Whoosh's binary matcher tree adds
    a phrase's slots in (same rounding); only documents in every part (not all, once the time limit is past)."""
    if len(parts) == 1:
        return parts[0]
    half = len(parts) // 2
    left, right = _pairwise_sums(parts[:half]), _pairwise_sums(parts[half:])
    return {d: score + right[d] for d, score in left.items() if d in right}


def _any_or_nothing(queries: list):
    """Or of the queries; a query that matches nothing when there are none."""
    if not queries:
        return wq.NullQuery
    return queries[0] if len(queries) == 1 else wq.Or(queries)


def _all_or_nothing(queries: list):
    if any(q is wq.NullQuery for q in queries):
        return wq.NullQuery
    return queries[0] if len(queries) == 1 else wq.And(queries)


def _boosted(q, weight: float):
    q = q.copy()
    q.boost = q.boost * weight
    return q


def _topic_units(units: list[Unit]) -> list[Unit]:
    """The units of a typed word without the light verb する (移行する: 移行), unless nothing else is left.

    する and its forms are in nearly every article: as a required word it
    only made the search read the longest posting lists, as a scored one it
    says nothing about the topic.
    """
    kept = [u for u in units if not _is_light_verb(u)]
    return kept or units


def _is_hiragana(text: str) -> bool:
    return is_kana(text) and to_hiragana(text) == text


def _is_light_verb(unit: Unit) -> bool:
    return unit.pos == "動詞" and (unit.text in LIGHT_VERBS or any(v in LIGHT_VERBS for v in unit.variants))


def _stem(form: str) -> str:
    """A dictionary form without its final kana (泳ぐ -> 泳), to find inflected forms in text."""
    if len(form) > 1 and "\u3041" <= form[-1] <= "\u309f":
        return form[:-1]
    return form


# --- snippets ---------------------------------------------------------------------------------


class _Marker:
    """Finds the best passage for a query and marks the words the query matched."""

    def __init__(self, terms: set[str], needles: set[str], words: set[str] = frozenset()):
        self.terms = terms
        # Longest first, then alphabetical: a set's order changes with PYTHONHASHSEED, and the first
        # needles fill the 200 positions a snippet looks at, so two workers chose different snippets.
        self.needles = sorted({n for n in needles if n}, key=lambda n: (-len(n), n))
        self.words = words
        # Needles that may be a technical word written without its hyphens or dots (analysis.joined_form)
        self.joinable = [n for n in self.needles if len(n) >= 4 and n.isascii() and n.isalnum()]
        self.active = bool(terms)
        self.by_reading = any(t.startswith(READING) for t in terms)  # kana typed for kanji: no needles
        # Kana typed for kanji: the written forms the analyzer found matching
        # by their reading in earlier bodies of this result page (東京 for
        # とうきょう), looked for by string search in the next ones.
        self.read_as: set[str] = set()

    def matches(self, unit: Unit | analysis.Term) -> bool:
        """Whether a word (a Unit, or a Term as the analyzer's scan gives it) is one of the query's terms."""
        terms = self.terms
        if unit.text in terms:
            return True
        if unit.reading and READING + unit.reading in terms:
            return True
        return any(v in terms or analysis.VARIANT + v in terms for v in unit.variants) or any(
            p in terms for p in unit.parts)

    def mark_title(self, title: str) -> str:
        """The title as HTML with its matches marked; analysed only if a match is possible."""
        lowered = title.lower()
        joined = lowered.replace("-", "").replace(".", "")  # Wi-Fi for wifi (analysis.joined_form)
        if self.by_reading or any(n in lowered or n in joined for n in self.needles) or not title.isascii() and \
                lowered != unicodedata.normalize("NFKC", lowered):
            return self.mark(title)[0]
        return html.escape(title)

    def mark(self, text: str) -> tuple[str, str, int]:
        """(HTML with <mark>, plain text with \\x02..\\x03 marks, number of marks) of *text*."""
        out_html, out_text, last = [], [], 0
        spans = self._spans(text)
        for start, end in spans:
            word = text[start:end]
            out_html += (html.escape(text[last:start]), f"<mark>{html.escape(word)}</mark>")
            out_text += (text[last:start], f"\x02{word}\x03")
            last = end
        out_html.append(html.escape(text[last:]))
        out_text.append(text[last:])
        return "".join(out_html), "".join(out_text), len(spans)

    def _spans(self, text: str) -> list[tuple[int, int]]:
        """Where the query's words are in *text*, adjacent ones joined (MeCab's アド|オン is one word).

        Found by string search where an occurrence is plainly a whole word;
        the analyzer decides the rest (a verb's stem, a word inside a longer
        one), reading only the clauses around them. A text where the string
        search finds nothing, or that the analyzer would normalise, is
        analysed whole: it may hold a variant or a reading of a query word.
        """
        hits = self._hits(text)
        if hits is None:
            return _joined(self._analysed_spans(text))
        sure = [(start, end) for start, end, whole in hits if whole]
        clauses = _joined(_clause(text, start, end) for start, end, whole in hits if not whole)
        if not clauses:
            return sure
        spans = [span for span in sure if not any(b <= span[0] < e for b, e in clauses)]
        for b, e in clauses:
            spans += ((b + start, b + end) for start, end in self._analysed_spans(text[b:e]))
        return _joined(sorted(spans))

    def _hits(self, text: str) -> list[tuple[int, int, bool]] | None:
        """(start, end, plainly a whole word) of the query's words in *text* by string search.

        None when string search cannot be trusted: kana typed for kanji, text
        the analyzer would normalise (beyond full-width ASCII), or no hit.
        """
        if self.by_reading:
            return None
        lowered = text.translate(_WIDTH).lower()
        if len(lowered) != len(text) or not unicodedata.is_normalized("NFKC", lowered):
            return None
        found = []
        for needle in self.needles:
            whole = needle in self.words  # not a stem (泳 of 泳ぐ), whose inflected end is MeCab's call
            i = lowered.find(needle)
            while i >= 0:
                found.append((i, i + len(needle), whole))
                i = lowered.find(needle, i + 1)
        if self.joinable and ("-" in lowered or "." in lowered):
            found += _joined_hits(lowered, self.joinable)  # nodejs in Node.js: the analyzer decides
        if not found:
            return None
        found.sort()
        hits = [found[0]]
        for start, end, whole in found[1:]:
            last_start, last_end, last_whole = hits[-1]
            if start <= last_end:  # adjacent or overlapping: one word (画像|処理)
                # ... but not one needle twice (1 and 1 of 11): the analyzer decides that one
                again = lowered[start:end] == lowered[last_start:last_end]
                hits[-1] = (last_start, max(end, last_end), last_whole and whole and not again)
            else:
                hits.append((start, end, whole))
        return [(start, end, whole and _whole_word(lowered, start, end)) for start, end, whole in hits]

    def _analysed_spans(self, text: str) -> list[tuple[int, int]]:
        """Spans of the words of *text* that match the query, with the inflection that follows a match.

        Walks the analyzer's (term, start, end) triples: making a Unit of
        each word first (analysis.units) was about a seventh of the time of
        analysing a clause, 3% of the time the blog's queries spend marking.
        """
        spans = []
        inflecting = False  # the last word was a match that inflects (a verb or an adjective)
        for term, start, end in analysis.scan(text):
            if inflecting and term.stop and term.pos == "助動詞" and start == spans[-1][1]:
                spans[-1] = (spans[-1][0], end)  # the inflection of a matched verb belongs to it: 泳いだ
                continue
            marking = not term.stop and self.matches(term)
            inflecting = marking and term.pos in _INFLECTING
            if marking and term.pos == "tech" and "/" in text[start:end]:
                spans += self._items(text, start, end)  # nodejs/Release: only the item that matched
            elif marking:
                spans.append((start, end))
        return spans

    def _items(self, text: str, start: int, end: int) -> list[tuple[int, int]]:
        """The spans of the items of a slash list (iPad2/iPhone4S) in text[start:end] that match."""
        found, at = [], start
        for item in text[start:end].split("/"):
            if item and any(self.matches(term) for term in analysis.terms(item) if not term.stop):
                found.append((at, at + len(item)))
            at += len(item) + 1
        return found or [(start, end)]

    def snippet(self, body: str, indexed: bool = True) -> tuple[str, str]:
        """The ~120-character passage of *body* with the most query words, marked up.

        *indexed* says whether the index has any of the query's terms in this
        body; if not, only a plain string search is done, never the analyzer.
        """
        if not body:
            return "", ""
        # Needles are folded (NFKC, lower case); full-width text in a body is rare
        # enough to be left to the analyzer scan below instead of NFKC-ing every body.
        folded = body.lower()
        if len(folded) != len(body):
            folded = body
        positions = []
        for needle in self.needles:
            start = 0
            while len(positions) < 200:
                i = folded.find(needle, start)
                if i < 0:
                    break
                positions.append((i, needle))
                start = i + 1
        positions.sort()
        candidates = []
        for i, (pos, _) in enumerate(positions):
            distinct = {n for p, n in positions[i:i + 12] if p < pos + SNIPPET_CHARS}
            candidates.append((-len(distinct), pos))
        candidates.sort()
        for _, pos in candidates[:3]:
            begin = _passage_start(body, pos)
            end = _passage_end(body, begin + SNIPPET_CHARS)
            marked_html, marked_text, count = self.mark(body[begin:end])
            if count:
                return _passage(body, begin, end, marked_html, marked_text)
        if not indexed:
            return "", ""  # the article matched in its title, tags or description only
        if self.read_as:
            # A written form already found by its reading: its first occurrence, if
            # the analyzer marks it there, instead of analysing the body from the top.
            head = body[:SCAN_CHARS]
            first = min((i for form in self.read_as if (i := head.find(form)) >= 0), default=-1)
            if first >= 0:
                begin = _passage_start(body, first)
                end = _passage_end(body, begin + SNIPPET_CHARS)
                marked_html, marked_text, count = self.mark(body[begin:end])
                if count:
                    return _passage(body, begin, end, marked_html, marked_text)
        # Matched through a variant or reading only (杜 for 森, 泳いだ for 泳ぐ): look with the analyzer.
        for offset, unit in _head_units(body):
            if not unit.stop and self.matches(unit):
                if self.by_reading:
                    self.read_as.add(body[offset + unit.start:offset + unit.end])
                begin = _passage_start(body, offset + unit.start)
                end = _passage_end(body, begin + SNIPPET_CHARS)
                marked_html, marked_text, count = self.mark(body[begin:end])
                if count:
                    return _passage(body, begin, end, marked_html, marked_text)
                break
        return "", ""


_INFLECTING = frozenset({"動詞", "形容詞", "形状詞"})  # UniDic pos1 of words whose 助動詞 ending is marked with them
def _joined_hits(lowered: str, needles: list[str]) -> list[tuple[int, int, bool]]:
    """(start, end, False) of *needles* in *lowered* read without the hyphens and dots inside words
    (wifi in wi-fi, nodejs in node.js), as spans of *lowered*."""
    kept = [i for i, c in enumerate(lowered)
            if not (c in "-." and 0 < i < len(lowered) - 1 and lowered[i - 1].isalnum() and lowered[i + 1].isalnum())]
    if len(kept) == len(lowered):
        return []
    squeezed = "".join(lowered[i] for i in kept)
    found = []
    for needle in needles:
        i = squeezed.find(needle)
        while i >= 0:
            found.append((kept[i], kept[i + len(needle) - 1] + 1, False))
            i = squeezed.find(needle, i + 1)
    return found


# Full-width ASCII and the spaces the analyzer folds, one character for one, so that the string
# search sees what the analyzer would (the ！ and （） of Japanese text are the usual ones).
_WIDTH = {**{c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)}, 0x3000: " ", 0xA0: " ", ord("…"): " "}
# Hiragana after a word that starts a particle, not an inflection or a copula: after 設定 in 設定を
# the word ends, after 簡単 in 簡単に or 学生 in 学生です the analyzer marks the 助動詞 with it
# (で is either: MeCab reads 仕事で in 仕事では使えない as the copula).
_PARTICLE_STARTS = frozenset("をがはのともへか")
_LATIN_PARTICLE_STARTS = _PARTICLE_STARTS | {"に"}  # a technical word is a noun: に is a particle after it
_CLAUSE_ENDS = "。、!?！？\n"  # where MeCab's reading of one clause does not depend on the next
_CONNECTORS = frozenset(".-_+#/@&':")  # may join Latin words into one technical word (Node.js, C#)
_HONORIFIC_PREFIXES = frozenset("おご")  # お茶, ご飯: MeCab may read the prefix into the word


def _script(ch: str) -> str:
    """The kind of character, as far as telling where a word ends goes."""
    o = ord(ch)
    if o < 0x80:
        return "latin" if ch.isalnum() or ch in _CONNECTORS else "other"
    if 0x3041 <= o <= 0x309F:
        return "hiragana"
    if 0x30A1 <= o <= 0x30FF and ch not in "・ヵヶ" or 0x31F0 <= o <= 0x31FF:
        return "katakana"
    if 0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0xF900 <= o <= 0xFAFF or ch in "々〆ヵヶ":
        return "kanji"
    return "other"


def _whole_word(text: str, start: int, end: int) -> bool:
    """Whether text[start:end] is plainly a word of its own, without asking MeCab.

    Conservative: true only when the characters around it are of another kind
    (the katakana of テスト next to kanji or punctuation), a kanji or katakana
    word is followed by a particle rather than okurigana or a copula, and a
    single kanji has no kana beside it (上 of 上がる).
    """
    first, last = _script(text[start]), _script(text[end - 1])
    if first == "other" or last == "other":
        return False
    before = _script(text[start - 1]) if start > 0 else "other"
    after = _script(text[end]) if end < len(text) else "other"
    if before == first or after == last:
        return False
    if after == "hiragana" and not _particle_follows(text, end, last):
        return False
    if before == "hiragana" and (first == "hiragana" or text[start - 1] in _HONORIFIC_PREFIXES):
        return False
    if last == "hiragana":
        return False  # kana words (する, できる) are glued to their endings
    if end - start == 1 and first == "kanji" and "hiragana" in (before, after):
        return False
    return True


def _joined(spans) -> list[tuple[int, int]]:
    """Sorted spans with the adjacent and overlapping ones made one."""
    joined: list[tuple[int, int]] = []
    for start, end in spans:
        if joined and start <= joined[-1][1]:
            joined[-1] = (joined[-1][0], max(end, joined[-1][1]))
        else:
            joined.append((start, end))
    return joined


def _clause(text: str, start: int, end: int) -> tuple[int, int]:
    """The clause of *text* around start..end: from after the previous 、。!? or line break to the next one."""
    begin = max(text.rfind(c, 0, start) for c in _CLAUSE_ENDS) + 1
    ends = [i for i in (text.find(c, end) for c in _CLAUSE_ENDS) if i >= 0]
    return begin, min(ends) + 1 if ends else len(text)


def _particle_follows(text: str, pos: int, script: str) -> bool:
    """Whether the hiragana at *pos*, after a word of *script*, starts a particle."""
    return text[pos] in (_LATIN_PARTICLE_STARTS if script == "latin" else _PARTICLE_STARTS)


def _head_units(body: str):
    """(offset, unit) of the units of the first SCAN_CHARS of *body*, in order.

    Analysed in pieces that double in size and end after a 。, so that the
    usual match near the top costs one short MeCab call instead of one over
    the whole head. MeCab reads a word at a piece's edge as it would at a
    sentence end (4 of the blog's 835 bodies get one unit differently; at
    line breaks it was 16).
    """
    start, size, limit = 0, 500, min(len(body), SCAN_CHARS)
    while start < limit:
        end = body.find("。", start + size, limit)
        end = limit if end < 0 else end + 1
        for unit in analysis.units(body[start:end]):
            yield start, unit
        start, size = end, size * 2


def _passage(body: str, begin: int, end: int, marked_html: str, marked_text: str) -> tuple[str, str]:
    prefix = "…" if begin > 0 else ""
    suffix = "…" if end < len(body) else ""
    return (prefix + marked_html + suffix).replace("\n", " "), (prefix + marked_text + suffix).replace("\n", " ")


def _passage_start(text: str, pos: int) -> int:
    """Start a passage at a sentence or line boundary shortly before *pos*."""
    floor = max(0, pos - 40)
    for i in range(pos - 1, floor - 1, -1):
        if text[i] in "。．！？!?\n":
            return i + 1
    return floor if floor == 0 else max(floor, _word_boundary(text, floor))


def _passage_end(text: str, pos: int) -> int:
    if pos >= len(text):
        return len(text)
    for i in range(pos, min(len(text), pos + 20)):
        if text[i] in "。．！？!?\n":
            return i + 1
    return _word_boundary(text, pos)


def _word_boundary(text: str, pos: int) -> int:
    """Do not cut a Latin word in two."""
    while 0 < pos < len(text) and text[pos - 1].isascii() and text[pos - 1].isalnum() and text[pos].isascii() \
            and text[pos].isalnum():
        pos += 1
    return pos
