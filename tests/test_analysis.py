"""The Japanese analyzer: token-level rules, then matching end to end through the search API."""

import pickle
import re
import unicodedata

import pytest
from whoosh import fields

from search import analysis
from search.analysis import ANALYZER, JapaneseAnalyzer, fold, kanji_to_number, normalize, query_units, units
from search.indexer import JapaneseText, build
from search.searcher import Searcher


def terms(text):
    return [t.text for t in ANALYZER(text)]


def written(text):
    """Written forms of the non-stop units: what a phrase query sees."""
    return [u.text for u in units(text) if not u.stop]


# --- token level (cases after Lucene's kuromoji filter tests where they apply) --------------

@pytest.mark.parametrize("text, expected", [
    ("ﾌﾟﾘﾝﾀｰ", ["プリンタ"]),                 # half-width katakana with voiced mark, long vowel
    ("ｶﾞｷﾞｸﾞｹﾞｺﾞ", None),                   # composes voiced marks (no stray ﾞ)
    ("ＧｉｔＨｕｂ", ["github"]),
    ("２０２６", ["2026"]),
    ("ＡＢＣ１２３", ["abc123"]),
    ("コピー", ["コピー"]),                   # kuromoji: short katakana keeps its ー
    ("サーバー", ["サーバ"]),
    ("サーバ", ["サーバ"]),
    ("ユーザー", ["ユーザ"]),
    ("プリンター", ["プリンタ"]),
    ("カー", ["カー"]),
    ("三百", ["300"]),
    ("十五", ["15"]),
    ("二〇二六", ["2026"]),
    ("一万五千", ["15000"]),
    ("千二百三十四", ["1234"]),
    ("Next.js", ["next.js"]),
    ("C#", ["c#"]),
    ("F#", ["f#"]),
    (".NET", [".net"]),
    ("Wi-Fi", ["wi-fi"]),
    ("x86-64", ["x86-64"]),
    ("ES2015", ["es2015"]),
    ("node_modules", ["node_modules"]),
    ("textlint-rule-no-todo", ["textlint-rule-no-todo"]),
    ("Llama-3.1", ["llama-3.1"]),
    ("GPT-4o", ["gpt-4o"]),
    ("C++", ["c++"]),
    ("Vue.js.", ["vue.js"]),                 # sentence-final dot is not part of the word
    ("画像処理", ["画像", "処理"]),
    ("時々", ["時々"]),
    ("いすゞ", ["いすず"]),                    # voiced iteration mark expanded
    ("部分々々", ["部分", "部分"]),             # 々々 repeats the pair
])
def test_written_forms(text, expected):
    result = written(text)
    if expected is None:
        assert "ﾞ" not in "".join(result) and "゙" not in "".join(result)
    else:
        assert result == expected


@pytest.mark.parametrize("text, stopped", [
    ("東京の天気", ["の"]),
    ("書きました", ["まし", "た"]),
    ("読まれた", ["れ", "た"]),
    ("これは、テスト。", ["は", "、", "。"]),
    ("えーと", None),
])
def test_particles_auxiliaries_and_symbols_are_stop_words(text, stopped):
    dropped = [text[u.start:u.end] for u in units(text) if u.stop]
    if stopped is None:
        assert written(text) == [] or dropped
    else:
        assert dropped == stopped


@pytest.mark.parametrize("text, base", [
    ("書いた", "書く"), ("書きます", "書く"), ("読まれた", "読む"), ("泳いだ", "泳ぐ"),
    ("わかる", "分かる"), ("申込み", "申し込み"), ("問合せ", "問い合わせ"), ("取組", "取り組み"),
    ("美しかった", "美しい"),
])
def test_inflections_and_spelling_variants_carry_their_lemma(text, base):
    first = [u for u in units(text) if not u.stop][0]
    assert base in first.variants


