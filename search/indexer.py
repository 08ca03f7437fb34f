"""Building and updating the index.

Layout of the index folder::

    index/
      CURRENT          name of the generation being served (replaced atomically)
      gen-<id>/        a Whoosh index, its manifest.json and info.json
      .build-<id>/     a build in progress (removed if the build dies)
      .lock            the writer lock (flock: released when its holder dies)

``build`` writes a new generation beside the served one and switches
``CURRENT`` to it only once it is complete, so a reader never sees a half
built index and a failed build leaves the previous one serving.  ``update``
changes the served generation in place through Whoosh's own commit, which
writes new segment files and then atomically replaces the table of contents.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import json
import math
import multiprocessing
import os
import pickle
import queue
import shutil
import struct
import sys
import time
import uuid
import zlib
from array import array
from collections import defaultdict
from dataclasses import dataclass, field
from hashlib import md5
from pathlib import Path

from whoosh import fields
from whoosh import index as whoosh_index
from whoosh.codec.whoosh3 import WHOOSH3_HEADER_MAGIC, W3Codec
from whoosh.filedb import filetables
from whoosh.system import pack_ushort
from whoosh.util.numeric import byte_to_length, length_to_byte
from whoosh.writing import SegmentWriter

from . import analysis
from .analysis import JapaneseAnalyzer
from .config import MAX_ARTICLE_BYTES
from .documents import Article, ArticleError, content_hash, iter_article_files, parse_article
from .errors import IndexLocked, IndexMissing, SearchError

CURRENT = "CURRENT"
MANIFEST = "manifest.json"
INFO = "info.json"
BATCH = 16  # articles per task sent to an analysis process
# A writing process holds a segment's postings in memory until it writes it
# out (~20 bytes a posting, and its terms), so each writes segments of at
# most SEGMENT_BYTES of article files and MAX_SEGMENT_POSTINGS postings.
# Fewer, bigger segments answer queries faster: a query looks each of its
# terms up in every segment.  The large corpus (49 MB of files, 6.3 million
# postings) makes one segment per process, two in all, and its build peaks
# at ~465 MB of private memory over all processes (sum of Pss_Anon); in six
# segments it peaked at ~395-425 MB, and its benchmark queries took ~8%
# longer at p50 and ~12% at p99.
SEGMENT_BYTES = 32_000_000
COMPRESSION = 0  # zlib level of posting blocks: 0 builds the blog 18% faster; index +40% (blog), +70% (large)
MAX_SEGMENT_POSTINGS = 3_500_000


class Preindexed(str):
    """Field text with its postings computed elsewhere (a worker process), so it is analysed once."""

    __slots__ = ("postings",)

    def __reduce__(self):
        return _preindexed, (str(self), self.postings)


def _preindexed(text: str, postings: list) -> "Preindexed":
    value = Preindexed(text)
    value.postings = postings
    return value


class JapaneseText(fields.TEXT):
    """A TEXT field that takes postings computed in a worker as they are.

    Whoosh's writer calls ``field.index(value)`` in the writing process; the
    analysis (MeCab and the encoding of positions) then happens there, on
    one core.  Workers call :meth:`preindex` instead and the writer only
    adds the finished postings.
    """

    def index(self, value, **kwargs):
        if isinstance(value, Preindexed):
            return iter(value.postings)
        return super().index(value, **kwargs)

    def preindex(self, text: str) -> Preindexed:
        """The postings Whoosh's ``index`` would make, straight from the analyzer's terms.

        Same terms at the same positions as the tokenizer chain gives (tests
        compare the two), without a Whoosh token object per word.
        """
        positions: dict[bytes, list[int]] = defaultdict(list)
        position = 0
        for term in analysis.terms(text):
            if term.stop:
                continue
            for key in term.keys:
                positions[key].append(position)
            position += 1
        encode, boost = self.format.encode, self.format.field_boost
        postings = []
        for key, where in positions.items():
            if len(where) == 1 and where[0] < 20_000:  # most words occur once: cache their encoding
                value = _ONE_POSITION.get(where[0])
                if value is None:
                    value = _ONE_POSITION[where[0]] = encode(where)
                    short = _SHORT_MARK + where[0].to_bytes(2, "big")
                    _SHORT[value], _LONG[short] = short, value
            else:
                value = encode(where)
            postings.append((key, len(where), len(where) * boost, value))
        return _preindexed(text, postings)


_ONE_POSITION: dict[int, bytes] = {}  # position -> Positions.encode([position])
# A segment being written holds these values (13-14 bytes; the postings of
# most words) as 3 bytes: a mark no encoded value starts with (its first
# byte is the high byte of a count of positions), and the position.
_SHORT_MARK = b"\xff"
_SHORT: dict[bytes, bytes] = {}  # Positions.encode([position]) -> its short form
_LONG: dict[bytes, bytes] = {}  # and back


_END = 0xFFFFFFFF  # no next posting


class _FieldPostings:
    """The postings of one field of a segment being written, in flat arrays.

    A posting is a slot in the parallel arrays (docnum, weight, where its
    encoded value starts in ``values``, the slot of the term's next
    posting); a term is the slots of its first and last posting.  About 20
    bytes a posting (a value with one position held in 3 bytes, see _SHORT)
    and 70 a term, where a Python object per term or per posting would cost
    hundreds: the memory of a build is mostly this.
    """

    __slots__ = ("ids", "heads", "tails", "docnums", "weights", "starts", "nexts", "values")

    def __init__(self):
        self.ids: dict[bytes, int] = {}
        self.heads, self.tails = array("I"), array("I")
        self.docnums, self.weights, self.starts, self.nexts = array("I"), array("f"), array("I"), array("I")
        self.values = bytearray()

    def add(self, tbytes: bytes, docnum: int, weight: float, vbytes: bytes) -> None:
        vbytes = _SHORT.get(vbytes, vbytes)
        slot = len(self.docnums)
        tid = self.ids.get(tbytes)
        if tid is None:
            self.ids[tbytes] = len(self.heads)
            self.heads.append(slot)
            self.tails.append(slot)
        else:
            self.nexts[self.tails[tid]] = slot
            self.tails[tid] = slot
        self.docnums.append(docnum)
        self.weights.append(weight)
        self.starts.append(len(self.values))
        self.nexts.append(_END)
        self.values.extend(vbytes)

    def terms(self):
        """(term, docnums, weights, encoded values) in term order; empties this object."""
        values = bytes(self.values)
        self.values = bytearray()  # not two copies at once
        starts, docnums, weights, nexts = self.starts, self.docnums, self.weights, self.nexts
        starts.append(len(values))  # where the last value ends
        for tbytes in sorted(self.ids):
            slot, slots = self.heads[self.ids[tbytes]], []
            while slot != _END:
                slots.append(slot)
                slot = nexts[slot]
            held = [values[starts[i]:starts[i + 1]] for i in slots]
            yield tbytes, [docnums[i] for i in slots], [weights[i] for i in slots], list(map(_LONG.get, held, held))


class _Writer(SegmentWriter):
    """Whoosh's SegmentWriter with the new segment's postings in flat arrays.

    Whoosh's PostingPool holds one tuple per posting, sorts them all at
    commit, spills pickled runs to disk past its size limit, and then reads
    every document's field length back from the segment once per posting.
    Here each document's postings go to flat arrays (:class:`_FieldPostings`),
    terms are sorted once per field at commit, and lengths come from memory.
    The files written are the same: the same codec writes them, in the same
    order.

    For new indexes only (a full build): merging existing segments goes
    through Whoosh's pool, which this writer does not write out.
    """

    def __init__(self, ix, **kwargs):
        super().__init__(ix, codec=W3Codec(compression=COMPRESSION), **kwargs)
        if self.segments:
            raise ValueError("_Writer writes new indexes only")
        self._postings: dict[str, _FieldPostings] = defaultdict(_FieldPostings)
        self._lengths: dict[str, dict[int, int]] = defaultdict(dict)
        self.postings = 0  # held in memory, for the caller to start a new segment past a budget

    def add_document(self, **values):
        self._check_state()
        perdoc = self.perdocwriter
        docnum = self.docnum
        perdoc.start_doc(docnum)
        try:
            for name in sorted(n for n in values if not n.startswith("_")):
                value = values[name]
                if value is None:
                    continue
                field = self.schema[name]
                length = 0
                if field.indexed:
                    add = self._postings[name].add
                    for tbytes, freq, weight, vbytes in field.index(value):
                        add(tbytes, docnum, weight, vbytes)
                        length += freq
                        self.postings += 1
                    if not field.scorable:
                        length = 0
                    elif length:
                        self._lengths[name][docnum] = byte_to_length(length_to_byte(length))
                stored = values.get(f"_stored_{name}", value)
                perdoc.add_field(name, field, stored if field.stored else None, length)
                if field.column_type:
                    perdoc.add_column_value(name, field.column_type, field.to_column_value(stored))
        except Exception:
            perdoc.cancel_doc()
            raise
        perdoc.finish_doc()
        self._added = True
        self.docnum += 1

    def commit_segments(self, segments: list) -> None:
        """Commit a table of contents listing *segments* (written by other _Writers on this index)."""
        self._check_state()
        self._close_segment()
        self._commit_toc(segments)
        self._finish()

    def _flush_segment(self):
        self.perdocwriter.close()
        out = self.fieldwriter
        for name in sorted(self._postings):
            _write_field(out, name, self.schema[name], self._postings.pop(name), self._lengths.get(name, {}))
        self.fieldwriter.close()


BLOCK_PICKLE_PROTOCOL = 5
# Whoosh's hash file (the term table), as search/searcher.py also reads it:
_ENTRY_LENGTHS = struct.Struct("!ii")  # an entry's key and value lengths, before the key and the value
_HASH_SLOT = struct.Struct("!Iq")  # a slot of a hash table: (key hash, entry position)
_TERM_INFO = struct.Struct("!BfIBBfII")  # W3TermInfo._struct
_EXTENT = struct.Struct("!qi")  # W3TermInfo.to_bytes: where the postings start in the posting file, and their length
_BLOCK_LENGTH = struct.Struct("!i")
_NO_LENGTH = (None, 0)  # a block's (min, max) length when no posting has one (fields without lengths)


def _write_field(out, fieldname: str, field, postings: _FieldPostings, lengths: dict[int, int]) -> None:
    """Write a field's terms as Whoosh 3's field writer does: posting blocks, then a term table entry per term.

    The same bytes as ``start_term``, ``add`` per posting and ``finish_term``
    on W3FieldWriter (blocks of ``blocklimit`` postings, the last one's
    length negative; the term info with the statistics of all blocks; the
    entry in the ordered hash file), except that blocks are pickled with
    protocol 5 instead of 2: protocol 2 stores each posting's value (bytes)
    as a call to ``_codecs.encode`` on a str, and a search spent 46 µs
    unpickling a block of 128 postings of the large corpus, 6 µs with
    protocol 5 (index a third smaller). Whoosh's reader unpickles any
    protocol; ``search update`` writes through Whoosh's own writer.

    Whoosh's writer goes through a dozen method calls, tell()s and writes
    per term, and type checks and running statistics per posting; here a
    block's statistics are taken with C-level builtins, a term with one
    posting (most terms) skips the block loop, and a field's bytes are
    written a batch at a time. Writing the blog's segments in one process
    took 2.3 s of CPU that way, 1.3 s this way (0.5 s of it walking
    :meth:`_FieldPostings.terms`); the files are byte for byte the same.
    The tests compare every term's postings and statistics with Whoosh's
    own writer.
    """
    out.start_field(fieldname, field)
    blocks = out._postwriter  # whoosh-reloaded is pinned; the codec's settings for this field
    limit, compression = blocks._blocklimit, blocks._compression
    if blocks._inlinelimit > 1:
        raise ValueError("a codec that inlines postings in the term table is not supported")
    fixed_size = field.format.fixed_value_size()
    postfile, tindex = out._postfile, out._tindex
    hashfn = key_hash_function(tindex)
    buckets, prefix = tindex.buckets, pack_ushort(out._fieldid)
    post_pos, post_chunks = postfile.tell(), []
    term_pos, term_chunks, term_positions = tindex.dbfile.tell(), [], []
    dumps, block_length, lengths_of = pickle.dumps, _BLOCK_LENGTH.pack, lengths.get
    key = b""
    for tbytes, docnums, weights, values in postings.terms():
        start, count = post_pos, len(docnums)
        post_chunks.append(WHOOSH3_HEADER_MAGIC)
        post_pos += len(WHOOSH3_HEADER_MAGIC)
        if count == 1:  # most terms (59% on the blog): the loop below for one block of one posting, unrolled
            docnum, weight, vbytes = docnums[0], weights[0], values[0]  # weight: a float32 already
            length = lengths_of(docnum)
            min_length, max_length = (length, length) if length else _NO_LENGTH
            total_weight, max_weight = weight, max(0, weight)
            if fixed_size is None or fixed_size < 0:
                mini_values = (vbytes,) if vbytes else ()
            else:
                mini_values = None if fixed_size == 0 else vbytes
            data = dumps(((docnum,), None if weight == 1.0 else weight, mini_values), BLOCK_PICKLE_PROTOCOL)
            if compression:
                data = zlib.compress(data, compression)
            info = dumps((1, docnum, max_weight, compression, length_to_byte(min_length),
                          length_to_byte(max_length)), 2)
            size = len(info) + len(data)
            post_chunks += (block_length(-size), info, data)
            post_pos += 4 + size
        else:
            total_weight, max_weight, min_length, max_length = 0, 0, None, 0
            for first in range(0, count, limit):
                ids, ws = docnums[first:first + limit], array("f", weights[first:first + limit])
                known = list(filter(None, map(lengths_of, ids)))
                low, high = (min(known), max(known)) if known else _NO_LENGTH
                top = max(0, max(ws))
                if ws.count(1.0) == len(ws):
                    mini_weights = None
                elif ws.count(ws[0]) == len(ws):
                    mini_weights = ws[0]
                else:
                    mini_weights = tuple(ws)
                if fixed_size is None or fixed_size < 0:
                    mini_values = tuple(filter(None, values[first:first + limit]))
                elif fixed_size == 0:
                    mini_values = None
                else:
                    mini_values = b"".join(values[first:first + limit])
                data = dumps((tuple(map(int.__sub__, ids, [0, *ids[:-1]])), mini_weights, mini_values),
                             BLOCK_PICKLE_PROTOCOL)
                if compression:
                    data = zlib.compress(data, compression)
                info = dumps((len(ids), ids[-1], top, compression, length_to_byte(low), length_to_byte(high)), 2)
                size = len(info) + len(data)
                post_chunks += (block_length(size if first + limit < count else -size), info, data)
                post_pos += 4 + size
                # W3TermInfo.add_block, block by block (the same float sums)
                total_weight += sum(ws)
                min_length = low if min_length is None else min(min_length, low)
                max_length, max_weight = max(max_length, high), max(max_weight, top)
        value = _TERM_INFO.pack(0, total_weight, count, length_to_byte(min_length), length_to_byte(max_length),
                                max_weight, docnums[0], docnums[-1]) + _EXTENT.pack(start, post_pos - start)
        key = prefix + tbytes
        entry = _ENTRY_LENGTHS.pack(len(key), len(value)) + key + value
        h = hashfn(key)
        buckets[h & 255].append((h, term_pos))
        term_positions.append(term_pos)
        term_chunks.append(entry)
        term_pos += len(entry)
        if len(post_chunks) > 4096:
            postfile.write(b"".join(post_chunks))
            post_chunks.clear()
            tindex.dbfile.write(b"".join(term_chunks))  # not all a field's entries held at once (~25 MB)
            term_chunks.clear()
    postfile.write(b"".join(post_chunks))
    tindex.dbfile.write(b"".join(term_chunks))
    tindex.index.extend(term_positions)
    if term_positions:
        tindex.lastkey = key
    out.finish_field()


def key_hash_function(table):
    """The hash function of a Whoosh hash file (writer or reader): Whoosh's own, or the same faster."""
    return _md5_low32 if table.hashfn is filetables.md5_hash else table.hashfn


