"""Japanese analysis shared by indexing and querying.

The pipeline is ``JapaneseTokenizer() | VariantFilter()``:

1. A character filter folds width (NFKC, composing half-width voiced marks),
   expands the iteration marks ゝゞヽヾ and 々々, and keeps a map from every
   normalised character back to the original text so that highlighting
   offsets stay right.
2. Technical words (``Next.js``, ``C#``, ``x86-64``, ``node_modules``) are cut
   out by a regular expression before MeCab sees them: MeCab splits them at
   every symbol.  MeCab reads a placeholder noun in their place.
3. Everything else goes through MeCab (fugashi + unidic-lite), which prints a
   short key line per morpheme (surface, context ids, cost); what the
   analyzer makes of a line is cached, and the features of a new line
   (part of speech, lemma, orthographic base form, reading) are looked up
   once.  Each morpheme becomes one *unit*: its folded written form plus the
   variants UniDic knows (orthographic base form, lemma, reading).
4. Particles, auxiliary verbs and symbols are stop words; they take no
   position, so "画像の処理" and "画像処理" are the same phrase.

In the index a unit is stored as its written form at one position, with its
variants at the same position behind a one-character marker: ``=`` for the
base form and lemma, ``~`` for the reading.  Queries build their own
alternatives from the same units (see :func:`query_units`), which lets the
searcher rank exact written forms above variants above readings.

>>> [t.text for t in ANALYZER("ﾌﾟﾘﾝﾀｰで泳いだ")]
['プリンタ', '泳い', '=泳ぐ', '~オヨイ']
"""

from __future__ import annotations

import re
import sys
import threading
import unicodedata
from dataclasses import dataclass
from decimal import Decimal
from itertools import compress, count, repeat
from operator import is_
from pathlib import Path

from whoosh.analysis import Filter, Token, Tokenizer

VARIANT = "="
READING = "~"

# --- character filter -------------------------------------------------------

_HIRA_TO_KATA = {c: c + 0x60 for c in range(0x3041, 0x3097)}
_KATA_TO_HIRA = {v: k for k, v in _HIRA_TO_KATA.items()}
_KANJI = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff々〆]")
_KATAKANA_WORD = re.compile(r"^[\u30a0-\u30ffー]+$")
_OKURIGANA = re.compile(r"^([\u4e00-\u9fff]{2,})[\u3041-\u3093]{1,2}$")
_INNER_OKURIGANA = re.compile(r"^[\u4e00-\u9fff]+[\u3041-\u3093]{1,2}[\u4e00-\u9fff]+[\u3041-\u3093]{0,2}$")
_HIRAGANA = re.compile(r"[\u3041-\u3093]")
_KANA_ONLY = re.compile(r"^[\u3041-\u309f\u30a0-\u30ffー]+$")


_ITERATION_MARKS = (0x309D, 0x309E, 0x30FD, 0x30FE, 0x3005)  # ゝゞヽヾ々
# Astral blocks with characters NFKC changes (math letters, enclosed forms,
# compatibility ideographs, combining marks), checked over all of Unicode
# 14 by tests/test_analysis.py; emoji (U+1F300-1FAFF) are stable.
_ASTRAL = "\U00010000-\U0001F2FF\U0001FB00-\U0001FBFF\U0002F800-\U0002FA1F"


def _char_class(codepoints: list[int]) -> re.Pattern:
    """A character class of *codepoints* (ascending BMP code points) plus _ASTRAL."""
    ranges: list[list[int]] = []
    for cp in codepoints:
        if ranges and ranges[-1][1] == cp - 1:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp])
    body = "".join(re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges)
    return re.compile(f"[{body}{_ASTRAL}]")