@pytest.mark.parametrize("text", ["サーバー", "パソコン", "大阪", "太郎"])
def test_lemma_quirks_are_not_variants(text):
    """No English gloss (サーバー-server), no katakana reading posing as a lemma (大阪 -> オオサカ)."""
    unit = [u for u in units(text) if not u.stop][0]
    assert all("-" not in v and not (v.isascii()) for v in unit.variants)
    if text in ("大阪", "太郎"):
        assert unit.variants == ()
        assert unit.reading


@pytest.mark.parametrize("text, expected", [("三百", "300"), ("十五", "15"), ("二千二十六", "2026"),
                                            ("百", "100"), ("一億二千万", "120000000"), ("abc", None),
                                            ("二三", None), ("十二三", None), ("二〇一二", "2012")])
def test_kanji_numerals(text, expected):
    assert kanji_to_number(text) == expected


def test_offsets_point_into_the_original_text():
    text = "ﾌﾟﾘﾝﾀｰとＧＰＵと㈱テスト、Next.jsで泳いだ"
    for token in ANALYZER(text, positions=True, chars=True):
        original = text[token.startchar:token.endchar]
        assert original, token.text
        if token.text[:1] not in "=~":
            written = fold(normalize(original).text.lower())
            assert token.text in (written, written.replace(".", "")) or token.text in written


def test_offsets_with_start_char():
    spans = [(t.text, t.startchar, t.endchar) for t in ANALYZER("東京タワー", chars=True, start_char=10)]
    assert spans[0] == ("東京", 10, 12)
    assert ("タワー", 12, 15) in spans


def test_positions_skip_stop_words_and_share_variants():
    tokens = [(t.text, t.pos) for t in ANALYZER("画像の処理で泳いだ", positions=True)]
    assert ("画像", 0) in tokens and ("処理", 1) in tokens
    assert ("泳い", 2) in tokens and ("=泳ぐ", 2) in tokens


def test_analyzer_pickles_and_works_after_unpickling():
    copy = pickle.loads(pickle.dumps(JapaneseAnalyzer()))
    assert [t.text for t in copy("ユーザーが書いた")] == terms("ユーザーが書いた")
    assert copy == JapaneseAnalyzer()


def test_index_and_query_streams_agree():
    """Every written form the query side looks for is what the index side stores."""
    for text in ["TypeScript 5.4の型推論", "ﾌﾟﾘﾝﾀｰで泳いだ", "申込みと問合せ", "Next.js 14とC#"]:
        index_terms = set(terms(text))
        for unit in query_units(text):
            assert unit.text in index_terms


AGREEMENT_TEXTS = [
    "TypeScript 5.4の型推論", "ﾌﾟﾘﾝﾀｰで泳いだ", "申込みと問合せ", "Next.js 14とC#、F#と.NET",
    "十五人が三百円で泳いだ。部分々々、いすゞ", "㌔と①とⅢ…ｶﾞｷﾞ", "x86-64とWi-Fi、node_modules。Ｘ線",
    "画像の処理をする", "📝メモ（１）：ユーザー登録", "",
]


@pytest.mark.parametrize("text", AGREEMENT_TEXTS)
def test_terms_without_offsets_match_scan(text):
    assert analysis.terms(text) == [term for term, _, _ in analysis.scan(text)]


@pytest.mark.parametrize("text", AGREEMENT_TEXTS)
def test_preindexed_postings_match_whoosh_chain(text):
    """The indexer's direct postings equal what Whoosh makes through the tokenizer and filter."""
    field = JapaneseText(analyzer=JapaneseAnalyzer())
    assert field.preindex(text).postings == list(fields.TEXT.index(field, text))


def test_astral_characters_that_nfkc_changes_are_all_checked():
    astral = re.compile(f"[{analysis._ASTRAL}]")
    missed = [hex(cp) for cp in range(0x10000, 0x110000)
              if (unicodedata.normalize("NFKC", chr(cp)) != chr(cp) or unicodedata.combining(chr(cp)))
              and not astral.match(chr(cp))]
    assert missed == []