def _md5_low32(key: bytes) -> int:
    """Whoosh's md5_hash (the low 32 bits of the key's MD5), without the hex string (0.5 µs less a key)."""
    return int.from_bytes(md5(key, usedforsecurity=False).digest()[12:], "big")


def schema() -> fields.Schema:
    """The index schema; display fields travel together in one stored dict."""
    analyzer = JapaneseAnalyzer()
    return fields.Schema(
        path=fields.ID(unique=True, stored=True),
        slug=fields.ID(stored=True),
        title=JapaneseText(analyzer=analyzer),
        tags=JapaneseText(analyzer=analyzer),
        abstract=JapaneseText(analyzer=analyzer),
        body=JapaneseText(analyzer=analyzer, stored=True),
        tag=fields.KEYWORD(commas=True),
        type=fields.ID(),
        product=fields.KEYWORD(commas=True),
        day=fields.NUMERIC(int, bits=32, sortable=True, signed=True),
        meta=fields.STORED(),
    )


@dataclass
class Report:
    """What a build or update did."""

    indexed: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    generation: str = ""

    def summary(self) -> str:
        """One line for the terminal."""
        return (f"indexed {self.indexed}, updated {self.updated}, deleted {self.deleted}, "
                f"unchanged {self.unchanged}, skipped {len(self.skipped)} in {self.seconds:.2f} s")


