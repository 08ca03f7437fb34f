"""The search core through its Python API: query language, totals, facets, paging, snippets."""

import dataclasses
import json
from collections import Counter
from itertools import accumulate

import pytest
import yaml

from search.errors import QueryError
from search.indexer import build, update
from search.searcher import Searcher, parse_query

from .conftest import ARTICLES, write_article


def fixture_tags():
    """Tag counts computed straight from the fixture files, independently of the index."""
    counts = Counter()
    for path in ARTICLES.glob("*.md"):
        meta = yaml.safe_load(path.read_text(encoding="utf-8").split("---")[1])
        tags = meta.get("tags") or []
        if isinstance(tags, str):
            tags = [t.strip() for t in tags.split(",")]
        counts.update({t.casefold() for t in tags})
    return counts


def slugs(result):
    return [h.slug for h in result.hits]


def test_result_has_the_documented_shape(searcher):
    data = searcher.search("泳ぐ").to_dict()
    assert set(data) >= {"query", "total", "page", "per_page", "took_ms", "hits", "facets", "suggestion"}
    hit = data["hits"][0]
    assert set(hit) >= {"slug", "url", "title", "title_html", "date", "tags", "contentType", "description",
                        "image", "snippet", "score"}
    assert hit["url"] == "/articles/robot-fish/"
    assert set(data["facets"]) >= {"tags", "contentType"}
    json.dumps(data, ensure_ascii=False)


def test_result_dict_is_what_asdict_gives_and_copies_the_lists(searcher):
    result = searcher.search("泳ぐ")
    data = result.to_dict()
    assert data == dataclasses.asdict(result)
    data["hits"][0]["tags"].append("changed")
    data["facets"]["tags"][0]["count"] = -1
    assert "changed" not in result.hits[0].tags and result.facets["tags"][0].count != -1


def test_url_template_is_configurable(built):
    s = Searcher(built[1], url_template="https://blog.example.com/p/{slug}.html")
    assert s.search("泳ぐ").hits[0].url == "https://blog.example.com/p/robot-fish.html"


def test_words_are_anded(searcher):
    assert slugs(searcher.search("ロボット 泳ぐ")) == ["robot-fish"]
    assert searcher.search("ロボット TypeScript").total == 0


def test_or_between_words(searcher):
    assert set(slugs(searcher.search("泳ぐ OR 青森"))) == {"robot-fish", "aomori-dc"}


def test_excluded_word(searcher):
    with_js = set(slugs(searcher.search("JavaScript")))
    without = set(slugs(searcher.search("JavaScript -非同期")))
    assert "js-async" in with_js and "js-async" not in without and without


def test_quoted_phrase_requires_adjacent_words(searcher):
    assert "ts54" in slugs(searcher.search('"型推論が改善"'))
    assert searcher.search('"改善 型推論"').total == 0


@pytest.mark.parametrize("q", ['title:TypeScript', 'Type*', 'TypeScript^5', 'TypeScript~2', '[a TO z]',
                               '(TypeScript', 'TypeScript AND', 'NOT', '"unbalanced', '""', '-', '---', 'OR',
                               '\x00\x1f\x7f', '\u202e\u200f逆', '🍣🍺', '\ud800', 'a' * 256, '<script>alert(1)</script>',
                               '&amp; &lt;', '*', '?', ':', '\\', '{}', '   '])
def test_any_input_gives_results_or_nothing(searcher, q):
    result = searcher.search(q)
    assert result.total >= 0
    for hit in result.hits:
        assert "<script" not in hit.snippet and "<script" not in hit.title_html


def test_whoosh_field_syntax_is_plain_text(searcher):
    assert slugs(searcher.search("title:TypeScript")) == slugs(searcher.search("title TypeScript"))


def test_overlong_query_is_refused(searcher):
    with pytest.raises(QueryError, match="too long"):
        searcher.search("あ" * 257)


@pytest.mark.parametrize("kwargs, message", [({"page": 0}, "page"), ({"per_page": 0}, "per_page"),
                                             ({"per_page": 51}, "per_page"), ({"sort": "price"}, "sort"),
                                             ({"date_from": "yesterday"}, "from"),
                                             ({"date_from": "2026-01-01", "date_to": "2025-01-01"}, "after")])
def test_bad_parameters_raise_query_errors(searcher, kwargs, message):
    with pytest.raises(QueryError, match=message):
        searcher.search("記事", **kwargs)


def test_parse_query():
    parsed = parse_query('画像 "型 推論" -古い A OR B')
    assert [[w.text for w in c] for c in parsed.clauses] == [["画像"], ["型 推論"], ["A", "B"]]
    assert parsed.clauses[1][0].phrase and [w.text for w in parsed.excluded] == ["古い"]


