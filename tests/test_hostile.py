"""Hostile input: broken and malicious article files, arbitrary queries, odd HTTP requests."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
import urllib.parse
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from search.indexer import build
from search.web import create_app

from .conftest import ARTICLES, CORPUS, copy_articles

MALFORMED = CORPUS / "malformed"
REQUEST_LIMIT = 5.0  # seconds: a hang guard only


def fm(title: str, body: str = "本文です。検索できるはずの記事。", **fields) -> str:
    lines = ["---", f"title: {json.dumps(title, ensure_ascii=False)}"]
    lines += [f"{k}: {json.dumps(v, ensure_ascii=False)}" for k, v in fields.items()]
    return "\n".join(lines + ["---", body, ""])


def alias_bomb() -> str:
    lines = ["---", 'title: "bomb"', 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines + ["---", "body", ""])


# name -> (bytes or callable(folder), regex the skip reason must match); None: must be indexed
def hostile_files(root: Path, outside: Path) -> dict[str, re.Pattern | None]:
    c = root
    expected: dict[str, re.Pattern | None] = {}

    def put(name: str, data: bytes | str, reason: str | None):
        path = c / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        expected[name] = re.compile(reason, re.I) if reason else None

    # good ones
    put("good.md", fm("よい記事 goodtoken"), None)
    put("日本語の名前.md", fm("日本語のファイル名 jpnametoken"), None)
    put("with space slugged.md", fm("空白入りの名前 spacetoken", slug="with-space"), None)
    put("-dash-slugged.md", fm("ダッシュで始まる名前 dashtoken", slug="dash-slugged"), None)
    put("sub/dir/deep.md", fm("深いフォルダ deeptoken"), None)
    put("xss.md", fm("<script>alert(1)</script> と <img src=x onerror=alert(2)> xsstoken",
                     "本文 <script>alert(4)</script> <img src=x onerror=alert(5)> xsstoken の説明。\n\n"
                     "`<b onmouseover=alert(6)>` と &lt;i&gt; も。",
                     tags=["<script>alert(3)</script>", "onerror=alert(7)"], description="<b onerror=x>説明",
                     contentType="<svg/onload=alert(8)>"), None)
    put("nul-once.md", fm("ヌル文字が一つ nultoken", "本文\x00です。"), None)
    # bad ones
    put("binary.md", bytes(range(256)) * 16, r"binary|NUL|UTF-8")
    put("random.md", os.urandom(4096).replace(b"\x00", b"\x01"), r"UTF-8|binary")
    put("png.md", b"\x89PNG\r\n\x1a\n" + os.urandom(64) + b"\x00\x00\x00\rIHDR", r"binary|NUL")
    put("sjis.md", fm("日本語のタイトル", "シフトJISで書かれた本文です。").encode("shift_jis"), r"Shift_JIS")
    put("eucjp.md", fm("日本語のタイトル", "EUC-JPで書かれた本文です。漢字と仮名").encode("euc_jp"), r"UTF-8")
    put("utf16.md", fm("日本語", "UTF-16 の本文").encode("utf-16"), r"UTF-16|NUL|binary")
    put("utf16be-nobom.md", fm("日本語", "本文").encode("utf-16-be"), r"UTF-16|NUL|binary")
    put("bomb.md", alias_bomb(), r"alias")
    put("nested-flow.md", '---\ntitle: "n"\nx: ' + "[" * 1000 + "]" * 1000 + "\n---\nbody\n", r"nest")
    put("nested-flow-25.md", '---\ntitle: "n"\nx: ' + "[" * 25 + "]" * 25 + "\n---\nbody\n", r"nest")
    put("nested-block.md", '---\ntitle: "n"\n' + "".join("  " * i + f"k{i}:\n" for i in range(1000))
        + "---\nbody\n", r"nest")
    put("nested-block-25.md", '---\ntitle: "n"\n' + "".join("  " * i + f"k{i}:\n" for i in range(25))
        + "---\nbody\n", r"nest")
    put("nested-compact.md", '---\ntitle: "n"\nx:\n  ' + "- " * 30 + "1\n---\nbody\n", r"nest")
    put("empty.md", b"", r"empty")
    put("blank.md", "  \n\n\t\n", r"empty")
    put("unclosed.md", '---\ntitle: "x"\nbody without end\n', r"not closed")
    put("list-frontmatter.md", "---\n- a\n- b\n---\nbody\n", r"mapping")
    put("no-title.md", "---\ndate: 2024-01-01\n---\nbody\n", r"title")
    put("bad-date.md", fm("d", date="2024-13-45"), r"date")
    put("title-dict.md", '---\ntitle: {a: 1}\n---\nbody\n', r"title")
    put("python-tag.md", '---\ntitle: !!python/object/apply:os.system ["echo pwned"]\n---\nbody\n',
        r"YAML|tag|constructor")
    put("conflict.md", '---\n<<<<<<< HEAD\ntitle: "a"\n=======\ntitle: "b"\n>>>>>>> x\n---\nbody\n', r"conflict")
    put("with space.md", fm("スラッグの無い空白入りの名前"), r"slug")
    put("-x.md", fm("スラッグの無いダッシュ"), r"slug")
    put("bad-slug.md", fm("悪いスラッグ", slug="../../etc/passwd"), r"slug")
    put("zz-dup-slug.md", fm("スラッグの重複", slug="good"), r"slug .* already used")  # after good.md
    with open(c / "huge.md", "w", encoding="utf-8") as f:  # 20 MB
        f.write('---\ntitle: "huge"\n---\n')
        chunk = "巨大な記事の本文。" * 10000
        while f.tell() < 20 * 1024 * 1024:
            f.write(chunk)
    expected["huge.md"] = re.compile(r"too large")
    # links
    (outside / "secret.md").write_text(fm("外の秘密 outsidetoken"), encoding="utf-8")
    (outside / "dir").mkdir()
    (outside / "dir" / "inner.md").write_text(fm("外のフォルダ outsidetoken2"), encoding="utf-8")
    os.symlink(outside / "secret.md", c / "escape.md")
    expected["escape.md"] = re.compile(r"outside")
    os.symlink(outside / "dir", c / "escape-dir")
    expected["escape-dir"] = re.compile(r"outside")
    os.symlink("/etc", c / "etc")
    expected["etc"] = re.compile(r"outside")
    os.symlink("loop2.md", c / "loop1.md")
    os.symlink("loop1.md", c / "loop2.md")
    expected["loop1.md"] = expected["loop2.md"] = re.compile(r"loop")
    os.symlink("missing.md", c / "dangling.md")
    expected["dangling.md"] = re.compile(r"broken")
    os.symlink("..", c / "sub" / "up")  # a folder loop inside content: walked once, not forever
    return expected


BUILD_SCRIPT = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from search.indexer import build
    started = time.monotonic()
    report = build(Path(sys.argv[1]), Path(sys.argv[2]), workers=1)
    print(json.dumps({"indexed": report.indexed, "skipped": report.skipped,
                      "seconds": time.monotonic() - started}))
""")


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    content, index, outside = root / "content", root / "index", root / "outside"
    content.mkdir()
    outside.mkdir()
    expected = hostile_files(content, outside)
    started = time.monotonic()
    # A subprocess with a timeout: an alias bomb or deep nesting must not hang the build.
    done = subprocess.run([sys.executable, "-c", BUILD_SCRIPT, str(content), str(index)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    report["wall"] = time.monotonic() - started
    return content, index, expected, report


def test_every_hostile_article_is_skipped_with_a_reason(hostile):
    content, index, expected, report = hostile
    skipped = dict(report["skipped"])
    print(f"{len(expected)} hostile/odd files, {len(skipped)} skipped, {report['indexed']} indexed "
          f"in {report['seconds']:.2f} s")
    for name, reason in sorted(expected.items()):
        if reason is None:
            assert name not in skipped, (name, skipped.get(name))
        else:
            assert name in skipped, f"{name} was not skipped"
            assert reason.search(skipped[name]), f"{name}: {skipped[name]!r} does not match {reason.pattern!r}"
    assert set(skipped) <= set(expected), set(skipped) - set(expected)
    for rel, reason in report["skipped"]:
        assert not rel.startswith(("/", "..")), rel
        assert str(content) not in reason
    assert report["seconds"] < 30, "the hostile build is too slow (a bomb went off?)"


def test_good_articles_are_indexed_and_nothing_outside_is(hostile):
    from search.searcher import Searcher

    content, index, expected, report = hostile
    good = [n for n, r in expected.items() if r is None]
    assert report["indexed"] == len(good)
    s = Searcher(index)
    for word in ("goodtoken", "jpnametoken", "spacetoken", "dashtoken", "deeptoken", "xsstoken", "nultoken"):
        assert s.search(word).total == 1, word
    for word in ("outsidetoken", "outsidetoken2", "root", "passwd"):
        assert s.search(word).total == 0, word
    slugs = {h.slug for h in s.search("", per_page=50).hits}
    assert slugs == {"good", "日本語の名前", "with-space", "dash-slugged", "deep", "xss", "nul-once"}


def test_xss_article_is_escaped_everywhere(hostile):
    content, index, expected, report = hostile
    client = create_app({"index_dir": str(index)}).test_client()
    data = client.get("/api/search?q=xsstoken").json
    assert data["total"] == 1
    hit = data["hits"][0]
    for key in ("title_html", "snippet"):
        assert "<" not in re.sub(r"</?mark>", "", hit[key]), hit[key]
    assert "<script>" in hit["title"]  # the plain field is data, escaped by whoever renders it
    page = client.get("/?q=xsstoken").get_data(as_text=True)
    assert "<script>alert" not in page and "<img" not in page and "<svg" not in page
    assert "onerror=alert" not in page or "&lt;img src=x onerror=alert" in page
    for name in ("script", "alert", "onerror", "svg"):
        r = client.get(f"/api/suggest?q={name}")
        assert r.status_code == 200
    tags = client.get("/api/tags").json["tags"]
    assert any("<script>" in t["value"] for t in tags)  # JSON is data; the page escapes it
    assert client.get("/api/tags").mimetype == "application/json"


@pytest.mark.skipif(not MALFORMED.is_dir(), reason="no shared corpus of malformed articles")
def test_malformed_corpus_articles_are_skipped_with_their_problem(tmp_path):
    manifest = {}
    if (MALFORMED / "MANIFEST.tsv").exists():
        for line in (MALFORMED / "MANIFEST.tsv").read_text(encoding="utf-8").splitlines()[1:]:
            cols = line.split("\t")
            manifest[cols[0]] = cols[-1]
    content = tmp_path / "content"
    content.mkdir()
    files = sorted(p for p in MALFORMED.iterdir() if p.suffix == ".md")
    for p in files:
        (content / p.name).write_bytes(p.read_bytes())
    report = build(content, tmp_path / "index", workers=1)
    skipped = dict(report.skipped)
    assert report.indexed == 0
    for p in files:
        reason = skipped.get(p.name)
        assert reason, f"{p.name} was indexed ({manifest.get(p.name)})"
        problem = manifest.get(p.name, "")
        if "----" in problem or "indented" in problem:
            assert "must start with a line '---'" in reason and "found" in reason, reason
        elif "merge-conflict" in problem:
            assert "merge-conflict" in reason, reason
        elif "no frontmatter" in problem:
            assert "no frontmatter" in reason, reason
    print(f"{len(files)} malformed corpus files, all skipped: " + "; ".join(sorted(set(skipped.values()))))


@pytest.mark.slow
def test_twenty_thousand_tiny_articles_build(tmp_path):
    from search.searcher import Searcher

    content, index = tmp_path / "content", tmp_path / "index"
    content.mkdir()
    n = 20_000
    started = time.monotonic()
    for i in range(n):
        (content / f"t{i:05d}.md").write_bytes(
            f'---\ntitle: "小さな記事 {i}"\ntags: ["t{i % 50}"]\ndate: "2024-01-{i % 28 + 1:02d}"\n---\n'
            f'短い本文 tiny{i:05d}x です。\n'.encode())
    written = time.monotonic() - started
    report = build(content, index)
    print(f"{n} tiny articles: written in {written:.1f} s, built in {report.seconds:.1f} s")
    assert report.indexed == n and not report.skipped
    s = Searcher(index)
    assert s.search("").total == n
    assert s.search("tiny12345x").total == 1
    assert s.search("記事", tags=["t7"]).total == n // 50


# --- queries ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def qclient(tmp_path_factory):
    """The fixture articles plus an article with markup everywhere, served by the app."""
    root = tmp_path_factory.mktemp("queries")
    content = copy_articles(root / "content")
    (content / "xss.md").write_text(fm(
        "<script>alert(1)</script> 検索 & <img src=x onerror=alert(2)> TypeScript",
        "検索 <script>alert(4)</script> 型推論 <img src=x onerror=alert(5)> &amp; \"quotes\" 'single' "
        "`<b>code</b>` < > & 泳ぐ", tags=["<script>", "TypeScript"], description="<i>説明</i> 検索"),
        encoding="utf-8")
    build(content, root / "index", workers=1)
    app = create_app({"index_dir": str(root / "index")})
    return app.test_client()


WHOOSH = ["title:", "body:", "*", "?", "[a TO b]", "^2", "~3", "(", ")", "AND", "OR", "NOT", '"', "-",
          "{", "}", ":", "\\", "/", "'", "+", "!", "&&", "||"]
WORDS = ["検索", "型推論", "TypeScript", "泳ぐ", "script", "alert", "onerror", "<script>", "</mark>", "<mark>",
         "&amp;", "&lt;", "C#", "Next.js", "x86-64", "とうきょ", "ｶﾞｷﾞ", "１２３", "\u200f", "\u202e", "\u200b",
         "\ufeff", "😀", "👨‍👩‍👧", "\x00", "\x1b[31m", "\r\n", "\t", "%", "%00", "%ff", "+", "&", "=", "#"]

query_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=()), max_size=300),
    st.lists(st.sampled_from(WORDS + WHOOSH), max_size=12).map(" ".join),
    st.lists(st.sampled_from(WORDS + WHOOSH), max_size=20).map("".join),
    st.builds(lambda w, n: w * n, st.sampled_from(WORDS + WHOOSH + ["あ", "a"]), st.integers(1, 400)),
)