class Progress:
    """A one-line progress bar on a terminal; silent otherwise."""

    def __init__(self, label: str, total: int, enabled: bool):
        self.label, self.total, self.enabled = label, total, enabled and total > 0
        self.done = 0
        self.last = 0.0

    def step(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if self.enabled and (now - self.last > 0.1 or self.done == self.total):
            self.last = now
            width = 30
            filled = width * self.done // self.total
            sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total}")
            sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()


# --- the index folder ------------------------------------------------------------


def current_generation(index_dir: Path) -> Path:
    """The folder of the generation being served; IndexMissing if there is none."""
    try:
        name = (index_dir / CURRENT).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise IndexMissing(f"No index at {index_dir}. Run \"search build\" first.",
                           "No index has been built yet. Run \"search build\" first.") from None
    except (OSError, ValueError) as e:
        why = getattr(e, "strerror", None) or "unreadable CURRENT file"
        raise IndexMissing(f"Cannot read the index at {index_dir}: {why}. Run \"search build\" to rebuild it.",
                           f"Cannot read the index: {why}. Run \"search build\" to rebuild it.") from None
    gen = index_dir / name
    if not name.startswith("gen-") or "/" in name or not gen.is_dir():
        problem = f"{CURRENT} names a missing generation {name[:40]!r}"
        raise IndexMissing(f"The index at {index_dir} is damaged ({problem}). Run \"search build\" to rebuild it.",
                           f"The index is damaged ({problem}). Run \"search build\" to rebuild it.") from None
    return gen