def test_empty_query_browses_newest_first(searcher):
    result = searcher.search("", tags=["ガジェット"])
    assert slugs(result) == ["printer-guide", "robot-fish"]
    everything = searcher.search("")
    assert everything.total == 8
    dates = [h.date for h in everything.hits]
    assert dates == sorted(dates, reverse=True)


def test_a_question_finds_its_article_without_reading_the_light_verb(searcher, monkeypatch):
    """A question typed as a sentence finds the article with most of its words; する, in nearly every
    article, counts as present everywhere instead of having its posting lists read."""
    from search.searcher import _Postings

    read = []
    lists = _Postings.lists
    monkeypatch.setattr(_Postings, "lists", lambda self, f, t: read.append(t) or lists(self, f, t))
    result = searcher.search("TypeScriptの型推論を改善する方法")
    assert result.relaxed and slugs(result) == ["ts54"]
    assert read and not [t for t in read if t.lstrip("=") in ("する", "為る")]


@pytest.fixture(scope="module")
def ranked_index(tmp_path_factory):
    """60 articles sharing words in different numbers, lengths and dates: scores and recency both order them."""
    from search.indexer import build

    from .conftest import write_article

    root = tmp_path_factory.mktemp("ranked")
    content = root / "content"
    content.mkdir()
    words = ["画像", "処理", "高速", "方法"]
    for n in range(60):
        body = "。".join(f"{w}の話" * (1 + (n * (i + 3)) % 4) for i, w in enumerate(words) if (n >> i) % 4) + "。"
        write_article(content, f"a{n:02d}.md", f"記事{n}", body=body + "ほかの文。" * (n % 7),
                      slug=f"a{n:02d}", date=f"20{20 + n % 7}-0{1 + n % 9}-1{n % 10}")
    build(content, root / "index", workers=1)
    return root / "index"


@pytest.mark.parametrize("q", ["画像", "画像 処理", "高速", "画像処理を高速にする方法", "画像と処理の高速な方法"])
def test_pages_are_one_ranking_whatever_the_page_size(ranked_index, monkeypatch, q):
    """Walking the pages one article at a time gives the first page of 50: no article twice, none skipped.

    The windows that bound scoring are made small, so that the pages cross them."""
    monkeypatch.setattr("search.searcher.RERANK_WINDOW", 2)
    monkeypatch.setattr("search.searcher.RELAXED_BLOCK", 4)
    searcher = Searcher(ranked_index)
    whole = searcher.search(q, per_page=50)
    assert whole.total >= 10
    walked = [h.slug for page in range(1, min(whole.total, 50) + 1) for h in searcher.search(q, per_page=1, page=page).hits]
    assert walked == slugs(whole)
    assert len(set(walked)) == len(walked)


@pytest.mark.parametrize("typed, katakana", [("ろぼっと", "ロボット"), ("ぷりんたー", "プリンター")])
def test_hiragana_typed_for_a_katakana_word_finds_it(searcher, typed, katakana):
    """Before IME conversion: MeCab splits ろぼっと into scraps, so the katakana word is searched instead."""
    found, expected = searcher.search(typed), searcher.search(katakana)
    assert slugs(found) == slugs(expected) and found.total == expected.total > 0
    assert f"<mark>{katakana}</mark>" in found.hits[0].snippet
    assert slugs(searcher.search("およいだ")) == ["robot-fish"]  # a word MeCab reads whole is kept (泳いだ by reading)


def test_excluded_words_alone_browse_every_other_article(searcher):
    """-word with no other word: every article without it, newest first (not every article)."""
    everything = set(slugs(searcher.search("", per_page=50)))
    with_js = set(slugs(searcher.search("JavaScript", per_page=50)))
    result = searcher.search("-JavaScript", per_page=50)
    assert with_js and set(slugs(result)) == everything - with_js and result.total == len(everything - with_js)
    dates = [h.date for h in result.hits]
    assert dates == sorted(dates, reverse=True)
    assert set(slugs(searcher.search("-JavaScript", tags=["ガジェット"]))) == {"printer-guide", "robot-fish"} - with_js
    assert set(slugs(searcher.search("-JavaScript -泳ぐ", per_page=50))) == everything - with_js - {"robot-fish"}


def test_total_and_tag_facets_match_independent_counts(searcher):
    result = searcher.search("", per_page=50)
    expected = fixture_tags()
    got = {f.value.casefold(): f.count for f in result.facets["tags"]}
    assert got == dict(expected)
    assert result.total == len(list(ARTICLES.glob("*.md")))


def test_case_variant_tags_are_one_facet_in_the_most_common_spelling(searcher):
    values = {f.value: f.count for f in searcher.search("").facets["tags"]}
    assert values["JavaScript"] == 5 and "javascript" not in values


def test_tag_filter_is_case_insensitive_and_several_tags_mean_all(searcher):
    assert searcher.search("", tags=["javascript"]).total == 5
    both = searcher.search("", tags=["JavaScript", "開発ツール"])
    assert slugs(both) == ["ts54"]
    selected = {f.value: f.selected for f in both.facets["tags"]}
    assert selected["JavaScript"] and selected["開発ツール"] and not selected["TypeScript"]