def encoded(q) -> str:
    """Percent-encode *q*: str (lone surrogates as their invalid UTF-8 bytes) or raw bytes."""
    if isinstance(q, str):
        q = q.encode("utf-8", "surrogatepass")
    return urllib.parse.quote_from_bytes(q, safe="")


query_value = st.one_of(query_text, st.binary(max_size=60),
                        st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), max_size=5))

MARKUP_FREE = re.compile(r"</?mark>")


def timed_get(client, url: str):
    started = time.monotonic()
    r = client.get(url)
    took = time.monotonic() - started
    assert took < REQUEST_LIMIT, f"{url[:200]} took {took:.1f} s"
    return r


def check_api_response(r, url: str):
    assert r.status_code < 500, (url[:200], r.status_code, r.get_data(as_text=True)[:300])
    assert r.status_code in (200, 400), (url[:200], r.status_code)
    assert r.is_json, url[:200]
    data = r.json
    if r.status_code == 400:
        assert set(data) == {"error", "status"} and data["status"] == 400 and data["error"], data
    return data


HYPO = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                                  HealthCheck.data_too_large])


@settings(max_examples=300, **HYPO)
@given(q=query_value, page=st.sampled_from(["", "1", "2", "0", "101", "-1", "x", "１"]),
       sort=st.sampled_from(["", "relevance", "date", "<b>"]))