def open_index(index_dir: Path):
    """Open the served Whoosh index, with errors that say how to recover."""
    gen = current_generation(index_dir)
    try:
        return whoosh_index.open_dir(str(gen)), gen
    except Exception as e:  # Whoosh raises many kinds for damaged files
        raise damaged(index_dir, e) from None


def damaged(index_dir: Path, error: Exception) -> IndexMissing:
    """The error for an index whose files cannot be read."""
    return IndexMissing(f"The index at {index_dir} is damaged ({type(error).__name__}: {error}). "
                        f"Run \"search build\" to rebuild it.",
                        f"The index is damaged ({type(error).__name__}). Run \"search build\" to rebuild it.")


def read_info(gen: Path) -> dict:
    """The info.json of a generation (built_at, documents...), or {}."""
    try:
        return json.loads((gen / INFO).read_text())
    except (OSError, ValueError):
        return {}


class WriterLock:
    """One writer at a time: an flock on index/.lock, released by the kernel if we die."""

    def __init__(self, index_dir: Path, wait: float = 0.0):
        self.path = index_dir / ".lock"
        self.wait = wait
        self.fd = None

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.wait
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(self.fd, 64, 0).decode(errors="replace").strip() or "another process"
                    os.close(self.fd)
                    raise IndexLocked(f"Another build or update is running on {self.path.parent} "
                                      f"({holder}); try again when it has finished.") from None
                time.sleep(0.05)
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, f"pid {os.getpid()}".encode(), 0)
        return self

    def __exit__(self, *exc):
        os.ftruncate(self.fd, 0)
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- reading the content folder ----------------------------------------------------------