def test_query_mode_emits_written_forms_only():
    query_terms = [t.text for t in ANALYZER("泳いだ Next.js", mode="query")]
    assert query_terms == ["泳い", "next.js"]


# --- end to end: an index with one article per case, queried through the search API ----------

CASES = [
    # (text in an article, query, should it be found)
    ("ﾌﾟﾘﾝﾀｰを買った", "プリンター", True),
    ("プリンターを買った", "ﾌﾟﾘﾝﾀｰ", True),
    ("ＧｉｔＨｕｂで公開", "github", True),
    ("GitHubで公開", "ＧｉｔＨｕｂ", True),
    ("２０２６年の計画", "2026", True),
    ("2026年の計画", "２０２６", True),
    ("ＧＰＵを増設", "GPU", True),
    ("ﾃｷｽﾄを書く", "テキスト", True),
    ("記事を書いた", "書く", True),
    ("記事を書きます", "書く", True),
    ("よく読まれた本", "読む", True),
    ("魚が泳いだ", "泳ぐ", True),
    ("魚が泳ぐ", "泳いだ", True),
    ("申込みは明日まで", "申し込み", True),
    ("申し込みは明日まで", "申込み", True),
    ("問合せ窓口", "問い合わせ", True),
    ("問い合わせ窓口", "問合せ", True),
    ("すぐわかる入門", "分かる", True),
    ("すぐ分かる入門", "わかる", True),
    ("今年の取組", "取り組み", True),
    ("ユーザー登録", "ユーザ", True),
    ("ユーザ登録", "ユーザー", True),
    ("プリンタの設定", "プリンター", True),
    ("ファインチューニングサーバーの構築", "ファインチューニングサーバ", True),
    ("大阪で開催", "おおさか", True),
    ("大阪で開催", "オオサカ", True),
    ("東京タワーに行った", "とうきょう", True),
    ("画像処理ライブラリ", "がぞうしょり", True),
    ("青森のデータセンター", "森", False),
    ("森の中を歩く", "森", True),
    ("京都の寺", "東京都", False),
    ("東京都の予算", "京都", False),
    ("画像処理ライブラリ", "処理", True),
    ("画像処理ライブラリ", "画像処理", True),
    ("TypeScript 5.4の新機能", "TypeScript 5.4", True),
    ("TypeScript 5.4の新機能", "typescript", True),
    ("Vue.jsで作る", "vue.js", True),
    ("Vue.jsで作る", "vue", True),
    ("Vue.jsで作る", "Vue.js", True),
    ("Next.js 14がリリース", "next.js", True),
    ("Next.js 14がリリース", "Next.js 14", True),
    ("C#の入門", "C#", True),
    ("C#の入門", "c#", True),
    ("C#の入門", "C", False),
    ("C言語の入門", "C#", False),
    ("F#で書く", "F#", True),
    ("F#で書く", "C#", False),
    (".NETで動く", ".NET", True),
    (".NETで動く", ".net", True),
    ("Wi-Fiにつなぐ", "wi-fi", True),
    ("Wi-Fiにつなぐ", "WI-FI", True),
    ("Wi-Fiにつなぐ", "WiFi", True),         # written with or without the hyphen: the same word
    ("Android4.0を搭載", "Android 4.0", True),  # a version glued on or apart: the same
    ("Android 4.0を搭載", "Android4.0", True),
    ("Android 2.3と4.0を比べる", "Android4.0", False),
    ("WiFiにつなぐ", "Wi-Fi", True),
    ("Node.jsで書く", "NodeJS", True),
    ("NodeJSで書く", "Node.js", True),
    ("GPT4oと比較", "GPT-4o", True),
    ("Llama-3.1を試す", "llama3.1", True),
    ("円周率3.14", "314", False),            # not for numbers
    ("textlint v12.3.0", "v1.2.30", False),   # nor between the digits of a version
    ("ESLint v0.1.0", "v0.10", False),
    ("textlint v12.3.0がリリース", "12.3.0", True),  # a version is found without its v
    ("Llama-3.1を試す", "Llama3.1", True),
    ("Ext.js/Node.js/Dartで", "nodejs", True),  # the items of a slash list too
    ("3G/Wi-Fi対応", "WiFi", True),
    ("i.e.の略", "IE", False),               # nor for short joins
    ("x86-64向け", "x86-64", True),
    ("ES2015の構文", "es2015", True),
    ("node_modulesを消す", "node_modules", True),
    ("textlint-rule-no-todoを使う", "textlint", True),
    ("textlint-rule-no-todoを使う", "textlint-rule-no-todo", True),
    ("Llama-3.1を試す", "llama-3.1", True),
    ("Llama-3.1を試す", "Llama", True),
    ("GPT-4oと比較", "gpt-4o", True),
    ("Windows10を使う", "Windows", True),
    ("7-Zipで圧縮", "zip", True),
    ("750mlのボトル", "750ml", True),
    ("750mlのボトル", "750", True),
    ("750mlのボトル", "ML", False),         # a unit written on a number is not a word of its own
    ("750mlのボトル", "機械学習", False),   # ... or 機械学習 (synonym ML) would find wine bottles
    ("100msで応答", "MS", False),
    ("容量120ml/1個", "ML", False),          # inside a longer technical word too
    ("ML-703を発売", "ML", True),            # letters before a number are a word
    ("明日までに申込むこと", "申し込み", True),  # okurigana written out finds it left out, as 申込み did
    ("明日までに申し込むこと", "申し込み", True),
    ("明日までに申し込むこと", "申込み", True),
    ("丁寧に取扱うこと", "取り扱い", True),
    ("引越すことにした", "引っ越し", True),
    ("iPad2/iPhone4/iPhone4Sに対応", "iPhone4S", True),  # the items of a list written with slashes
    ("iPad2/iPhone4/iPhone4Sに対応", "iPad2", True),
    ("Bluetooth4.0/Wi-Fiカード", "Wi-Fi", True),
    ("iPad2/iPhone4/iPhone4Sに対応", "iPhone5", False),
    ("価格は1,000円", "1000円", True),      # thousands separators: 1,000 is 1000
    ("価格は1000円", "1,000円", True),
    ("人口は12,345,678人", "12345678", True),
    ("10,000mAhの電池", "10000", True),
    ("1,2,3と数える", "123", False),         # a list of numbers, not a number
    ("価格は1万円", "10000円", True),        # digits with a kanji unit: one number
    ("価格は10000円", "1万円", True),
    ("年収1000万円の仕事", "10000円", False),  # not 万 alone read as 10000
    ("2.8万円で買えた", "28000円", True),
    ("5千円で買えた", "1000円", False),
    ("30億ドルで買収", "3000000000ドル", True),
    ("1万3,980円で発売", "13980円", True),   # units and digits mixed: one number
    ("1万4千円を切る", "14000円", True),
    ("2万5000円で", "25000円", True),
    ("年収は数百万円", "10000円", False),     # 数百万 and 何万 are no number: not 万 alone read as 10000
    ("何万円もする", "1万円", False),
    ("数百万円の損失", "数百万円", True),
    ("各5千万円を出資", "5000万円", True),    # units in a row
    ("1億4千万円の予算", "140000000円", True),
    ("この二三日は雨", "23日", False),       # two or three days, not the 23rd
    ("十二三歳の子", "13歳", False),
    ("三四十人が来た", "340人", False),
    ("一九九五年の春", "1995年", True),      # a year written digit by digit
    ("万年筆で書く", "1万年", False),        # 万 alone is no number
    ("価格は1.5倍", "5倍", False),           # a decimal is not found by its last digits
    ("三百人が参加", "300", True),
    ("300人が参加", "三百", True),
    ("十五分かかる", "15", True),
    ("15分かかる", "十五", True),
    ("時々止まる", "時々", True),
    ("部分々々を直す", "部分部分", True),
    ("いすゞの車", "いすず", True),
    ("パソコンを買う", "PC", True),
    ("PCを買う", "パソコン", True),
    ("JavaScriptの本", "JS", True),
    ("JSの本", "JavaScript", True),
    ("スマートフォン新製品", "スマホ", True),
    ("東京の天気", "の", False),  # a particle alone finds nothing
    ("東京の天気", "天気", True),
    ("東京の天気", "東京 天気", True),
    ("東京の天気", "東京 大阪", False),
    ("東京の天気", "東京 OR 大阪", True),
    ("東京の天気", "東京 -天気", False),
    ("東京の天気", "\"東京の天気\"", True),
    ("東京の天気", "\"東京 天気\"", True),  # stop words take no position
    ("天気と東京", "\"東京 天気\"", False),
    ("Appleの新製品", "apple", True),
    ("APPLEの新製品", "Apple", True),
    ("データベースの設計", "データベース設計", True),
    ("美しかった景色", "美しい", True),
    ("静かな部屋", "静か", True),
    ("コピーを取る", "コピー", True),
    ("カーナビ", "カー", False),
    ("サーバーを再起動", "サーバ", True),
    ("サーバを再起動", "サーバー", True),
    ("メモリーが不足", "メモリ", True),
    ("ブラウザーで確認", "ブラウザ", True),
    ("ブラウザで確認", "ブラウザー", True),
    ("インターフェースの改善", "インターフェース", True),
    ("機械学習のモデル", "機械学習", True),
    ("機械学習のモデル", "学習", True),
    ("形態素解析を行う", "けいたいそかいせき", True),
    ("形態素解析を行う", "形態素", True),
    ("東京駅で待ち合わせ", "待ち合わせ", True),
    ("東京駅で待合せ", "待ち合わせ", True),
    ("一括置換するツール", "置換え", True),   # okurigana variants: the kanji stem
    ("ファイルの読込", "読込み", True),
    ("申込はこちら", "申込み", True),
    ("デバッグの方法", "デバック", True),  # a common misspelling, in the default synonyms
]