def _normalisation_tables() -> tuple[re.Pattern, re.Pattern, dict[str, str]]:
    """(unstable, irregular, simple), see below; one pass over the BMP at import."""
    unstable, irregular, simple = [], [], {}
    for cp in range(0x80, 0x10000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        ch = chr(cp)
        combining = unicodedata.combining(ch)
        if not combining and cp not in _ITERATION_MARKS and unicodedata.is_normalized("NFKC", ch):
            continue
        nfkc = unicodedata.normalize("NFKC", ch)
        if nfkc != ch or cp in _ITERATION_MARKS:
            unstable.append(cp)
        if len(nfkc) == 1 and not unicodedata.combining(nfkc) and cp not in _ITERATION_MARKS:
            if nfkc != ch:
                simple[ch] = nfkc
        elif nfkc != ch or combining or ch != "々":
            irregular.append(cp)
    return _char_class(unstable), _char_class(irregular), simple


# _UNSTABLE: characters NFKC changes, and iteration marks (which we expand).
# _IRREGULAR: those whose normalisation moves offsets or depends on their
# neighbours: NFKC to several characters or a combining one, combining marks
# (they compose with what precedes them), iteration marks other than 々.
# _SIMPLE: the others, each to its one NFKC character (Ａ -> A, ｶ -> カ).
_UNSTABLE, _IRREGULAR, _SIMPLE = _normalisation_tables()
_SPECIAL = re.compile(_IRREGULAR.pattern[:-1] + "々]")  # what normalize() handles one by one
_VOICED = {"ゝ": 0, "ゞ": 1, "ヽ": 0, "ヾ": 1}


@dataclass
class Normalized:
    """Normalised text and, when lengths changed, each character's span in the original."""

    text: str
    starts: list[int] | None = None
    ends: list[int] | None = None

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original character span of normalised characters [start, end)."""
        if self.starts is None:
            return start, end
        return self.starts[start], self.ends[end - 1]


def normalize(text: str, offsets: bool = True) -> Normalized:
    """NFKC-fold *text* and expand iteration marks, keeping offsets into the original.

    Without *offsets* only the text is made (indexing needs no offsets).
    """
    if not _UNSTABLE.search(text):
        return Normalized(text)
    folded = _UNSTABLE.sub(_fold_simple, text)  # the one-to-one changes: offsets do not move
    if not _IRREGULAR.search(text) and "々々" not in text:
        return Normalized(folded)
    out: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    last = 0
    moved = False  # a character became several, or two became one
    for m in _SPECIAL.finditer(folded):
        i = m.start()
        if i > last:
            out.extend(folded[last:i])
            if offsets:
                starts.extend(range(last, i))
                ends.extend(range(last + 1, i + 1))
        last = i + 1
        pieces = _fold_char(folded[i], out)
        moved = moved or len(pieces) != 1
        for piece in pieces:
            if unicodedata.combining(piece) and out:
                composed = unicodedata.normalize("NFC", out[-1] + piece)
                if len(composed) == 1:
                    out[-1] = composed
                    moved = True
                    if offsets:
                        ends[-1] = i + 1
                    continue
            out.append(piece)
            if offsets:
                starts.append(i)
                ends.append(i + 1)
    if last < len(folded):
        out.extend(folded[last:])
        if offsets:
            starts.extend(range(last, len(folded)))
            ends.extend(range(last + 1, len(folded) + 1))
    if not offsets or not moved:
        return Normalized("".join(out))
    return Normalized("".join(out), starts, ends)


def _fold_simple(m: re.Match) -> str:
    return _SIMPLE.get(m.group(), m.group())


def _fold_char(ch: str, out: list[str]) -> str:
    """NFKC of one character; an iteration mark repeats what precedes it in *out*."""
    if ch in _VOICED and out:
        prev = out[-1]
        if _VOICED[ch]:
            voiced = unicodedata.normalize("NFC", prev + "\u3099")
            return voiced if len(voiced) == 1 else prev
        return prev
    if ch == "々" and len(out) >= 3 and out[-1] == "々" and _KANJI.match(out[-2]) and _KANJI.match(out[-3]):
        # 部分々々 -> 部分部分: the second mark completes a repeated pair.
        out[-1] = out[-3]
        return out[-2]
    return unicodedata.normalize("NFKC", ch)


# --- term folding -----------------------------------------------------------


def fold(term: str) -> str:
    """Case-fold a term and drop a katakana word's trailing long-vowel mark.

    サーバー and サーバ, ユーザー and ユーザ are the same word spelt by different
    style guides (JIS Z 8301 vs everyday usage); like kuromoji's
    KatakanaStemFilter we drop the final ー of katakana words of four or more
    characters, so short words such as カー or キー keep it.
    """
    term = term.lower()
    if len(term) >= 4 and term[-1] == "ー" and _KATAKANA_WORD.match(term):
        term = term.rstrip("ー")
    return term


def to_katakana(text: str) -> str:
    """Hiragana to katakana, leaving everything else."""
    return text.translate(_HIRA_TO_KATA)


def to_hiragana(text: str) -> str:
    """Katakana to hiragana, leaving everything else."""
    return text.translate(_KATA_TO_HIRA)


def is_kana(text: str) -> bool:
    """True when *text* is only hiragana, katakana and ー."""
    return bool(_KANA_ONLY.match(text))


# --- numbers ----------------------------------------------------------------

_DIGITS = {"〇": 0, "零": 0, "一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_SMALL_UNITS = {"十": 10, "百": 100, "千": 1000}
_LARGE_UNITS = {"万": 10**4, "億": 10**8, "兆": 10**12}
_ADJACENT_DIGITS = re.compile("[一二三四五六七八九][一二三四五六七八九]")
_KANJI_NUMBER = re.compile(r"^[〇零一二三四五六七八九十百千万億兆0-9]+$")


def kanji_to_number(text: str) -> str | None:
    """Read a kanji numeral (三百, 十五, 二〇二六, 1万) as Arabic digits, else None."""
    if not _KANJI_NUMBER.match(text) or text.isascii():
        return None
    positional = "〇" in text or "零" in text
    if all(c in _DIGITS or c.isdigit() for c in text):
        if 1 < len(text) < 4 and not positional:
            return None  # 二三日, 四五人, 五六回: two or three days, not 23; 一二三 a name
        return str(int("".join(str(_DIGITS.get(c, c)) for c in text)))
    if not positional and _ADJACENT_DIGITS.search(text):
        return None  # 十二三歳, 三四十人: about 12 or 13, 30 or 40
    total = section = 0
    number = None
    for c in text:
        if c.isdigit() and c.isascii():
            number = (number or 0) * 10 + int(c)
        elif c in _DIGITS:
            number = (number or 0) * 10 + _DIGITS[c]
        elif c in _SMALL_UNITS:
            section += (1 if number is None else number) * _SMALL_UNITS[c]
            number = None
        else:
            total += (section + (number or 0) or 1) * _LARGE_UNITS[c]
            section, number = 0, None
    return str(total + section + (number or 0))


def mixed_number(word: str) -> str | None:
    """A number written in digits with kanji units (1万, 2.8万, 1000万, 5千万, 1万3,980, 1万4千), as digits.

    None unless the value is a whole number: 10000円 finds 1万円, 13980円 finds
    1万3,980円, and 1000万円 is not 10000円.
    """
    total = section = Decimal(0)
    number = None
    for token in _MIXED_PARTS.findall(word):
        if token[0].isdigit():
            number = Decimal(token.replace(",", ""))
        elif token in _SMALL_UNITS:
            section += (1 if number is None else number) * _SMALL_UNITS[token]
            number = None
        else:
            total += (section + (number or 0) or 1) * _LARGE_UNITS[token]
            section, number = Decimal(0), None
    value = total + section + (number or 0)
    return str(int(value)) if value == value.to_integral_value() else None


_MIXED_PARTS = re.compile(r"[0-9][0-9,]*(?:\.[0-9]+)?|[十百千万億兆]")


# --- units ------------------------------------------------------------------

# Technical words: letters/digits joined by . - _ + # / ' and ending in # or +
# (C#, C++), optionally starting with a dot (.NET).
# A number written with thousands separators (1,000, 19,800) is one word, indexed without them.
# Digits with kanji units (1万, 2.8万, 1万3,980, 1万4千) are one number too.
_KANJI_UNIT_NUMBER = (r"(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?[十百千万億兆]+"
                      r"(?:(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?[十百千万億兆]*)*(?![0-9A-Za-z])")
_TECH = re.compile(r"(?=[.A-Za-z0-9])(?<![A-Za-z0-9])(?:" + _KANJI_UNIT_NUMBER + r"|\.?(?:[0-9]{1,3}(?:,[0-9]{3})+(?![0-9])|[A-Za-z0-9])"
                   r"[A-Za-z0-9_]*(?:[.\-+#/'&][A-Za-z0-9][A-Za-z0-9_]*)*[#+]*)")
_TECH_SPLIT = re.compile(f"({_TECH.pattern})")
_KANJI_UNITS = re.compile("[十百千万億兆]")
_DECIMAL_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)+$")
_VERSION = re.compile(r"v[0-9]+(?:\.[0-9]+)+$")
_GLUED_VERSION = re.compile(r"([a-z]{2,})([0-9]+(?:\.[0-9]+)+)$")
_JOINERS = re.compile(r"(?<![0-9])[-.]|[-.](?![0-9])")  # not between digits: v1.2.3 stays v1.2.3
_LETTER = re.compile(r"[a-z]")
_TECH_RUNS = re.compile(r"([0-9]+)([a-z]*)|([a-z]+)")  # a number with the letters written on it, or letters
# Parts of speech that are not search terms (UniDic pos1).
STOP_POS = frozenset({"助詞", "助動詞", "補助記号", "記号", "空白", "フィラー", "感動詞"})


@dataclass(frozen=True, slots=True)
class Term:
    """What the analyzer makes of one word type; shared by all its occurrences in a text.

    Tens of thousands of these stay cached per process, so what can be
    derived (the index terms beside the written form) is kept once, as the
    UTF-8 keys the index stores.
    """

    text: str  # folded written form: what the index stores at the word's position
    pos: str = ""  # UniDic part of speech, or "tech" / "number"
    variants: tuple[str, ...] = ()  # base form / lemma, folded, when they differ
    reading: str = ""  # katakana reading, when the written form has kanji
    parts: tuple[str, ...] = ()  # pieces of a technical compound (next, js)
    stop: bool = False
    keys: tuple[bytes, ...] = ()  # text and the extras in UTF-8, as the index stores them
    surface: str = ""  # as MeCab printed it (NFKC text), for a word read by MeCab

    @property
    def extras(self) -> tuple[str, ...]:
        """The index terms stored beside the written form at the same position."""
        return tuple(key.decode("utf-8") for key in self.keys[1:])


def _term(text: str, pos: str, variants: tuple[str, ...] = (), reading: str = "",
          parts: tuple[str, ...] = (), stop: bool = False, surface: str = "") -> Term:
    keys: tuple[bytes, ...] = ()
    if not stop:
        extras = (*(VARIANT + v for v in variants), *((READING + reading,) if reading else ()),
                  *(p for p in parts if p != text))
        keys = tuple(t.encode("utf-8") for t in (text, *extras))
    return Term(text, pos, variants, reading, parts, stop, keys, surface)


@dataclass(slots=True)
class Unit:
    """One word of a text with its span: a Term at a place."""

    text: str
    start: int  # character span in the original text
    end: int
    pos: str = ""
    variants: tuple[str, ...] = ()
    reading: str = ""
    parts: tuple[str, ...] = ()
    stop: bool = False


class _TaggerPool(threading.local):
    """One MeCab tagger per thread and output format: MeCab is not thread-safe."""

    key = both = None


_TAGGERS = _TaggerPool()


# MeCab prints each morpheme as one short line, "surface<TAB>ids<TAB>cost"
# (search/mecabrc, output format "key"): the dictionary entry's left and
# right context ids and its word cost tell entries with the same surface
# apart as far as MeCab itself can (entries alike in all three, such as 非力
# read ヒリキ or ヒリョク, cost the same in any context, and MeCab takes the
# same one every time), and cost MeCab nothing to print, where printing the
# features (part of speech, lemma, ...) adds a quarter to its time.  The
# features of a line not yet cached are printed by a second tagger (see
# _Misses).
_MECABRC = Path(__file__).with_name("mecabrc")


def _tagger(output: str = "key"):
    """This thread's MeCab tagger for an output format of search/mecabrc ("key" or "both").

    Each tagger maps the dictionary anew, which adds the pages both touch to
    the process's RSS a second time (not to its memory: they are the same
    file pages).  So only indexing (:func:`terms`) reads key lines; a
    serving process, which analyses queries and snippets with
    :func:`scan`, has the one "both" tagger.
    """
    tagger = getattr(_TAGGERS, output)
    if tagger is None:
        import fugashi
        import unidic_lite

        tagger = fugashi.GenericTagger(f'-r "{_MECABRC}" -d "{unidic_lite.DICDIR}" -O{output}')
        setattr(_TAGGERS, output, tagger)
    return tagger


def _clean_lemma(lemma: str, surface: str) -> str:
    """UniDic's lemma without its quirks, or "" when it is no use as a variant.

    Loanword lemmas carry an English gloss (サーバー-server); proper nouns
    have a katakana lemma that is a reading, not a spelling (大阪 -> オオサカ).
    """
    if not lemma or lemma == "*":
        return ""
    dash = lemma.find("-", 1)
    if dash > 0:
        lemma = lemma[:dash]
    if _KATAKANA_WORD.match(lemma) and not _KATAKANA_WORD.match(surface):
        return ""
    return lemma


def units(text: str) -> list[Unit]:
    """Split *text* into units, with spans into the original *text* (see :func:`scan`)."""
    return [Unit(t.text, s, e, t.pos, t.variants, t.reading, t.parts, t.stop) for t, s, e in scan(text)]


def scan(text: str) -> list[tuple[Term, int, int]]:
    """The words of *text* as (term, start, end), spans into the original *text*."""
    return _scan(text, True)


def terms(text: str) -> list[Term]:
    """The words of *text*, as :func:`scan` finds them, without their spans (what indexing needs)."""
    return _scan(text, False)


# A technical word reaches MeCab as this one character between spaces: MeCab
# reads it as a noun (so the words around it are read as beside a noun), the
# spaces keep it from joining a neighbour (Ｘ線), and NFKC-normalised text
# never contains a full-width letter, so it cannot be a word of the text.
_PLACEHOLDER = "Ｘ"
_TECH_GAP = f" {_PLACEHOLDER} "


def _scan(text: str, spans: bool) -> list:
    """MeCab reads the whole text once (one call is much cheaper than one per
    stretch between technical words), with each technical word replaced by a
    placeholder.  This loop runs once per token of every article, so
    everything that depends only on the morpheme is computed once per
    distinct MeCab line (:func:`_morpheme`, cached): a token costs a
    dictionary lookup and an append, plus a ``find`` when spans are wanted.
    The two loops below are the same walk, with and without spans.
    """
    norm = normalize(text, spans)
    ntext = norm.text
    result: list = []
    if not ntext or ntext.isspace():
        return result
    parts = _TECH_SPLIT.split(ntext)  # text, technical word, text, ...
    words = parts[1::2]
    mtext = _TECH_GAP.join(parts[0::2]) if words else ntext
    tech_spans = []
    if spans and words:
        position = 0
        for i, part in enumerate(parts):
            if i % 2:
                tech_spans.append((position, position + len(part)))
            position += len(part)
    next_tech = 0
    starts, ends = norm.starts, norm.ends
    numeral_run = ""  # the numeral being read, while numeral morphemes follow each other
    delta = 0  # position in ntext minus position in mtext, past the last technical word
    append = result.append
    if not spans and _MISSES.expected(len(mtext)) < _COLD:  # key lines: indexing only (see _tagger)
        lines = _tagger().parse(mtext).split("\n")
        missed = _Misses(lines, mtext)
    else:  # most lines would miss the caches: have MeCab print the features too, and keep them for those
        both = _tagger("both").parse(mtext).split("\n")
        lines = both[0::2]
        missed = _Misses(lines, mtext, both[1::2])
    if not spans:
        # The indexing loop: most lines are plain words already seen, found
        # by one lookup each in a dict that holds only those, all in C
        # (map); the lines not found there (numerals, technical words,
        # words not cached, the empty last line) are then read one by one.
        found = list(map(_PLAIN_TERMS.get, lines))
        missing = list(compress(count(), map(is_, found, repeat(None))))
        if not missing:
            missed.settle()
            return found
        get = _MORPHEMES.get
        done = 0  # lines before this are in result
        for i in missing:
            if i > done:
                result += found[done:i]
                numeral_run = ""
            done = i + 1
            line = lines[i]
            if not line:
                continue
            surface, length, term, kind = get(line) or missed(line)
            if kind is _PLAIN:
                append(term)
                numeral_run = ""
            elif kind is _TECH_WORD:
                append(_tech_term(words[next_tech]))
                next_tech += 1
                numeral_run = ""
            elif numeral_run is _VAGUE_RUN or not numeral_run and (
                    surface in _LARGE_UNITS or result and _vague(result[-1].text)):
                numeral_run = _VAGUE_RUN  # 数百万, 何万, 万年筆: no number (万 is not 10000 here)
                append(_numeral_word(surface))
            elif numeral_run:
                numeral_run += surface
                value = kanji_to_number(numeral_run)
                result[-1] = _number_term(value) if value else _numeral_word(numeral_run)  # 二三: a word
            else:
                numeral_run = surface
                append(term)
        result += found[done:]
        missed.settle()
        return result
    plain, get = _PLAIN_TERMS.get, _MORPHEMES.get
    find = mtext.find
    offset = 0
    for line in lines:
        term = plain(line)
        if term is not None:
            surface = term.surface
            length, kind = len(surface), _PLAIN
        else:
            if not line:
                continue
            surface, length, term, kind = get(line) or missed(line)
        if kind is _PLAIN:
            numeral_run = ""
            start = find(surface, offset)  # MeCab skips only whitespace between morphemes
            offset = start + length
            if starts is None:
                append((term, start + delta, offset + delta))
            else:
                append((term, starts[start + delta], ends[offset + delta - 1]))
        elif kind is _TECH_WORD:
            numeral_run = ""
            tech_start, tech_end = tech_spans[next_tech]
            offset = find(_PLACEHOLDER, offset) + 2  # past the space after it
            delta = tech_end - offset
            append((_tech_term(words[next_tech]), *norm.span(tech_start, tech_end)))
            next_tech += 1
        else:  # a numeral: consecutive numeral morphemes (十 五) read as one number
            start = find(surface, offset)
            offset = start + length
            if starts is None:
                s, e = start + delta, offset + delta
            else:
                s, e = starts[start + delta], ends[offset + delta - 1]
            if numeral_run is _VAGUE_RUN or not numeral_run and (
                    surface in _LARGE_UNITS or result and _vague(result[-1][0].text)):
                numeral_run = _VAGUE_RUN
                append((_numeral_word(surface), s, e))
            elif numeral_run:
                numeral_run += surface
                value = kanji_to_number(numeral_run)
                s = result[-1][1]
                result[-1] = (_number_term(value) if value else _numeral_word(numeral_run), s, e)
            else:
                numeral_run = surface
                append((term, s, e))
    missed.settle()
    return result


_PLAIN, _TECH_WORD, _NUMERAL = "plain", "tech", "numeral"
_PLAIN_TERMS: dict[str, Term] = {}  # MeCab line -> term, for the plain words
_MORPHEMES: dict[str, tuple] = {}  # MeCab line -> (surface, length, term, kind), for the others
# Lines cached per process (~0.67 KB each with the line): the large corpus has
# 130k distinct lines, 106k of them met more than once; a text with a line
# not cached is read again with features printed (see _Misses).
_MORPHEME_CACHE = 150_000


_SEEN_ONCE: set[int] = set()  # hashes of lines met once since the cache was half full


class _MissRate(threading.local):
    """Lines missing the caches per character of text read, recently, in this thread.

    Exponential averages of both over the texts read: a process that has
    just started, or a build (new words keep coming), has a high rate.
    """

    misses = 1.0
    chars = 1.0

    def expected(self, length: int) -> float:
        """How many lines a text of *length* characters is likely to have that miss the caches."""
        return self.misses / self.chars * length

    def count(self, misses: int, length: int) -> None:
        self.misses = 0.9 * self.misses + misses
        self.chars = 0.9 * self.chars + length


_MISSES = _MissRate()
# A text likely to have a line missing the caches is read with every
# morpheme's features printed along with its key line (output "both",
# about a quarter more MeCab time) rather than with keys only, since a
# line that misses has the text read again with features.  Reading keys
# first wins while a miss is less likely than about one in five; misses
# come at a rate per character (titles rarely have a new word, an
# article's body usually does in a build), so: past this expected number
# of missing lines.
_COLD = 0.25


class _Misses:
    """The lines of one text that are in neither cache, analysed together when the first is met."""

    __slots__ = ("features", "infos", "lines", "mtext")

    def __init__(self, lines: list[str], mtext: str, features: list[str] | None = None):
        self.lines, self.mtext, self.features, self.infos = lines, mtext, features, None

    def __call__(self, line: str) -> tuple[str, int, Term | None, str]:
        if self.infos is None:
            wanted = {line for line in self.lines
                      if line and line not in _PLAIN_TERMS and line not in _MORPHEMES}
            features = self.features
            if features is None:
                # MeCab finds the same morphemes whatever it prints: one "both"
                # output pair of lines per "key" output line.
                both = _tagger("both").parse(self.mtext).split("\n")
                if both[0::2] != self.lines:
                    raise RuntimeError("MeCab read a text differently twice")
                features = both[1::2]
            found = {key: f for key, f in zip(self.lines, features) if key in wanted}
            self.infos = {line: _morpheme_info(line, found[line].split("\t")) for line in wanted}
        return self.infos[line]

    def settle(self) -> None:
        """Count this text's misses in the recent rate."""
        _MISSES.count(len(self.infos) if self.infos else 0, len(self.mtext))