@dataclass
class Source:
    """An article file found in the content folder."""

    rel: str
    path: Path
    size: int
    mtime_ns: int


def scan(content_dir: Path, report: Report) -> list[Source]:
    """The article files under *content_dir*; unusable entries go to report.skipped."""
    if not content_dir.is_dir():
        raise SearchError(f"Content folder {content_dir} does not exist.")
    root = content_dir.resolve()
    sources = []
    for path, problem in iter_article_files(root):
        rel = _relative(path, root)
        if problem:
            report.skipped.append((rel, problem))
            continue
        try:
            st = path.stat()
        except OSError as e:
            report.skipped.append((rel, f"cannot be read: {e.strerror}"))
            continue
        sources.append(Source(rel, path, st.st_size, st.st_mtime_ns))
    return sources


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _load(source: Source) -> tuple[Article | None, str | None, str | None]:
    """Read one source: (article, None, sha1) or (None, reason, sha1)."""
    if source.size > MAX_ARTICLE_BYTES:
        return None, (f"file is too large ({source.size / 1048576:.1f} MB; the limit is "
                      f"{MAX_ARTICLE_BYTES // 1048576} MB)"), None
    try:
        data = source.path.read_bytes()
    except OSError as e:
        return None, f"cannot be read: {e.strerror}", None
    try:
        return parse_article(data, source.rel), None, content_hash(data)
    except ArticleError as e:
        return None, e.reason, content_hash(data)


def _same_content(source: Source, known: list) -> bool:
    """Whether a file whose size or time changed still holds what was indexed (a copy, a checkout, a touch).

    Decided by hashing the file before reading it as an article: after a
    fresh checkout of the large corpus (every file's time new), an update
    parsed and analysed all 11,418 files to find them unchanged (36 s).
    """
    if source.size != known[0]:
        return False
    try:
        return content_hash(source.path.read_bytes()) == known[2]
    except OSError:
        return False  # reported when it is read as an article


def _prepare(source: Source):
    """Worker-side: read, parse and analyse one article (the expensive part of indexing)."""
    article, problem, sha1 = _load(source)
    if article is None:
        return source.rel, None, problem, sha1
    return source.rel, _document(article), None, sha1