@pytest.fixture(scope="module")
def case_searcher(tmp_path_factory):
    root = tmp_path_factory.mktemp("cases")
    content = root / "content"
    content.mkdir()
    for n, (text, _, _) in enumerate(CASES):
        (content / f"case-{n:03d}.md").write_text(
            f'---\ntitle: "記事 {n}"\nslug: "case-{n:03d}"\ndate: "2025-01-01"\n---\n{text}\n', encoding="utf-8")
    build(content, root / "index", workers=1)
    return Searcher(root / "index")


@pytest.mark.parametrize("n, text, query, found", [(n, *case) for n, case in enumerate(CASES)],
                         ids=[f"{c[0]}|{c[1]}" for c in CASES])
def test_query_finds_what_people_mean(case_searcher, n, text, query, found):
    result = case_searcher.search(query, per_page=50)
    slugs = {h.slug for h in result.hits}
    assert (f"case-{n:03d}" in slugs) == found, (text, query, slugs)


def test_compound_query_falls_back_to_all_of_its_parts(tmp_path):
    content = tmp_path / "content"
    content.mkdir()
    (content / "a.md").write_text('---\ntitle: "縮小"\nslug: "a"\n---\n画像を縮小して処理する\n', encoding="utf-8")
    build(content, tmp_path / "index", workers=1)
    result = Searcher(tmp_path / "index").search("画像処理")
    assert [h.slug for h in result.hits] == ["a"]
    assert result.relaxed