def _morpheme_info(line: str, features) -> tuple[str, int, Term | None, str]:
    """Analyse a line not in the caches, and cache it if there is room and it is likely to come again.

    Once the cache is half full, a line is only cached the second time it
    is met: lines met once (a third of the large corpus's) would otherwise
    fill the rest of it and leave later, frequent lines out.
    """
    info = _morpheme(line.partition("\t")[0], features)
    size = len(_PLAIN_TERMS) + len(_MORPHEMES)
    if size >= _MORPHEME_CACHE:
        return info
    if size >= _MORPHEME_CACHE // 2:
        key = hash(line)
        if key not in _SEEN_ONCE:
            if len(_SEEN_ONCE) >= _MORPHEME_CACHE:  # ~4 MB
                _SEEN_ONCE.clear()
            _SEEN_ONCE.add(key)
            return info
    if info[3] is _PLAIN:
        _PLAIN_TERMS[line] = info[2]
    else:
        _MORPHEMES[line] = info
    return info


_TECH_TERMS: dict[str, Term] = {}
_NUMBER_TERMS: dict[str, Term] = {}


def _tech_parts(word: str) -> tuple[str, ...]:
    """What a technical word is also indexed as: its runs of letters and of digits (next.js:
    next, js; windows10: windows, 10), if it has more than one, and the items of a list
    written with slashes (ipad2/iphone4s: ipad2, iphone4s).

    Letters written on the end of a number are a unit, not a word of their own
    (750ml, 100ms/1, 64bit): 750 finds 750ml, ml does not, or ML (機械学習's
    synonym) would find wine bottles and MS every latency.
    """
    if _DECIMAL_NUMBER.match(word):
        return ()  # 1.5 is not found by 5, nor 61.6 by 6
    runs = _TECH_RUNS.findall(word)
    parts = [number or letters for number, _, letters in runs]
    if len(runs) < 2 and not (runs and runs[0][1]):  # one run, the word itself (or c of c#)
        parts = []
    if "/" in word:  # a list written with slashes (ipad2/iphone4/iphone4s): each item is a word too
        items = [item for item in word.split("/") if item and item != word]
        parts[:0] = [form for item in items for form in (item, joined_form(item)) if form]
    elif joined := joined_form(word):
        parts.insert(0, joined)
    elif _VERSION.match(word):  # v12.3.0 is found by 12.3.0
        parts.insert(0, word[1:])
    elif glued := _GLUED_VERSION.match(word):  # android4.0 is found by android and 4.0 (Android 4.0)
        parts.insert(0, glued.group(2))
    return tuple(dict.fromkeys(parts))