_SCHEMA = None


def _schema() -> fields.Schema:
    global _SCHEMA
    if _SCHEMA is None:
        _SCHEMA = schema()
    return _SCHEMA


def _document(article: Article) -> dict:
    """The Whoosh fields of an article."""
    day = article.date.toordinal() if article.date else 0
    meta = {
        "slug": article.slug,
        "title": article.title,
        "date": article.date.isoformat() if article.date else None,
        "tags": article.tags,
        "contentType": article.content_type,
        "description": article.description or article.summary,
        "summary": article.summary,
        "image": article.image,
        "readTime": article.read_time,
        "featured": article.featured,
        "relatedProducts": article.related_products,
        "sha1": article.sha1,
    }
    abstract = "\n".join(x for x in (article.description, article.summary) if x)
    fields_ = _schema()
    doc = dict(
        path=article.path,
        slug=article.slug,
        title=fields_["title"].preindex(article.title),
        tags=fields_["tags"].preindex("\n".join(article.tags)),
        abstract=fields_["abstract"].preindex(abstract),
        body=fields_["body"].preindex(article.body),
        _stored_body=article.body,
        _compounds=analysis.title_compounds(article.title),  # for suggest; kept in the manifest
        day=day,
        meta=meta,
    )
    if article.tags:
        doc["tag"] = ",".join(t.replace(",", " ") for t in article.tags)
    if article.content_type:
        doc["type"] = article.content_type
    if article.related_products:
        doc["product"] = ",".join(p.replace(",", " ") for p in article.related_products)
    return doc


def _write_here(ix, sources: list[Source], bar: Progress) -> list[tuple]:
    """Analyse and write every article in this process."""
    outcomes: list[tuple] = []

    def done(batch: list[tuple]) -> None:
        outcomes.extend(batch)
        bar.step(len(batch))

    segments = _write_segments(ix, [[(i, s)] for i, s in enumerate(sources)], done)
    _Writer(ix, compound=False).commit_segments(segments)
    return outcomes


def _write_segments(ix, batches: list[list[tuple[int, Source]]], done) -> list:
    """Add the articles of *batches* to new segments; call done(outcomes) after each batch.

    A segment's postings are held in memory until it is written, so the
    articles are cut into segments of at most SEGMENT_BYTES of files (equal
    parts, no small remainder), and a segment is also closed past
    MAX_SEGMENT_POSTINGS: that bounds the memory of a build whatever the
    size of the corpus.
    """
    total = sum(source.size for batch in batches for _, source in batch)
    budget = total / max(1, math.ceil(total / SEGMENT_BYTES))
    segments = []
    writer, size = _Writer(ix, compound=False, _lk=False), 0
    try:
        for batch in batches:
            done([_add(writer, i, source) for i, source in batch])
            size += sum(source.size for _, source in batch)
            if size >= budget * 0.999 or writer.postings >= MAX_SEGMENT_POSTINGS:
                segments.append(writer._finalize_segment())
                writer, size = _Writer(ix, compound=False, _lk=False), 0
        if writer._added:
            segments.append(writer._finalize_segment())
        else:
            writer._close_segment()
    except BaseException:
        with contextlib.suppress(Exception):  # the first error is the one to report
            writer._close_segment()
        raise
    return segments


def _add(writer: "_Writer", i: int, source: Source) -> tuple:
    """Read, analyse and add one article: (i, rel, slug or None, problem, sha1, title compounds)."""
    rel, doc, problem, sha1 = _prepare(source)
    if doc is None:
        return i, rel, None, problem, sha1, []
    writer.add_document(**doc)
    return i, rel, doc["slug"], None, sha1, doc["_compounds"]


def _write_in_workers(ix, sources: list[Source], workers: int, bar: Progress) -> list[tuple]:
    """Analyse and write the articles in *workers* processes, each writing segments of its own.

    Whoosh writes a segment in Python, so one writing process would be the
    bottleneck; here the writing is shared like the analysis.  Each worker
    takes a run of consecutive files of about equal bytes, and the table of
    contents lists its segments in that order, so documents are numbered in
    file order whatever the number of workers: results that tie (equal
    scores, the same date) are ordered by document number, and a machine
    with more cores must not order them differently.  The table of
    contents is written here, once all are done.
    """
    numbered = list(enumerate(sources))
    batches = [numbered[i:i + BATCH] for i in range(0, len(numbered), BATCH)]
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    procs = [context.Process(target=_segment_worker, args=(ix, share, k, results), daemon=True)
             for k, share in enumerate(_shares(batches, workers))]
    outcomes: list[tuple] = []
    segments: dict[int, list] = {}
    try:
        for proc in procs:
            proc.start()
        while len(segments) < workers:
            try:
                kind, k, payload = results.get(timeout=0.5)
            except queue.Empty:
                dead = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
                if dead:
                    raise SearchError(f"an indexing process died (exit code {dead[0]}); "
                                      "the previous index is still being served") from None
                continue
            if kind == "batch":
                outcomes.extend(payload)
                bar.step(len(payload))
            elif kind == "segments":
                segments[k] = payload
            else:
                raise SearchError(f"indexing failed: {payload}")
        for proc in procs:
            proc.join()
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.kill()
                proc.join()
    _Writer(ix, compound=False).commit_segments([s for k in sorted(segments) for s in segments[k]])
    return outcomes