def test_api_search_never_fails_and_never_leaks_markup(qclient, q, page, sort):
    url = f"/api/search?q={encoded(q)}&page={page}&sort={sort}"
    data = check_api_response(timed_get(qclient, url), url)
    if "hits" in data:
        for hit in data["hits"]:
            for key in ("title_html", "snippet"):
                assert "<" not in MARKUP_FREE.sub("", hit[key]), (q, key, hit[key])
                assert ">" not in MARKUP_FREE.sub("", hit[key]), (q, key, hit[key])


@settings(max_examples=120, **HYPO)
@given(params=st.lists(st.tuples(st.sampled_from(["q", "tag", "type", "from", "to", "per_page", "page", "sort",
                                                  "x", "q[]", ""]), query_value), max_size=8))
def test_api_search_any_parameters(qclient, params):
    url = "/api/search?" + "&".join(f"{encoded(k)}={encoded(v)}" for k, v in params)
    check_api_response(timed_get(qclient, url), url)


@settings(max_examples=150, **HYPO)
@given(q=query_value)
def test_search_page_never_fails_and_escapes_the_query(qclient, q):
    url = f"/?q={encoded(q)}"
    r = timed_get(qclient, url)
    assert r.status_code in (200, 400), (q, r.status_code)
    if r.is_json:  # a query string over 4096 bytes is refused before the page is rendered
        assert r.status_code == 400 and r.json["status"] == 400 and len(url) > 4096
        return
    assert r.mimetype == "text/html"
    page = r.get_data(as_text=True)
    title = re.search(r"<title>(.*?)</title>", page, re.S).group(1)
    assert "<" not in title and ">" not in title
    value = re.search(r'<input id="search-q" name="q" type="search" value="([^"]*)"', page)
    assert value, "the query broke out of the input's value attribute"
    for fragment in re.findall(r'class="hit-title"[^>]*>(.*?)</a>', page, re.S) + \
            re.findall(r'<p class="hit-snippet">(.*?)</p>', page, re.S):
        assert "<" not in MARKUP_FREE.sub("", fragment), (q, fragment)
    assert "<script>alert" not in page and "<img src=x" not in page