def test_compound_query_prefers_the_phrase(case_searcher):
    result = case_searcher.search("画像処理", per_page=50)
    assert not result.relaxed
    assert all("画像処理" in h.snippet.replace("<mark>", "").replace("</mark>", "") for h in result.hits)


def test_exact_form_ranks_above_variant_above_reading(tmp_path):
    content = tmp_path / "content"
    content.mkdir()
    for slug, body in [("exact", "申込みの方法"), ("variant", "申し込みの方法")]:
        (content / f"{slug}.md").write_text(f'---\ntitle: "案内"\nslug: "{slug}"\ndate: "2025-01-01"\n---\n{body}\n',
                                            encoding="utf-8")
    for slug, body in [("kanji", "大阪の話"), ("kana", "おおさかの話")]:
        (content / f"{slug}.md").write_text(f'---\ntitle: "案内"\nslug: "{slug}"\ndate: "2025-01-01"\n---\n{body}\n',
                                            encoding="utf-8")
    build(content, tmp_path / "index", workers=1)
    s = Searcher(tmp_path / "index")
    assert [h.slug for h in s.search("申込み").hits] == ["exact", "variant"]
    assert [h.slug for h in s.search("おおさか").hits] == ["kana", "kanji"]


# MeCab prints a short key line per morpheme; the features behind the lines
# not yet cached are printed along with the keys while most lines miss
# ("cold"), or the text is read again with them ("warm").  Both, and the
# cached lines after them, must give the same terms.
RESOLUTION_TEXTS = AGREEMENT_TEXTS + [
    "Linuxのカーネルを非力なマシンで捏造した。人徳と求道、分厚い本。なまずとたご",
    "ﾃｽﾄ ほげふがぴよ、けいせいする。ユーザが申し込みを書きます",
]