def test_content_type_and_date_filters(searcher):
    assert set(slugs(searcher.search("", content_type="guide"))) == {"vue-next", "printer-guide", "js-async"}
    in_2025 = searcher.search("", date_from="2025-01-01", date_to="2025-12-31")
    assert {h.date[:4] for h in in_2025.hits} == {"2025"} and in_2025.total == 4
    types = {f.value: f.count for f in searcher.search("").facets["contentType"]}
    assert types == {"guide": 3, "news": 2, "review": 2, "column": 1}


def test_paging_has_no_duplicates_or_gaps(searcher):
    everything = slugs(searcher.search("", per_page=50))
    paged = []
    for page in range(1, 4):
        paged += slugs(searcher.search("", per_page=3, page=page))
    assert paged == everything


def test_title_match_ranks_above_body_match(searcher):
    ranked = slugs(searcher.search("プリンター"))
    assert ranked[0] == "printer-guide"


def test_snippet_marks_matches_and_escapes_everything_else(searcher):
    hit = searcher.search("XSS").hits[0]
    assert "<mark>XSS</mark>" in hit.snippet
    assert "&lt;script&gt;" in hit.snippet and "<script>" not in hit.snippet
    assert "\x02XSS\x03" in hit.snippet_text


def test_title_html_is_marked(searcher):
    hit = searcher.search("泳ぐ").hits[0]
    assert hit.title_html == "ロボット魚が<mark>泳いだ</mark>日"


def test_snippet_highlights_words_not_substrings(searcher):
    hit = searcher.search("処理").hits[0]
    assert "<mark>処理</mark>" in hit.snippet or "<mark>画像処理</mark>" not in hit.snippet


def test_snippet_finds_a_word_typed_in_kana_far_into_the_body(tmp_path):
    content = tmp_path / "content"
    content.mkdir()
    filler = "特に何も起きない一日だった。" * 150  # about 2,000 characters before the match
    write_article(content, "trip.md", "旅行記", body=filler + "その後、東京の美術館を見た。" + filler)
    build(content, tmp_path / "index", workers=1)
    hit = Searcher(tmp_path / "index").search("とうきょう").hits[0]
    assert "<mark>東京</mark>の美術館" in hit.snippet


def test_every_hit_of_a_kana_query_marks_the_written_form_it_matched(tmp_path):
    """The first body is analysed to find 東京 by its reading; the others are searched for 東京 too."""
    content = tmp_path / "content"
    content.mkdir()
    filler = "特に何も起きない一日だった。"
    for i, depth in enumerate((10, 60, 120)):
        write_article(content, f"trip-{i}.md", f"旅行記{i}", body=filler * depth + f"{i}日目、東京の美術館を見た。" + filler * 5)
    build(content, tmp_path / "index", workers=1)
    hits = Searcher(tmp_path / "index").search("とうきょう").hits
    assert len(hits) == 3
    for hit in hits:
        assert "<mark>東京</mark>の美術館" in hit.snippet, hit.snippet


@pytest.mark.parametrize("query, body, marked", [
    ("京都", "東京都の美術館を出て、京都の寺へ行った。", "東京都の美術館を出て、<mark>京都</mark>の寺へ行った。"),
    ("テスト", "テストケースを書いてテストを回す。", "<mark>テスト</mark>ケースを書いて<mark>テスト</mark>を回す。"),
    ("簡単", "設定は簡単にできる。", "設定は<mark>簡単に</mark>できる。"),
    ("泳ぐ", "魚が泳いだ。", "魚が<mark>泳いだ</mark>。"),
    ("HTTP/2", "HTTP/2なら速い。", "<mark>HTTP/2</mark>なら速い。"),  # a noun does not inflect: not なら
    ("nodejs", "Node.jsの更新とnodejsの話。Node.jsも。", "<mark>Node.js</mark>の更新と<mark>nodejs</mark>の話。<mark>Node.js</mark>も。"),
    ("nodejs", "Ext.js/Node.js/Dartとnodejs/Release。", "Ext.js/<mark>Node.js</mark>/Dartと<mark>nodejs</mark>/Release。"),
    ("魚", "これは魚であろう。", "これは<mark>魚</mark>であろう。"),
    ("js", "Node.jsとjsの話。", "<mark>Node.js</mark>と<mark>js</mark>の話。"),
    ("javascript", "（ＪａｖａＳｃｒｉｐｔ）とJavaScriptの本。", "（<mark>ＪａｖａＳｃｒｉｐｔ</mark>）と<mark>JavaScript</mark>の本。"),
])
def test_snippet_marks_whole_words_with_their_inflection(tmp_path, query, body, marked):
    content = tmp_path / "content"
    content.mkdir()
    write_article(content, "a.md", "無題", body=body)
    build(content, tmp_path / "index", workers=1)
    assert Searcher(tmp_path / "index").search(query).hits[0].snippet == marked