@settings(max_examples=200, **HYPO)
@given(q=query_value)
def test_suggest_never_fails(qclient, q):
    url = f"/api/suggest?q={encoded(q)}"
    data = check_api_response(timed_get(qclient, url), url)
    if "suggestions" in data:
        assert isinstance(data["suggestions"], list)
        for s in data["suggestions"]:
            assert set(s) >= {"text", "word", "kind"}


def test_very_long_queries_are_refused_or_answered_fast(qclient):
    for q in ["あ" * 256, "a " * 128, "検索" * 128, '"' * 256, "(" * 256, "-" * 256, "*" * 256, "title:" * 42,
              "a OR " * 51, "-a " * 85, "あ" * 257, "😀" * 300, "%00" * 1000]:
        url = f"/api/search?q={encoded(q)}"
        data = check_api_response(timed_get(qclient, url), url)
        if len(q) > 256:
            assert data["status"] == 400 and "too long" in data["error"]


# --- HTTP ---------------------------------------------------------------------------------------


def test_invalid_utf8_in_the_url(qclient):
    for url in ("/api/search?q=%ff%fe", "/api/search?q=%ed%a0%80", "/api/search?q=%c0%af", "/?q=%ff%fe",
                "/api/suggest?q=%ff", "/api/search?tag=%ff&type=%fe", "/api/search?%ff=%ff"):
        r = qclient.get(url)
        assert r.status_code in (200, 400), (url, r.status_code)
        if url.startswith("/api/"):
            check_api_response(r, url)