def spaced_version(word: str) -> str | None:
    """A name with its version glued on, written apart (android4.0: android 4.0), else None.

    Both spellings are common (Android4.0, Android 4.0; Firefox3.5); a query for
    the glued one also asks for the two words in a row.
    """
    glued = _GLUED_VERSION.match(word)
    return f"{glued.group(1)} {glued.group(2)}" if glued else None  # once each: a key twice at one position would count twice


def joined_form(word: str) -> str:
    """A technical word written with hyphens or dots, written without them (wi-fi: wifi, node.js:
    nodejs, gpt-4o: gpt4o), or "" if it has none or that would be no word of its own.

    Both spellings are common (WiFi, NodeJS, GPT4o): the index holds the joined
    form beside the word, and a query for the word also asks for it.  A dot or
    hyphen between digits stays (llama-3.1: llama3.1; v1.2.30 is not v12.3.0,
    3.14 not 314), and short joins are none (i.e. is not ie).
    """
    if "-" not in word and "." not in word or "/" in word:  # a slash list: its items are joined
        return ""
    joined = _JOINERS.sub("", word)
    if joined == word or len(joined) < 4 or not _LETTER.search(joined):
        return ""
    return joined


def _tech_term(word: str) -> Term:
    term = _TECH_TERMS.get(word)
    if term is None:
        if _KANJI_UNITS.search(word):  # 1万3,980
            value = mixed_number(word)
            term = _number_term(value) if value else _term(word, "number")
        else:
            folded = word.lower().replace(",", "")  # only thousands separators: 1,000 is 1000
            term = _term(folded, "tech", parts=_tech_parts(folded))
        if len(_TECH_TERMS) > 50_000:
            _TECH_TERMS.clear()
        _TECH_TERMS[word] = term
    return term