def test_light_verb_is_not_required_except_in_a_quoted_phrase(tmp_path):
    content = tmp_path / "content"
    content.mkdir()
    write_article(content, "a.md", "移行の記録", body="サーバを移行した。")
    write_article(content, "b.md", "移行の計画", body="来年の移行に備える。")
    build(content, tmp_path / "index", workers=1)
    searcher = Searcher(tmp_path / "index")
    result = searcher.search("移行する")
    assert sorted(slugs(result)) == ["a", "b"]
    assert next(h.snippet for h in result.hits if h.slug == "a") == "サーバを<mark>移行</mark>した。"
    assert slugs(searcher.search('"移行する"')) == ["a"]


def test_article_matched_in_its_title_only_shows_its_description(tmp_path):
    content = tmp_path / "content"
    content.mkdir()
    write_article(content, "t.md", "東京の話", body="本文には地名が出てこない。" * 100, description='"旅の記録"')
    build(content, tmp_path / "index", workers=1)
    hit = Searcher(tmp_path / "index").search("東京").hits[0]
    assert hit.snippet == "旅の記録" and hit.title_html == "<mark>東京</mark>の話"


def test_suggestion_for_a_misspelled_latin_word(searcher):
    result = searcher.search("typescrpt")
    assert result.total == 0 and result.suggestion == "TypeScript"  # as the articles write it


def test_suggestion_for_a_misspelling_that_one_article_shares(tmp_path):
    content = tmp_path / "content"
    content.mkdir()
    for n in range(20):
        write_article(content, f"ts{n}.md", f"TypeScriptの記事{n}", body="TypeScriptで書く。")
    write_article(content, "typo.md", "誤字の記事", body="Typescirptで書く。Zigも使う。")
    build(content, tmp_path / "index", workers=1)
    s = Searcher(tmp_path / "index")
    result = s.search("typescirpt")
    assert result.total == 1 and result.suggestion == "TypeScript"
    assert s.search("zig").suggestion is None  # a short rare word is more likely a name than a typo
    assert s.search("typescript").suggestion is None


def test_suggestion_keeps_the_operators_of_the_query(searcher):
    assert searcher.search("typescrpt -ロボット").suggestion == "TypeScript -ロボット"
    assert searcher.search("typescrpt OR ロボット魚類").suggestion == "TypeScript OR ロボット魚類"


def test_suggestion_drops_a_word_that_finds_nothing(searcher):
    result = searcher.search("ロボット 量子もつれ")
    assert result.total == 0 and result.suggestion == "ロボット"


def test_totals_and_facets_stay_exact_after_several_updates(workdir):
    content, index = workdir
    build(content, index, workers=1)
    for n in range(4):  # each update commits a new segment
        for m in range(3):
            write_article(content, f"u{n}-{m}.md", f"更新記事{n}-{m}", body="増分の本文。", tags='["増分"]')
        (content / "swim.md").write_text((content / "swim.md").read_text() + f"\n追記{n}\n")
        update(content, index)
    s = Searcher(index)
    result = s.search("増分", per_page=5)
    assert result.total == 12
    assert {f.value: f.count for f in result.facets["tags"]} == {"増分": 12}
    all_pages = [h.slug for p in range(1, 4) for h in s.search("増分", per_page=5, page=p).hits]
    assert len(all_pages) == len(set(all_pages)) == 12
    assert s.search("", per_page=1).total == 20
    assert s.search("泳ぐ").total == 1


def test_suggest_completes_words_of_an_article_added_by_update(workdir):
    content, index = workdir
    build(content, index, workers=1)
    s = Searcher(index)
    assert "ペンギン" not in [c["word"] for c in s.suggest("ペン")]
    write_article(content, "penguin.md", "ペンギンの行進", body="ペンギンが歩いた。")
    update(content, index)  # a second segment, and a new generation of the completions
    assert "ペンギン" in [c["word"] for c in s.suggest("ペン")]
    assert "行進" in [c["word"] for c in s.suggest("こうし")]


def test_compound_word_matches_as_a_phrase_in_every_segment(workdir):
    content, index = workdir
    write_article(content, "apart.md", "離れた語", body="量子を使って計算する。")
    build(content, index, workers=1)
    s = Searcher(index)
    assert slugs(s.search("量子計算")) == ["apart"] and s.search("量子計算").relaxed
    write_article(content, "phrase.md", "新しい記事", body="今日は量子計算の話です。")
    update(content, index)  # a second segment: the phrase is only there
    result = s.search("量子計算")
    assert slugs(result) == ["phrase"] and not result.relaxed