def _shares(batches: list[list[tuple[int, Source]]], workers: int) -> list[list]:
    """*batches* cut into *workers* runs of consecutive batches of about equal bytes."""
    sizes = [sum(source.size for _, source in batch) for batch in batches]
    total = sum(sizes) or 1
    shares: list[list] = [[] for _ in range(workers)]
    done = 0
    for batch, size in zip(batches, sizes):
        shares[min(workers - 1, int((done + size / 2) * workers / total))].append(batch)
        done += size
    return shares


def _segment_worker(ix, batches: list[list[tuple[int, Source]]], k: int, results) -> None:
    """In a worker process: write the articles of *batches* to new segments, reporting each batch."""
    try:
        segments = _write_segments(ix, batches, lambda outcomes: results.put(("batch", k, outcomes)))
        results.put(("segments", k, segments))
    except BaseException as e:  # noqa: BLE001 - reported to the parent, which fails the build
        if isinstance(e, OSError):
            results.put(("error", k, disk_error_message(e)))
        else:
            results.put(("error", k, f"{type(e).__name__}: {e}"))


def default_workers() -> int:
    """Analysis processes: one per core."""
    return max(1, len(os.sched_getaffinity(0)))


# --- build ---------------------------------------------------------------------------------


def build(content_dir: Path, index_dir: Path, progress: bool = False, workers: int | None = None,
          lock_wait: float = 0.0) -> Report:
    """Rebuild the whole index into a new generation, then switch to it atomically."""
    started = time.monotonic()
    report = Report()
    index_dir.mkdir(parents=True, exist_ok=True)
    with WriterLock(index_dir, lock_wait):
        _remove_stale_builds(index_dir)
        sources = scan(content_dir, report)
        name = f"gen-{dt.datetime.now(dt.timezone.utc):%Y%m%d%H%M%S}-{uuid.uuid4().hex[:8]}"
        tmp = index_dir / f".build-{name[4:]}"
        tmp.mkdir()
        try:
            ix = whoosh_index.create_in(str(tmp), schema())
            bar = Progress("indexing", len(sources), progress)
            workers = workers or default_workers()
            if workers > 1 and len(sources) >= 50:
                outcomes = _write_in_workers(ix, sources, workers, bar)
            else:
                outcomes = _write_here(ix, sources, bar)
            bar.close()
            manifest = {}
            slugs: dict[str, str] = {}
            duplicates = []
            for i, rel, slug, problem, sha1, compounds in sorted(outcomes):  # in file order: the first keeps a slug
                if slug is None:
                    report.skipped.append((rel, problem))
                elif slug in slugs:
                    report.skipped.append((rel, f"slug {slug!r} is already used by {slugs[slug]}"))
                    duplicates.append(rel)
                else:
                    slugs[slug] = rel
                    manifest[rel] = [sources[i].size, sources[i].mtime_ns, sha1, slug, compounds]
                    report.indexed += 1
            if duplicates:
                writer = ix.writer()
                for rel in duplicates:
                    writer.delete_by_term("path", rel)
                writer.commit(merge=False)
            _write_manifest(tmp, manifest)
            _write_atomic(tmp / INFO, json.dumps(_info(report.indexed)))
            previous = _served_name(index_dir)
            gen = index_dir / name
            os.rename(tmp, gen)
            _fsync_dir(index_dir)
            if (index_dir / CURRENT).is_dir():  # damaged by hand: it cannot be replaced atomically
                shutil.rmtree(index_dir / CURRENT)
            _write_atomic(index_dir / CURRENT, name + "\n")
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        _remove_old_generations(index_dir, keep={name, previous})
    report.generation = name
    report.seconds = time.monotonic() - started
    return report


