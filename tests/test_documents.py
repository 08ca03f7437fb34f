"""Reading articles: every frontmatter field and default, and every kind of broken file."""

import datetime as dt
from pathlib import Path

import pytest

from search.documents import iter_article_files, markdown_to_text, parse_article
from search.errors import ArticleError

from .conftest import ARTICLES, CORPUS


def article(text: str, name: str = "post.md"):
    return parse_article(text.encode("utf-8"), name)


def reason(data: bytes, name: str = "bad.md") -> str:
    with pytest.raises(ArticleError) as e:
        parse_article(data, name)
    assert str(e.value).startswith(f"{name}: ")
    return e.value.reason


def test_every_field_is_read():
    a = parse_article((ARTICLES / "ts54.md").read_bytes(), "ts54.md")
    assert a.slug == "ts54"
    assert a.title == "TypeScript 5.4の新機能まとめ"
    assert a.date == dt.date(2026, 3, 10)
    assert a.description.startswith("NoInfer")
    assert a.summary.startswith("TypeScript 5.4")
    assert a.tags == ["TypeScript", "JavaScript", "開発ツール"]
    assert a.content_type == "news"
    assert a.featured is True
    assert a.read_time == 5
    assert a.related_products == ["TypeScript 5.4"]
    assert a.image == "/images/ts54.png"
    assert len(a.sha1) == 40


def test_defaults_when_fields_are_missing():
    a = article('---\ntitle: "だけ"\n---\n本文\n', "folder/only-title.md")
    assert a.slug == "only-title"
    assert a.date is None and a.tags == [] and a.featured is False and a.read_time is None
    assert a.content_type == "" and a.related_products == [] and a.image == ""


def test_published_at_wins_over_date_and_is_normalised():
    a = article('---\ntitle: t\ndate: 2024-01-01\npublishedAt: "2025-02-03T09:00:00+09:00"\n---\n')
    assert a.date == dt.date(2025, 2, 3)


@pytest.mark.parametrize("value, expected", [("2025-02-03", dt.date(2025, 2, 3)),
                                             ('"2025/2/3"', dt.date(2025, 2, 3)),
                                             ('"2025-02-03 10:00:00"', dt.date(2025, 2, 3)),
                                             ('"2025-02-03T10:00:00Z"', dt.date(2025, 2, 3))])
def test_date_formats(value, expected):
    assert article(f"---\ntitle: t\ndate: {value}\n---\n").date == expected


def test_tags_as_comma_separated_string():
    assert article("---\ntitle: t\ntags: JavaScript, 入門 ,JavaScript\n---\n").tags == ["JavaScript", "入門"]


def test_featured_as_string():
    assert article('---\ntitle: t\nfeatured: "true"\n---\n').featured is True


def test_body_is_plain_text():
    text = markdown_to_text(
        "## 見出し\n\n[リンクの文字](https://example.com/x) と https://example.org/raw\n\n"
        "| 列A | 列B |\n| --- | --- |\n| セル1 | セル2 |\n\n```js\nconst x = 1;\n```\n\n"
        "<div class=\"a\">HTMLの&amp;文字&#8211;</div>\n\n`<script>alert(1)</script>` と **強調** {% raw %}\n")
    for kept in ("見出し", "リンクの文字", "セル1", "セル2", "const x = 1;", "HTMLの&文字–", "<script>alert(1)</script>", "強調"):
        assert kept in text, kept
    for dropped in ("https://", "##", "](", "**", "|", "<div", "{%"):
        assert dropped not in text, dropped


def test_japanese_text_right_after_a_url_is_kept():
    """Japanese has no spaces: a URL ends where its ASCII ends, not at the next space."""
    text = markdown_to_text("アドレスはhttp://pocketwifi.home/です。ユーザーエージェントを変える。\n\n"
                            "詳しくはhttp://bit.ly/yBZ08k」とつぶやいた。")
    assert "です。ユーザーエージェントを変える。" in text and "」とつぶやいた。" in text
    assert "pocketwifi" not in text and "bit.ly" not in text