def test_total_counts_weak_matches_behind_a_full_page_of_strong_ones(tmp_path):
    """Whoosh's collector drops a word that can no longer reach the top 30; totals must not."""
    content = tmp_path / "content"
    content.mkdir()
    for n in range(40):
        write_article(content, f"a{n:02d}.md", f"鉄道の記事{n}", body="鉄道の話。" * (n + 1))  # each scores higher
    for n in range(3):
        write_article(content, f"z{n}.md", f"別の記事{n}", body="長い本文の終わりに船が一度だけ出てくる。" + "話。" * 50)
    build(content, tmp_path / "index", workers=1)
    searcher = Searcher(tmp_path / "index")
    assert searcher.search("鉄道 OR 船").total == 43
    assert [h.slug for h in searcher.search("鉄道 OR 船", page=5).hits] == ["z0", "z1", "z2"]


def test_search_past_its_time_limit_says_so(built, monkeypatch):
    import search.searcher

    monkeypatch.setattr(search.searcher, "SEARCH_TIME_LIMIT", -1.0)  # already past when scoring starts
    result = Searcher(built[1]).search("画像処理")
    assert result.timed_out and result.total == 0


def test_searcher_notices_an_update_without_reopening(workdir):
    content, index = workdir
    build(content, index, workers=1)
    s = Searcher(index)
    assert s.search("量子").total == 0
    write_article(content, "q.md", "量子の記事")
    update(content, index)
    assert s.search("量子").total == 1


def test_synonyms_file_is_read_again_when_edited(workdir, tmp_path):
    content, index = workdir
    build(content, index, workers=1)
    synonyms = tmp_path / "synonyms.txt"
    synonyms.write_text("# none yet\n", encoding="utf-8")
    s = Searcher(index, synonyms=synonyms)
    assert s.search("魚ロボ").total == 0
    synonyms.write_text("魚ロボ, ロボット魚\n", encoding="utf-8")
    import os
    os.utime(synonyms, ns=(1, 10**18))
    s._cache.clear()
    assert slugs(s.search("魚ロボ")) == ["robot-fish"]


def test_suggest_completes_tags_words_and_readings(searcher):
    assert [(s["word"], s["kind"]) for s in searcher.suggest("types")] == [("TypeScript", "tag")]
    assert [s["word"] for s in searcher.suggest("ろぼ")] == ["ロボット"]
    assert [s["word"] for s in searcher.suggest("ろぼっと")] == ["ロボット"]  # typed in full, before conversion
    assert [s["word"] for s in searcher.suggest("ぷりんたー")] == ["プリンタ"]  # indexed without its final ー
    assert searcher.suggest("ロボット") == []  # the word as typed is no suggestion
    assert [s["word"] for s in searcher.suggest("あおもり")] == ["青森"]  # by reading
    assert searcher.suggest("ロボット 泳")[0]["text"].startswith("ロボット ")


def test_suggest_shows_words_as_the_articles_write_them(searcher):
    """The index holds words folded (next.js, llama-3.1); a suggestion is written as the articles write it."""
    assert [s["word"] for s in searcher.suggest("nex")] == ["Next", "Next.js"]
    assert [s["word"] for s in searcher.suggest("LLAM")] == ["Llama", "Llama-3.1"]
    assert [s["word"] for s in searcher.suggest("gp")] == ["GPU", "GPT", "GPT-4o"]
    assert searcher.suggest("Vue ne")[1]["text"] == "Vue Next.js"


def test_suggest_spelling_of_a_katakana_word_keeps_its_final_long_vowel(workdir):
    content, index = workdir
    write_article(content, "twitter.md", "ツイッターの使い方", body="ツイッターで話題になった。")
    write_article(content, "tw2.md", "別の記事", body="KUBECTL の話とツイッタの話。")
    build(content, index, workers=1)
    s = Searcher(index)
    assert [c["word"] for c in s.suggest("ついっ")] == ["ツイッター"]  # indexed as ツイッタ
    assert [c["word"] for c in s.suggest("kube")] == ["KUBECTL"]  # in a body only
    write_article(content, "twitter.md", "別の題", body="本文")  # the title that wrote it is gone
    update(content, index)
    assert [c["word"] for c in s.suggest("ついっ")] == ["ツイッタ"]  # as the remaining body writes it


def test_suggest_completes_the_last_word_of_japanese_typed_without_spaces(searcher):
    assert [c["text"] for c in searcher.suggest("画像処理のろぼ")] == ["画像処理のロボット"]
    assert [c["text"] for c in searcher.suggest("GPUでnex")][:1] == ["GPUでNext"]
    assert searcher.suggest("画像処理の") == []  # nothing begun after the particle
    assert searcher.suggest("ロボ ") == []  # a finished word: the next one is not begun


def searcher_of(workdir, *articles: tuple[str, str]) -> Searcher:
    """A searcher over the fixture articles and *articles* ((title, body), ...), built in one process."""
    content, index = workdir
    for n, (title, body) in enumerate(articles):
        write_article(content, f"extra{n}.md", title, body=body)
    build(content, index, workers=1)
    return Searcher(index)