def test_repeated_parameters_are_refused(qclient):
    for url in ("/api/search?q=a&q=b", "/api/search?page=1&page=2", "/api/search?per_page=1&per_page=2",
                "/api/search?sort=date&sort=relevance", "/api/suggest?q=a&q=b"):
        r = qclient.get(url)
        assert r.status_code == 400, url
        assert r.json["status"] == 400 and "once" in r.json["error"]
    r = qclient.get("/api/search?" + "&".join(f"tag=t{i}" for i in range(11)))
    assert r.status_code == 400 and r.json["status"] == 400


def test_oversized_query_string(qclient):
    r = qclient.get("/api/search?q=a&pad=" + "x" * 5000)
    assert r.status_code == 400 and r.json == {"error": r.json["error"], "status": 400}
    assert "too long" in r.json["error"]
    r = qclient.get("/?q=" + "%E3%81%82" * 2000)
    assert r.status_code == 400
    r = qclient.get("/api/search?q=" + "a" * 300)
    assert r.status_code == 400 and "too long" in r.json["error"]


def test_wrong_methods_and_unknown_paths_answer_json(qclient):
    for method, url, status in [("POST", "/api/search", 405), ("PUT", "/api/search", 405),
                                ("DELETE", "/api/search", 405), ("POST", "/api/suggest", 405),
                                ("POST", "/health", 405), ("PUT", "/", 405), ("GET", "/api/click", 405),
                                ("GET", "/nope", 404), ("GET", "/api/nope", 404),
                                ("GET", "/static/../../../etc/passwd", 404), ("GET", "/static/nope.js", 404),
                                ("GET", "/%2e%2e/%2e%2e/etc/passwd", 404)]:
        r = qclient.open(url, method=method)
        assert r.status_code == status, (method, url, r.status_code)
        assert r.is_json, (method, url)
        assert r.json["status"] == status and r.json["error"]
        assert "root:" not in r.get_data(as_text=True)