# A numeral after 数, 何 or 幾 (数百万, 何万, 十数万) is a word, not a number: 数百万円 is not 10000円.
_VAGUE = "数何幾"
_VAGUE_RUN = "\0vague"  # numeral_run while such numerals follow each other
_NUMERAL_WORDS: dict[str, Term] = {}


def _vague(text: str) -> bool:
    """数, 何, 幾, 数百, 何十: a number of some size, not a number."""
    return text[:1] in _VAGUE and all(c in _SMALL_UNITS or c in _LARGE_UNITS for c in text[1:])


def _numeral_word(surface: str) -> Term:
    term = _NUMERAL_WORDS.get(surface)
    if term is None:
        term = _NUMERAL_WORDS[surface] = _term(surface, "名詞", surface=surface)
    return term


def _number_term(value: str) -> Term:
    term = _NUMBER_TERMS.get(value)
    if term is None:
        term = _term(value, "number")
        if len(_NUMBER_TERMS) > 10_000:
            _NUMBER_TERMS.clear()
        _NUMBER_TERMS[value] = term
    return term


def _morpheme(surface: str, features) -> tuple[str, int, Term | None, str]:
    """(surface, its length, term, kind) of one morpheme; cached by the caller.

    *features* are pos1, pos2, lemma, orthBase, kana (search/mecabrc),
    only pos1 and pos2 for unknown words.  Morphemes repeat a lot (Zipf),
    so this per-type work is done once per distinct MeCab line instead of
    once per token.
    """
    if surface == _PLACEHOLDER:
        return surface, 1, None, _TECH_WORD
    pos1 = sys.intern(features[0])
    if pos1 == "名詞" and len(features) > 1 and features[1] == "数詞":
        number = kanji_to_number(surface)
        if number is not None:
            return surface, len(surface), _number_term(number), _NUMERAL
    text = fold(surface)
    if text == surface:
        text = surface  # one string for both (most Japanese words)
    stop = pos1 in STOP_POS
    variants: list[str] = []
    reading = ""
    if not stop and len(features) == 5:
        lemma, orth_base, kana = features[2:]
        for form in (orth_base, _clean_lemma(lemma, surface)):
            if form and form != "*":
                form = fold(form)
                if form != text and form not in variants:
                    variants.append(form)
        stem = _OKURIGANA.match(surface)
        if stem and stem.group(1) not in variants:
            # 置換え, 読込み, 申込み are also written 置換, 読込, 申込 (表記ゆれ of okurigana).
            variants.append(stem.group(1))
        elif _INNER_OKURIGANA.match(surface):
            # And 申し込み, 取り扱い, 引っ越し: 申込, 取扱, 引越 (so each spelling finds the others).
            kanji = _HIRAGANA.sub("", surface)
            if kanji not in variants:
                variants.append(kanji)
        if kana not in ("", "*") and _KANJI.search(surface):
            reading = fold(kana)
    return surface, len(surface), _term(text, pos1, tuple(variants), reading, (), stop, surface), _PLAIN