def test_suggest_does_not_complete_inside_a_word_written_in_one_script(workdir):
    """MeCab reads スマートフォン as スマート|フォン; completing フォン would offer スマートフォント."""
    s = searcher_of(workdir, ("フォントの選び方", "フォントを選ぶ。"), ("スマートフォンの話", "スマートフォンを買った。"))
    assert s.suggest("スマートフォン") == []
    assert [c["text"] for c in s.suggest("スマートフォンのフォ")] == ["スマートフォンのフォン", "スマートフォンのフォント"]


def test_suggest_offers_a_katakana_word_typed_without_its_final_long_vowel(workdir):
    s = searcher_of(workdir, ("サッカーの試合", "サッカーを見た。"))
    assert [c["word"] for c in s.suggest("サッカ")] == ["サッカー"]  # indexed as サッカ


def test_did_you_mean_writes_a_word_that_is_a_tag_as_the_tag(workdir):
    content, index = workdir
    write_article(content, "gh.md", "Githubの使い方", body="Githubで公開する。", tags='["GitHub"]')
    build(content, index, workers=1)
    s = Searcher(index)
    assert s.search("gihtub").suggestion == "GitHub"  # the title writes Github
    assert [c["word"] for c in s.suggest("gith")] == ["GitHub"]


def test_kana_for_a_compound_tries_every_shortest_split_of_its_reading(workdir):
    """セイジカ splits into two indexed readings as セイ|ジカ (性, 時価) as well as セイジ|カ (政治, 家)."""
    content, index = workdir
    write_article(content, "seiji.md", "政治家の一日", body="政治家が話した。")
    write_article(content, "jika.md", "時価の話", body="時価を調べた。年齢や性を問わない。")
    build(content, index, workers=1)
    assert slugs(Searcher(index).search("せいじか")) == ["seiji"]


def test_suggest_by_reading_offers_each_word_written_with_it(workdir):
    """ケイタイ is the reading of 形態 and of 携帯: both are offered for けいたい."""
    s = searcher_of(workdir, ("形態素解析の話", "本文"), ("携帯電話を買った", "本文"), ("携帯の料金", "本文"))
    assert [c["word"] for c in s.suggest("けいたい")] == ["携帯", "形態"]


def test_suggest_completes_compound_words_of_titles(workdir):
    """MeCab reads スマートフォン as スマート|フォン: no index term to complete to, but titles have it."""
    s = searcher_of(workdir, ("スマートフォンの選び方", "本文"), ("新しいスマートフォンが出た", "本文"),
                    ("東京国際映画祭の話", "本文"), ("東京国際映画祭に行く", "本文"))
    assert [c["word"] for c in s.suggest("スマートフォ")] == ["スマートフォン"]
    assert "東京国際映画祭" in [c["word"] for c in s.suggest("東京国")]
    assert "東京国際" not in [c["word"] for c in s.suggest("東京国")]  # whole runs only
    content, index = workdir
    assert s.suggest("ノートパ") == []
    write_article(content, "n1.md", "ノートパソコンの選び方")
    write_article(content, "n2.md", "軽いノートパソコン")
    update(content, index)  # kept in the manifest by update as by build
    assert [c["word"] for c in s.suggest("ノートパ")] == ["ノートパソコン"]


def test_suggest_for_katakana_typed_offers_katakana_words_not_readings(workdir):
    s = searcher_of(workdir, ("サッカー中継の話", "サッカー中継を見た。"), ("サッカー中継と作家", "作家がサッカリンを語る。"))
    assert [c["word"] for c in s.suggest("サッカー")] == ["サッカー中継"]  # not 作家 (サッカ), nor サッカリン
    assert "作家" in [c["word"] for c in s.suggest("さっか")]  # hiragana: before conversion, by reading


def test_suggest_leaves_out_headlines_used_as_tags(workdir):
    content, index = workdir
    long_tag = "新製品発表会の最新情報を徹底的にまとめた特集記事シリーズ第一弾"
    write_article(content, "t.md", "新製品", tags=f'["{long_tag}", "新製品"]')
    build(content, index, workers=1)
    assert long_tag not in [c["word"] for c in Searcher(index).suggest("新製品")]


def test_a_number_is_not_marked_inside_a_longer_one(workdir):
    """1度: the two 1s of 11 are one needle found twice, not a word made of two needles (画像|処理)."""
    content, index = workdir
    write_article(content, "once.md", "1度は行きたい場所", body="今年の11月で30歳になる。")
    build(content, index, workers=1)
    hit = Searcher(index).search("1度").hits[0]
    assert "<mark>11" not in hit.snippet and hit.title_html.startswith("<mark>1度</mark>")


def test_all_tags(searcher):
    tags = {t.value: t.count for t in searcher.all_tags()}
    assert tags["JavaScript"] == 5 and tags["AI"] == 1