def test_click_endpoint_tolerates_junk(qclient):
    for body, ctype in [(b"not json", "application/json"), (b"\xff\xfe", "application/json"),
                        (b'{"q": 1, "slug": []}', "application/json"), (b"[]", "application/json"),
                        (b'{"q": "' + b"a" * 10000 + b'", "slug": "x"}', "application/json"),
                        (b"q=a", "application/x-www-form-urlencoded")]:
        r = qclient.post("/api/click", data=body, content_type=ctype)
        assert r.status_code == 204, (body[:20], r.status_code)


def test_security_headers_on_the_page(qclient):
    r = qclient.get("/?q=検索")
    csp = r.headers["Content-Security-Policy"]
    assert re.search(r"script-src 'self'(;|$)", csp), csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Referrer-Policy"]
    for url in ("/api/search?q=x", "/api/nope", "/health"):
        assert qclient.get(url).headers["X-Content-Type-Options"] == "nosniff"
    # No cross-origin access for an origin that is not configured.
    r = qclient.get("/api/search?q=x", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in r.headers


def test_no_server_paths_in_error_responses(qclient, tmp_path, monkeypatch):
    def no_paths(r, *more: str):
        body = r.get_data(as_text=True)
        project = str(Path(__file__).resolve().parents[1])
        for needle in (project, "/tmp/", str(tmp_path), *more):
            assert needle not in body, (r.status_code, body[:300])

    for url in ("/api/search?page=0", "/api/search?from=x", "/api/search?from=2025-01-02&to=2025-01-01",
                "/api/search?sort=x", "/nope", "/api/search?q=" + "a" * 300):
        no_paths(qclient.get(url))
    # No index at all, and a damaged one.
    missing = create_app({"index_dir": str(tmp_path / "index")}).test_client()
    for url in ("/health", "/api/search?q=x", "/api/suggest?q=x", "/api/tags", "/?q=x"):
        r = missing.get(url)
        assert r.status_code == 503, url
        no_paths(r)
    index = tmp_path / "built"
    build(ARTICLES, index, workers=1)
    (index / "CURRENT").write_text("gen-missing\n")
    damaged = create_app({"index_dir": str(index)}).test_client()
    for url in ("/health", "/api/search?q=x", "/?q=x"):
        r = damaged.get(url)
        assert r.status_code == 503
        no_paths(r)
    # An unexpected error: logged, answered with a generic 500.
    app = create_app({"index_dir": str(index)})

    def boom(*args, **kwargs):
        raise RuntimeError(f"secret detail {tmp_path}")

    monkeypatch.setattr(app.extensions["searcher"], "search", boom)
    r = app.test_client().get("/api/search?q=x")
    assert r.status_code == 500 and r.is_json
    no_paths(r, "secret detail", "RuntimeError", "Traceback")