# --- Whoosh tokenizer and filter ---------------------------------------------


class JapaneseTokenizer(Tokenizer):
    """Whoosh tokenizer: one token per unit, written form, stop words marked.

    Positions count only non-stop units.  Character offsets point into the
    original text, before normalisation.
    """

    def __eq__(self, other):
        return type(self) is type(other)

    def __hash__(self):
        return hash(type(self))

    def __call__(self, value, positions=False, chars=False, keeporiginal=False, removestops=True,
                 start_pos=0, start_char=0, tokenize=True, mode="", **kwargs):
        t = Token(positions, chars, removestops=removestops, mode=mode, **kwargs)
        if not tokenize:
            t.original = t.text = value
            t.boost = 1.0
            t.term = None
            if positions:
                t.pos = start_pos
            if chars:
                t.startchar, t.endchar = start_char, start_char + len(value)
            yield t
            return
        pos = start_pos
        for term, start, end in scan(value):
            if term.stop and removestops:
                continue
            t.text = term.text
            t.boost = 1.0
            t.stopped = term.stop
            t.term = term
            if keeporiginal:
                t.original = value[start:end]
            if positions:
                t.pos = pos
            if chars:
                t.startchar = start_char + start
                t.endchar = start_char + end
            yield t
            if not term.stop:
                pos += 1