def _fields(term) -> tuple:
    return (term.text, term.pos, term.variants, term.reading, term.parts, term.stop, term.keys, term.surface)


def _empty_caches():
    analysis._PLAIN_TERMS.clear()
    analysis._MORPHEMES.clear()
    analysis._SEEN_ONCE.clear()


def _cold(cold: bool) -> None:
    """Have terms() read the next texts with features printed (a cold process) or keys only (a warm one)."""
    analysis._MISSES.misses, analysis._MISSES.chars = (1.0, 1.0) if cold else (0.0, 1.0)


def _terms_read(text: str, cold: bool) -> list[tuple]:
    _empty_caches()
    _cold(cold)
    return [_fields(t) for t in analysis.terms(text)]


@pytest.mark.parametrize("text", RESOLUTION_TEXTS)
def test_cold_warm_and_cached_lines_give_the_same_terms(text):
    cold = _terms_read(text, cold=True)
    warm = _terms_read(text, cold=False)
    assert warm == cold
    assert [_fields(t) for t, _, _ in analysis.scan(text)] == cold  # from the caches
    assert [_fields(t) for t in analysis.terms(text)] == cold


@pytest.mark.parametrize("cold", [True, False])
def test_features_are_those_of_the_morpheme_mecab_chose(cold):
    """非力 has two entries alike but for their reading (ヒリキ, ヒリョク): the one MeCab chose, as fugashi reads it."""
    import fugashi

    text = "Linuxのカーネルを非力なマシンで"
    chosen = {w.surface: w.feature for w in fugashi.Tagger()(text)}
    _empty_caches()
    _cold(cold)
    terms = {t.surface: t for t in analysis.terms(text)}
    assert terms["非力"].reading == chosen["非力"].kana
    assert terms["カーネル"].variants == ()  # lemma カーネル-kernel / -colonel without its gloss: the written form
    assert terms["マシン"].pos == chosen["マシン"].pos1


def test_the_miss_rate_falls_once_lines_are_cached():
    text = "ユーザが申し込みを書きます"
    _empty_caches()
    _cold(True)
    assert analysis._MISSES.expected(len(text)) > analysis._COLD
    for _ in range(40):
        analysis.terms(text)
    assert analysis._MISSES.expected(len(text)) < analysis._COLD


def test_a_long_text_is_expected_to_miss_where_a_short_one_is_not():
    """Misses come per character: after texts with a new word every 1,000 characters, a
    title is read with keys only and a body of 5,000 characters with features."""
    _cold(False)
    for _ in range(20):
        analysis._MISSES.count(1, 1000)
    assert analysis._MISSES.expected(40) < analysis._COLD < analysis._MISSES.expected(5000)