def test_question_finds_articles_with_most_of_its_words(searcher):
    """A sentence typed as a query: articles with all its words first, then most of them."""
    result = searcher.search("ロボット魚がプールで泳ぐ方法")
    assert result.hits and result.hits[0].slug == "robot-fish" and result.relaxed


def test_most_words_needs_most_of_them(searcher):
    assert searcher.search("ロボット 量子 宇宙 銀河 恒星").total == 0


def test_field_lengths_read_by_column_equal_whooshs_per_document_lengths(tmp_path):
    """BM25F lengths, read a column at a time over several segments, as Whoosh reads them one by one."""
    from search.indexer import build, update

    content = tmp_path / "content"
    content.mkdir()
    for n in range(70):
        body = "本文です。" * (n % 7) + ("説明なし" if n % 5 else "")
        (content / f"a{n:02d}.md").write_text(
            f"---\ntitle: 記事{n}\nslug: a{n:02d}\ndate: 2026-01-01\n"
            + ("description: 説明\n" if n % 3 else "") + f"---\n{body}\n", encoding="utf-8")
    index = tmp_path / "index"
    build(content, index, workers=2)
    (content / "late.md").write_text("---\ntitle: 後から\nslug: late\n---\n追加の本文\n", encoding="utf-8")
    update(content, index)  # a segment written by Whoosh's own writer
    searcher = Searcher(index)  # keeps the snapshot's files open
    snap = searcher.snapshot()
    reader = snap.searcher.reader()
    assert len(reader.leaf_readers()) >= 3
    for fieldname in ("title", "tags", "abstract", "body"):
        expected = [reader.doc_field_length(d, fieldname, 1) for d in range(reader.doc_count_all())]
        assert snap.field_lengths(fieldname) == expected
    assert 1 in snap.field_lengths("abstract")  # articles without a description


def test_suggest_lexicon_read_per_segment_equals_whooshs_merged_terms(tmp_path):
    """Suggest's word lists, read from each segment's term table, as Whoosh's reader over all segments gives them."""
    from search import analysis
    from search.indexer import build, update
    from search.searcher import _Lexicon, _TermList

    content = tmp_path / "content"
    content.mkdir()
    for n in range(70):
        (content / f"a{n:02d}.md").write_text(
            f"---\ntitle: 東京の記事{n}\nslug: a{n:02d}\ntags: [タグ{n % 4}, JavaScript]\n---\n"
            f"本文{n}では大阪と京都を比べる。アイテム{n % 9}を泳いで運んだ。\n", encoding="utf-8")
    index = tmp_path / "index"
    build(content, index, workers=2)
    searcher = Searcher(index)  # keeps the snapshot's files open
    assert searcher.suggest("アイ")  # word lists of the build's segments, kept for the next generation
    (content / "late.md").write_text("---\ntitle: 後から来た記事\nslug: late\n---\n大阪の本文、zyxwidgetの話\n",
                                     encoding="utf-8")
    update(content, index)
    assert "zyxwidget" in [s["text"] for s in searcher.suggest("zyx")]  # the update's segment is read
    reader = searcher.snapshot().searcher.reader()
    assert len(reader.leaf_readers()) >= 3
    after_variants, after_readings = chr(ord(analysis.VARIANT) + 1), chr(ord(analysis.READING) + 1)
    for fieldname in _Lexicon.FIELDS:
        for ranges in ([("", analysis.VARIANT), (after_variants, analysis.READING), (after_readings, None)],
                       [(analysis.READING, after_readings)]):
            expected = []
            for low, high in ranges:
                for term, info in reader.iter_field(fieldname, low):
                    if high is not None and term >= high.encode("utf-8"):
                        break
                    expected.append((term.decode("utf-8"), info.doc_frequency()))
            got = _TermList(reader, fieldname, ranges)
            assert list(zip(got.terms, got.frequencies)) == expected
            assert expected or fieldname == "tags"