@pytest.mark.parametrize("data, expected", [
    (b"", "empty"),
    (b"   \n", "empty"),
    (b"\x00\x01\x02\x00\x00binary" * 10, "binary"),
    ("---\ntitle: ＳＪＩＳ日本語\n---\n本文".encode("shift_jis"), "Shift_JIS"),
    (b"\xff\xfe---\n", "UTF-8"),
    (b"no frontmatter at all\n", "must start with a '---' line"),
    (b"----\ntitle: t\n----\nbody", "must start with a line '---'"),
    (b" ---\ntitle: t\n---\nbody", "must start with a line '---'"),
    (b"---\ntitle: t\nbody without end", "not closed"),
    (b"---\n- a\n- b\n---\nbody", "mapping"),
    (b"---\njust a string\n---\nbody", "mapping"),
    (b"---\ntitle: [unclosed\n---\nbody", "not valid YAML"),
    (b"---\n<<<<<<< HEAD\ntitle: a\n=======\ntitle: b\n>>>>>>> x\n---\n", "merge-conflict"),
    (b"---\ndescription: no title\n---\nbody", "no title"),
    (b"---\ntitle: t\ndate: not-a-date\n---\n", "date"),
    (b"---\ntitle: t\ndate: 2012-02-30\n---\nbody", "impossible value: day is out of range"),
    (b"---\ntitle: t\ndate: 2012-13-45\n---\nbody", "impossible value: month must be in 1..12"),
    (b"---\ntitle: t\ntags: {a: 1}\n---\n", "tags must be a list"),
    (b"---\ntitle: t\nfeatured: maybe\n---\n", "featured"),
    (b"---\ntitle: t\nreadTime: soon\n---\n", "readTime"),
    (b"---\ntitle: t\nslug: \"../../etc/passwd\"\n---\n", "slug"),
    (b"---\ntitle: {a: b}\n---\n", "title must be a string"),
])
def test_malformed_files_are_reported_with_a_reason(data, expected):
    assert expected in reason(data)


def test_yaml_alias_bomb_is_refused():
    bomb = "---\na: &a [x, x, x, x, x, x, x, x, x]\n"
    for n in range(1, 10):
        bomb += f"{chr(97 + n)}: &{chr(97 + n)} [*{chr(96 + n)}, *{chr(96 + n)}, *{chr(96 + n)}, *{chr(96 + n)}]\n"
    bomb += "title: boom\n---\n"
    assert "alias" in reason(bomb.encode())


def test_deeply_nested_yaml_is_refused():
    nested = "---\ntitle: t\nx: " + "[" * 500 + "]" * 500 + "\n---\n"
    assert "nested" in reason(nested.encode())


def test_stray_nul_byte_in_a_real_post_is_tolerated():
    a = parse_article(b"---\ntitle: t\n---\nC:Users\x00file.zip", "p.md")
    assert "file.zip" in a.body


def test_bom_is_accepted():
    assert parse_article("\ufeff---\ntitle: t\n---\n".encode(), "p.md").title == "t"


@pytest.mark.skipif(not (CORPUS / "malformed").is_dir(), reason="../shared/corpus is not on this machine")
def test_real_malformed_files_are_all_reported():
    files = sorted((CORPUS / "malformed").glob("*.md"))
    assert files
    for path in files:
        with pytest.raises(ArticleError) as e:
            parse_article(path.read_bytes(), path.name)
        assert path.name in str(e.value) and e.value.reason


def test_file_walk_never_leaves_the_content_folder(tmp_path):
    content = tmp_path / "content"
    (content / "sub").mkdir(parents=True)
    (content / "a.md").write_text("x")
    (content / "sub" / "b.md").write_text("x")
    (content / "notes.txt").write_text("x")
    outside = tmp_path / "secret.md"
    outside.write_text("x")
    (content / "escape.md").symlink_to(outside)
    (content / "loop").symlink_to(content / "loop")
    (content / "back").symlink_to(content)
    found = {Path(p).name: problem for p, problem in iter_article_files(content)}
    assert found["a.md"] is None and found["b.md"] is None
    assert "outside" in found["escape.md"]
    assert "loop" in found["loop"] or "broken" in found["loop"]
    assert "notes.txt" not in found and "secret.md" not in found


def test_character_references_in_shown_fields_are_the_characters():
    """WordPress exports write & as &#038; in titles; a page must show &, not the reference."""
    a = article('---\ntitle: "ソフトウェア&#038;Webサービス&#8221;X&#8221;"\n'
                'description: "AT&amp;T &lt;b&gt;"\nsummary: "A & B"\n---\n本文\n')
    assert a.title == "ソフトウェア&Webサービス”X”"
    assert a.description == "AT&T <b>" and a.summary == "A & B"