class VariantFilter(Filter):
    """At index time, add each unit's variants, reading and compound parts at its position."""

    def __eq__(self, other):
        return type(self) is type(other)

    def __hash__(self):
        return hash(type(self))

    def __call__(self, tokens):
        for t in tokens:
            yield t
            term = getattr(t, "term", None)
            if term is None or not term.extras or t.mode == "query":
                continue
            text = t.text
            for extra in term.extras:
                t.text = extra
                yield t
            t.text = text


def JapaneseAnalyzer():
    """The analyzer used for every text field, at index and at query time."""
    return JapaneseTokenizer() | VariantFilter()


ANALYZER = JapaneseAnalyzer()


# --- query side ---------------------------------------------------------------


@dataclass(frozen=True)
class Alternative:
    """One index term a query unit may match, and how much such a match is worth."""

    term: str
    kind: str  # "exact", "variant" or "reading"


def alternatives(unit: Unit) -> list[Alternative]:
    """The index terms that count as a match for a query unit, best first."""
    alts = [Alternative(unit.text, "exact")]
    seen = {unit.text}
    joined = (j,) if unit.pos == "tech" and (j := joined_form(unit.text)) else ()
    for term in (VARIANT + unit.text, *unit.variants, *(VARIANT + v for v in unit.variants), *joined):
        if term not in seen:
            seen.add(term)
            alts.append(Alternative(term, "variant"))
    return alts


# Parts of speech of the words a compound is made of (形状詞: スマート of スマートフォン).
_COMPOUND_POS = frozenset({"名詞", "接頭辞", "接尾辞", "形状詞"})


def title_compounds(title: str) -> list[str]:
    """The compound words of a title, as suggest offers them (NFKC, lower case): each run of two
    to four nouns written together, whole (東京国際映画祭, not 東京国際).  MeCab reads
    スマートフォン as スマート|フォン and 日本代表 as 日本|代表, so no index term is either."""
    text = unicodedata.normalize("NFKC", title)
    found, run = set(), []
    for unit in [*units(text), None]:
        noun = unit is not None and not unit.stop and unit.pos in _COMPOUND_POS
        if noun and (not run or unit.start == run[-1].end):
            run.append(unit)
            continue
        if 2 <= len(run) <= 4 and run[-1].end - run[0].start >= 3:
            found.add(text[run[0].start:run[-1].end].lower())
        run = [unit] if noun else []
    return sorted(found)


def query_units(text: str) -> list[Unit]:
    """The non-stop units of a query word, as the index saw the same text."""
    return [u for u in units(text) if not u.stop]