def test_postings_read_by_block_equal_whooshs_matchers(tmp_path):
    """Postings read a block at a time, over several segments with deleted documents, as Whoosh's matchers give them."""
    from search.indexer import build, update
    from search.searcher import _position_gaps, _Postings

    content = tmp_path / "content"
    content.mkdir()
    for n in range(300):  # more postings of 東京 than a block holds
        (content / f"a{n:03d}.md").write_text(
            f"---\ntitle: 東京の記事{n}\nslug: a{n:03d}\n---\n" + "東京と大阪。" * (n % 4 + 1) + f"一度だけ{n}\n",
            encoding="utf-8")
    index = tmp_path / "index"
    build(content, index, workers=2)
    for n in (5, 150):  # an update deletes the old version of a changed article
        path = content / f"a{n:03d}.md"
        path.write_text(path.read_text(encoding="utf-8").replace("大阪", "京都"), encoding="utf-8")
    update(content, index)
    searcher = Searcher(index)  # keeps the snapshot's files open
    reader = searcher.snapshot().searcher.reader()
    assert len(reader.leaf_readers()) >= 3 and reader.has_deletions()
    postings = _Postings(searcher.snapshot())
    for fieldname, term in [("body", "東京"), ("body", "大阪"), ("body", "京都"), ("title", "記事"), ("body", "150"),
                            ("body", "存在しない"), ("nofield", "東京")]:
        expected = {}
        if fieldname in reader.schema and reader.doc_frequency(fieldname, term):
            m = reader.postings(fieldname, term)
            while m.is_active():
                expected[m.id()] = (m.weight(), m.value_as("positions"))
                m.next()
        ids, weights, values = postings.lists(fieldname, term)
        decode = reader.schema[fieldname].format.decoder("positions") if expected else None
        assert {d: (w, decode(v)) for d, w, v in zip(ids, weights, values)} == expected
        assert [list(accumulate(gaps)) for gaps in _position_gaps(values)] == [p for _, p in expected.values()]
        assert ids == sorted(expected) and postings.weights(fieldname, term) == {d: w for d, (w, _) in expected.items()}
        df = reader.doc_frequency(fieldname, term) if fieldname in reader.schema else 0
        assert postings.doc_frequency(fieldname, term) == df
    assert len(postings.docs("body", "東京")) == 300 and len(postings.docs("body", "京都")) == 2


def test_term_tables_read_through_a_memory_map_equal_whooshs_term_infos(built):
    """Every term of every segment, and terms a segment does not have, as Whoosh's term table gives them."""
    searcher = Searcher(built[1])
    snap = searcher.snapshot()
    leaves = snap.searcher.reader().leaf_readers()
    assert len(snap.term_tables) == len(leaves)
    for (leaf, _), table in zip(leaves, snap.term_tables):
        terms = leaf._terms
        assert table._buffer is not None  # the index's segments are plain files: mapped
        for (fieldname, tbytes), info in terms.items():
            assert table.term_info(fieldname, tbytes).__dict__ == info.__dict__
        for fieldname, tbytes in [("body", "ない語".encode()), ("title", b"zzzz"), ("nofield", b"x")]:
            assert (fieldname, tbytes) not in terms and table.term_info(fieldname, tbytes) is None
    searcher.close()
    assert all(table._buffer.closed for table in snap.term_tables)


def test_term_table_not_in_a_plain_file_is_read_by_whoosh(tmp_path):
    """A segment in a compound file (Whoosh's writer, compound=True) is looked up through Whoosh's own reader."""
    from whoosh.index import create_in

    from search.indexer import schema
    from search.searcher import _TermTable

    ix = create_in(str(tmp_path), schema())
    with ix.writer() as writer:  # compound by default
        writer.add_document(path="a.md", slug="a", title="東京の記事", body="東京と大阪")
    with ix.reader() as reader:
        table = _TermTable(reader)
        assert table._buffer is None
        for (fieldname, tbytes), info in reader._terms.items():
            assert table.term_info(fieldname, tbytes).__dict__ == info.__dict__
        assert table.term_info("body", "京都".encode()) is None
        table.close()


@pytest.mark.parametrize("fieldname,term", [("body", "=泳ぐ"), ("title", "画像"), ("body", "=する"), ("tags", "javascript")])
def test_term_scores_are_whooshs_bm25f_scores(built, fieldname, term):
    """A term scored from its postings and the precomputed length norms, as Whoosh's own BM25F scorer scores it."""
    from whoosh import query as wq

    from search.searcher import _Postings, _Scorer

    snap = Searcher(built[1]).snapshot()
    q = wq.Term(fieldname, term)
    expected = {hit.docnum: hit.score for hit in snap.searcher.search(q, limit=None)}
    scores = _Scorer(snap, _Postings(snap)).scores(q)
    assert scores == expected and expected
    within = set(list(expected)[::2])
    assert _Scorer(snap, _Postings(snap)).scores(q, within) == {d: s for d, s in expected.items() if d in within}


def test_phrase_checked_for_some_documents_then_for_all(built):
    """A phrase inside a larger query is checked only where the rest allows; asked again, for all, it is complete."""
    from search.searcher import _Postings

    snap = Searcher(built[1]).snapshot()
    postings = _Postings(snap)
    slots = [["画像"], ["処理"]]  # printer.md has 画像の処理 (the same phrase: の takes no position), vue.md 画像処理
    with_both = postings.docs("body", "画像") & postings.docs("body", "処理")
    assert len(with_both) == 2
    first, second = sorted(with_both)
    assert postings.phrase_docs("body", slots, {first}) == {first}
    assert postings.phrase_docs("body", slots, {second, 10_000}) == {second}
    assert postings.phrase_docs("body", slots) == with_both == _Postings(snap).phrase_docs("body", slots)
    assert postings.phrase_docs("body", [["処理"], ["画像"]]) == set()