def _info(documents: int) -> dict:
    return {"built_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "documents": documents}


def _write_manifest(gen: Path, manifest: dict) -> None:
    _write_atomic(gen / MANIFEST, json.dumps(manifest, ensure_ascii=False, separators=(",", ":")))


def _remove_stale_builds(index_dir: Path) -> None:
    """Builds that died left .build-* folders; we hold the lock, so none is alive."""
    for stale in index_dir.glob(".build-*"):
        shutil.rmtree(stale, ignore_errors=True)
    for stale in index_dir.glob(".*.tmp"):
        stale.unlink(missing_ok=True)


def _served_name(index_dir: Path) -> str | None:
    try:
        return current_generation(index_dir).name
    except IndexMissing:
        return None


def _remove_old_generations(index_dir: Path, keep: set) -> None:
    """Keep the new generation and the one served before it (servers may still be reading it).

    Anything else is a leftover: older generations, or one a killed build
    renamed into place but never switched to.
    """
    for old in index_dir.glob("gen-*"):
        if old.name not in keep:
            shutil.rmtree(old, ignore_errors=True)


# --- update --------------------------------------------------------------------------------


def update(content_dir: Path, index_dir: Path, progress: bool = False, lock_wait: float = 0.0) -> Report:
    """Index new and changed files, remove deleted ones, leave the rest alone."""
    try:
        gen = current_generation(index_dir)
    except IndexMissing:
        return build(content_dir, index_dir, progress=progress, lock_wait=lock_wait)
    started = time.monotonic()
    report = Report(generation=gen.name)
    with WriterLock(index_dir, lock_wait):
        gen = current_generation(index_dir)  # a build may have switched while we waited
        report.generation = gen.name
        try:
            manifest = json.loads((gen / MANIFEST).read_text())
        except (OSError, ValueError):
            manifest = {}
        sources = scan(content_dir, report)
        changed: list[tuple[Source, bool]] = []
        touched: list[Source] = []  # a new time, the same content (a checkout, a copy): hashed, not read again
        for src in sources:
            known = manifest.get(src.rel)
            if known and known[0] == src.size and known[1] == src.mtime_ns:
                report.unchanged += 1
            elif known and _same_content(src, known):
                touched.append(src)
                report.unchanged += 1
            else:
                changed.append((src, known is not None))
        present = {s.rel for s in sources}
        deleted = [rel for rel in manifest if rel not in present]
        if not changed and not deleted:
            # Nothing to write, not even the touched files' new times: writing the manifest
            # changes the served generation's folder, which makes servers reopen the index.
            # Until a real change records them, each update hashes those files again (0.4 s
            # for the whole large corpus).
            report.seconds = time.monotonic() - started
            return report
        ix, _ = open_index(index_dir)
        slug_owner = {v[3]: rel for rel, v in manifest.items()}
        writer = ix.writer(limitmb=64, compound=False)
        bar = Progress("updating", len(changed), progress)
        try:
            for rel in deleted:
                writer.delete_by_term("path", rel)
                slug_owner.pop(manifest.pop(rel)[3], None)
                report.deleted += 1
            for src, known in changed:
                bar.step()
                rel, doc, problem, sha1 = _prepare(src)
                if doc is None:
                    report.skipped.append((rel, problem))
                    if known:  # a file that broke is taken out rather than left stale
                        writer.delete_by_term("path", rel)
                        slug_owner.pop(manifest.pop(rel)[3], None)
                        report.deleted += 1
                    continue
                owner = slug_owner.get(doc["slug"])
                if owner is not None and owner != rel:
                    report.skipped.append((rel, f"slug {doc['slug']!r} is already used by {owner}"))
                    continue
                writer.update_document(**doc)
                if known:
                    slug_owner.pop(manifest[rel][3], None)
                slug_owner[doc["slug"]] = rel
                manifest[rel] = [src.size, src.mtime_ns, sha1, doc["slug"], doc["_compounds"]]
                if known:
                    report.updated += 1
                else:
                    report.indexed += 1
            bar.close()
            writer.commit()
        except BaseException:
            writer.cancel()
            raise
        # The manifest only caches what is indexed: if we die before this line,
        # the next update re-indexes the same files, which update_document makes
        # idempotent.
        for src in touched:
            manifest[src.rel][:2] = [src.size, src.mtime_ns]
        _write_manifest(gen, manifest)
        _write_atomic(gen / INFO, json.dumps(_info(len(manifest))))
    report.seconds = time.monotonic() - started
    return report


def disk_error_message(error: OSError) -> str:
    """A user message for an OSError during a build."""
    if error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return (f"The disk is full ({error.strerror}); the previous index is still being served. "
                "Free some space and run the build again.")
    return f"Cannot write the index: {error.strerror or error}. The previous index is still being served."
