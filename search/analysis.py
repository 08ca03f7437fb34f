"""Japanese analysis shared by indexing and querying.

The pipeline is ``JapaneseTokenizer() | VariantFilter()``:

1. A character filter folds width (NFKC, composing half-width voiced marks),
   expands the iteration marks ゝゞヽヾ and 々々, and keeps a map from every
   normalised character back to the original text so that highlighting
   offsets stay right.
2. Technical words (``Next.js``, ``C#``, ``x86-64``, ``node_modules``) are cut
   out by a regular expression before MeCab sees them: MeCab splits them at
   every symbol.
3. Everything else goes through MeCab (fugashi + unidic-lite).  Each morpheme
   becomes one *unit*: its folded written form plus the variants UniDic knows
   (orthographic base form, lemma, reading).
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
from pathlib import Path
import threading
import unicodedata
from dataclasses import dataclass

from whoosh.analysis import Filter, Token, Tokenizer

VARIANT = "="
READING = "~"

# --- character filter -------------------------------------------------------

_HIRA_TO_KATA = {c: c + 0x60 for c in range(0x3041, 0x3097)}
_KATA_TO_HIRA = {v: k for k, v in _HIRA_TO_KATA.items()}
_KANJI = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff々〆]")
_KATAKANA_WORD = re.compile(r"^[\u30a0-\u30ffー]+$")
_OKURIGANA = re.compile(r"^([\u4e00-\u9fff]{2,})[\u3041-\u3093]{1,2}$")
_KANA_ONLY = re.compile(r"^[\u3041-\u309f\u30a0-\u30ffー]+$")


def _nfkc_unstable_chars() -> re.Pattern:
    """A character class of the BMP characters that NFKC changes."""
    ranges, start, prev = [], None, None
    for cp in range(0x80, 0x10000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        ch = chr(cp)
        unstable = unicodedata.normalize("NFKC", ch) != ch or cp in (0x309D, 0x309E, 0x30FD, 0x30FE, 0x3005)
        if unstable:
            if start is None:
                start = cp
            prev = cp
        elif start is not None:
            ranges.append((start, prev))
            start = None
    if start is not None:
        ranges.append((start, prev))
    body = "".join(re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges)
    # Astral characters (math letters, enclosed forms...) are rare: check them all.
    return re.compile(f"[{body}\U00010000-\U0010ffff]")


_UNSTABLE = _nfkc_unstable_chars()
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


def normalize(text: str) -> Normalized:
    """NFKC-fold *text* and expand iteration marks, keeping offsets into the original."""
    if not _UNSTABLE.search(text):
        return Normalized(text)
    out: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    last = 0
    for m in _UNSTABLE.finditer(text):
        i = m.start()
        if i > last:
            out.extend(text[last:i])
            starts.extend(range(last, i))
            ends.extend(range(last + 1, i + 1))
        last = i + 1
        ch = text[i]
        for piece in _fold_char(ch, out):
            if unicodedata.combining(piece) and out:
                composed = unicodedata.normalize("NFC", out[-1] + piece)
                if len(composed) == 1:
                    out[-1] = composed
                    ends[-1] = i + 1
                    continue
            out.append(piece)
            starts.append(i)
            ends.append(i + 1)
    if last < len(text):
        out.extend(text[last:])
        starts.extend(range(last, len(text)))
        ends.extend(range(last + 1, len(text) + 1))
    if len(out) == len(text):
        return Normalized("".join(out))
    return Normalized("".join(out), starts, ends)


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
_KANJI_NUMBER = re.compile(r"^[〇零一二三四五六七八九十百千万億兆0-9]+$")


def kanji_to_number(text: str) -> str | None:
    """Read a kanji numeral (三百, 十五, 二〇二六, 1万) as Arabic digits, else None."""
    if not _KANJI_NUMBER.match(text) or text.isascii():
        return None
    if all(c in _DIGITS or c.isdigit() for c in text):
        return str(int("".join(str(_DIGITS.get(c, c)) for c in text)))
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


# --- units ------------------------------------------------------------------

# Technical words: letters/digits joined by . - _ + # / ' and ending in # or +
# (C#, C++), optionally starting with a dot (.NET).
_TECH = re.compile(r"(?<![A-Za-z0-9])\.?[A-Za-z0-9](?:[A-Za-z0-9_]|[.\-+#/'&](?=[A-Za-z0-9]))*[#+]*")
_TECH_PARTS = re.compile(r"[a-z]+|[0-9]+")
# Parts of speech that are not search terms (UniDic pos1).
STOP_POS = frozenset({"助詞", "助動詞", "補助記号", "記号", "空白", "フィラー", "感動詞"})


@dataclass(slots=True)
class Unit:
    """One searchable word of a text: its written form and variants."""

    text: str  # folded written form: what the index stores at this position
    start: int  # character span in the original text
    end: int
    pos: str = ""  # UniDic part of speech, or "tech" / "number"
    variants: tuple[str, ...] = ()  # base form / lemma, folded, when they differ
    reading: str = ""  # katakana reading, when the written form has kanji
    parts: tuple[str, ...] = ()  # pieces of a technical compound (next, js)
    stop: bool = False


class _TaggerPool(threading.local):
    """One MeCab tagger per thread: MeCab is not thread-safe."""

    tagger = None


_TAGGERS = _TaggerPool()


# MeCab prints each morpheme as "surface<TAB>features" (search/mecabrc): one
# string per text instead of a Python node object per morpheme.
_MECABRC = Path(__file__).with_name("mecabrc")


def _tagger():
    if _TAGGERS.tagger is None:
        import fugashi
        import unidic_lite

        _TAGGERS.tagger = fugashi.GenericTagger(f'-r "{_MECABRC}" -d "{unidic_lite.DICDIR}" -Ounits')
    return _TAGGERS.tagger


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
    """Split *text* into units, with spans into the original *text*.

    MeCab reads the whole text once (one call is much cheaper than one per
    stretch between technical words); its morphemes inside a technical word
    are replaced by that word.
    """
    norm = normalize(text)
    ntext = norm.text
    result: list[Unit] = []
    if not ntext or ntext.isspace():
        return result
    techs = [(m.start(), m.end(), m.group(0)) for m in _TECH.finditer(ntext)]
    techs.append((len(ntext) + 1, len(ntext) + 1, ""))  # sentinel
    next_tech = 0
    tech_start, tech_end, tech_word = techs[0]
    starts, ends = norm.starts, norm.ends
    number: Unit | None = None  # the numeral being read, while morphemes continue it
    number_raw, number_end = "", -1
    cache = _MORPHEMES
    offset = 0
    find = ntext.find
    for line in _tagger().parse(ntext).split("\n"):
        info = cache.get(line)
        if info is None:
            if not line:
                continue
            surface, _, features = line.partition("\t")
            info = (surface, *_morpheme(surface, features))
            if len(cache) > 50_000:
                cache.clear()
            cache[line] = info
        surface, term, pos1, stop, variants, reading, numeral = info
        start = find(surface, offset)  # MeCab skips only whitespace between morphemes
        offset = start + len(surface)
        while start >= tech_end:  # passed a technical word: move on to the next
            next_tech += 1
            tech_start, tech_end, tech_word = techs[next_tech]
        if offset > tech_start:  # inside (or across) a technical word
            if tech_word:
                word = tech_word.lower()
                parts = tuple(_TECH_PARTS.findall(word))
                s, e = norm.span(tech_start, tech_end)
                result.append(Unit(word, s, e, "tech", (), "", parts if len(parts) > 1 else ()))
                tech_word = ""  # emitted; skip its other morphemes
            number = None
            continue
        if starts is None:
            s, e = start, offset
        else:
            s, e = starts[start], ends[offset - 1]
        if numeral:
            # Consecutive numeral morphemes (十 五) read as one number.
            if number is not None and number_end == start:
                number_raw += surface
                number.text = kanji_to_number(number_raw) or number.text
                number.end = e
            else:
                number_raw = surface
                number = Unit(term, s, e, "number")
                result.append(number)
            number_end = offset
            continue
        number = None
        result.append(Unit(term, s, e, pos1, variants, reading, (), stop))
    return result


_MORPHEMES: dict[tuple[str, str], tuple] = {}


def _morpheme(surface: str, feature_raw: str) -> tuple:
    """(term, pos, stop, variants, reading, is_numeral) of a MeCab morpheme; cached by the caller.

    Morphemes repeat a lot (Zipf), so this per-type work is done once per
    distinct (surface, features) pair instead of once per token.
    """
    features = feature_raw.split(",")
    pos1 = features[0]
    if pos1 == "名詞" and len(features) > 1 and features[1] == "数詞":
        number = kanji_to_number(surface)
        if number is not None:
            return number, "number", False, (), "", True
    term = fold(surface)
    stop = pos1 in STOP_POS
    variants: list[str] = []
    reading = ""
    if not stop and len(features) > 10:
        for form in (features[10], _clean_lemma(features[7], surface)):  # orthBase, lemma
            if form and form != "*":
                form = fold(form)
                if form != term and form not in variants:
                    variants.append(form)
        stem = _OKURIGANA.match(surface)
        if stem and stem.group(1) not in variants:
            # 置換え, 読込み, 申込み are also written 置換, 読込, 申込 (表記ゆれ of okurigana).
            variants.append(stem.group(1))
        if len(features) > 17 and _KANJI.search(surface) and features[17] not in ("", "*"):
            reading = fold(features[17])
    return term, pos1, stop, tuple(variants), reading, False


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
            t.unit = None
            if positions:
                t.pos = start_pos
            if chars:
                t.startchar, t.endchar = start_char, start_char + len(value)
            yield t
            return
        pos = start_pos
        for unit in units(value):
            if unit.stop and removestops:
                continue
            t.text = unit.text
            t.boost = 1.0
            t.stopped = unit.stop
            t.unit = unit
            if keeporiginal:
                t.original = value[unit.start:unit.end]
            if positions:
                t.pos = pos
            if chars:
                t.startchar = start_char + unit.start
                t.endchar = start_char + unit.end
            yield t
            if not unit.stop:
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
            unit = getattr(t, "unit", None)
            if unit is None or t.mode == "query" or t.stopped:
                continue
            text = t.text
            for extra in _index_extras(unit):
                t.text = extra
                yield t
            t.text = text


def _index_extras(unit: Unit) -> list[str]:
    """The terms stored beside a unit's written form."""
    extras = [VARIANT + v for v in unit.variants]
    if unit.reading:
        extras.append(READING + unit.reading)
    extras.extend(p for p in unit.parts if p != unit.text)
    return extras


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
    for term in (VARIANT + unit.text, *unit.variants, *(VARIANT + v for v in unit.variants)):
        if term not in seen:
            seen.add(term)
            alts.append(Alternative(term, "variant"))
    return alts


def query_units(text: str) -> list[Unit]:
    """The non-stop units of a query word, as the index saw the same text."""
    return [u for u in units(text) if not u.stop]
