"""The HTTP API and the search page, through Flask's test client."""

import pytest

from search.indexer import build
from search.web import create_app

from .conftest import write_article


def test_search_returns_the_core_json(client):
    r = client.get("/api/search?q=泳ぐ")
    assert r.status_code == 200 and r.content_type.startswith("application/json")
    data = r.get_json()
    assert data["total"] == 1 and data["hits"][0]["slug"] == "robot-fish"
    assert "snippet_text" not in data["hits"][0]
    assert "public, max-age=" in r.headers["Cache-Control"]


def test_search_filters_and_paging(client):
    data = client.get("/api/search?tag=JavaScript&tag=開発ツール").get_json()
    assert [h["slug"] for h in data["hits"]] == ["ts54"]
    data = client.get("/api/search?type=guide&sort=date&per_page=2&page=2").get_json()
    assert data["page"] == 2 and len(data["hits"]) == 1 and data["total"] == 3
    data = client.get("/api/search?from=2026-01-01").get_json()
    assert all(h["date"] >= "2026-01-01" for h in data["hits"])


@pytest.mark.parametrize("query, needle", [
    ("page=-1", "page"), ("page=abc", "page"), ("page=0", "page"), ("page=101", "page"),
    ("per_page=0", "per_page"), ("per_page=51", "per_page"), ("per_page=1e3", "per_page"),
    ("sort=price", "sort"), ("q=" + "a" * 257, "too long"), ("from=tomorrow", "from"),
    ("q=a&q=b", "only once"), ("from=2026-02-01&to=2026-01-01", "after"),
])
def test_bad_parameters_are_400_with_a_message(client, query, needle):
    r = client.get(f"/api/search?{query}")
    assert r.status_code == 400
    body = r.get_json()
    assert body["status"] == 400 and needle in body["error"]


def test_unknown_path_and_wrong_method_are_json(client):
    r = client.get("/nope")
    assert r.status_code == 404 and r.get_json()["status"] == 404
    r = client.post("/api/search")
    assert r.status_code == 405 and r.get_json()["status"] == 405


def test_suggest_and_tags(client):
    data = client.get("/api/suggest?q=ろぼ").get_json()
    assert "ロボット" in [s["word"] for s in data["suggestions"]]
    tags = client.get("/api/tags").get_json()["tags"]
    assert {"value": "JavaScript", "count": 5, "selected": False} in tags


def test_health(client):
    data = client.get("/health").get_json()
    assert data["status"] == "ok" and data["documents"] == 8 and data["generation"] and data["built_at"]


def test_no_index_is_503_with_a_reason(tmp_path):
    client = create_app({"index_dir": str(tmp_path)}).test_client()
    r = client.get("/health")
    assert r.status_code == 503 and "search build" in r.get_json()["reason"]
    r = client.get("/api/search?q=x")
    assert r.status_code == 503 and "search build" in r.get_json()["error"]
    assert str(tmp_path) not in r.get_data(as_text=True)  # no file-system path in any answer


def test_index_switch_while_serving(workdir):
    content, index = workdir
    build(content, index, workers=1)
    client = create_app({"index_dir": str(index)}).test_client()
    assert client.get("/api/search?q=量子").get_json()["total"] == 0
    write_article(content, "q.md", "量子コンピュータ入門")
    build(content, index, workers=1)
    assert client.get("/api/search?q=量子").get_json()["total"] == 1
    assert client.get("/health").get_json()["documents"] == 9


def test_server_leaves_each_open_index_out_of_full_collections(workdir):
    """The web app freezes what an index generation loads (gc.freeze) when it opens one; the CLI does not."""
    import gc

    from search.searcher import Searcher

    content, index = workdir
    build(content, index, workers=1)
    gc.unfreeze()
    Searcher(index).search("量子")
    assert gc.get_freeze_count() == 0
    client = create_app({"index_dir": str(index)}).test_client()
    client.get("/api/search?q=量子")
    first = gc.get_freeze_count()
    assert first > 1000
    write_article(content, "q.md", "量子コンピュータ入門")
    build(content, index, workers=1)
    assert client.get("/api/search?q=量子").get_json()["total"] == 1
    assert gc.get_freeze_count() > 1000  # frozen anew for the new generation
    gc.unfreeze()


def test_cors_only_for_allowed_origins(client):
    allowed = client.get("/api/search?q=a", headers={"Origin": "https://blog.example.com"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://blog.example.com"
    other = client.get("/api/search?q=a", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers


def test_cors_is_off_by_default(built):
    client = create_app({"index_dir": str(built[1]), "cors_origins": []}).test_client()
    r = client.get("/api/search?q=a", headers={"Origin": "https://blog.example.com"})
    assert "Access-Control-Allow-Origin" not in r.headers


def test_page_renders_results_without_javascript(client):
    r = client.get("/?q=泳ぐ")
    html = r.get_data(as_text=True)
    assert r.status_code == 200
    assert "ロボット魚が<mark>泳いだ</mark>日" in html and 'href="/articles/robot-fish/"' in html
    assert 'lang="ja"' in html and '<label for="search-q">' in html


def test_page_escapes_the_query_and_has_security_headers(client):
    r = client.get("/?q=<script>alert(1)</script>")
    html = r.get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    csp = r.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert r.headers["X-Content-Type-Options"] == "nosniff" and r.headers["Referrer-Policy"]


def test_page_tag_chips_and_paging_links(client):
    html = client.get("/?q=&tag=JavaScript").get_data(as_text=True)
    assert "chip-selected" in html and "5 件" in html


def test_static_files_are_served_from_the_package(client):
    for path in ("/static/search-widget.js", "/static/search.css"):
        with client.get(path) as r:
            assert r.status_code == 200 and r.headers["X-Content-Type-Options"] == "nosniff"


def test_click_beacon_and_query_log(built, tmp_path):
    from search.querylog import summarize

    log = tmp_path / "queries.jsonl"
    client = create_app({"index_dir": str(built[1]), "query_log": str(log)}).test_client()
    client.get("/api/search?q=泳ぐ")
    client.get("/api/search?q=泳ぐ")
    client.get("/api/search?q=存在しない言葉ぴよ")
    client.get("/api/search?q=XSS")
    assert client.post("/api/click", json={"q": "泳ぐ", "slug": "robot-fish"}).status_code == 204
    summary = summarize(log)
    assert summary["top"][0] == ("泳ぐ", 2)
    assert summary["no_results"] == [("存在しない言葉ぴよ", 1)]
    assert summary["never_clicked"] == [("XSS", 1)]
    assert "127.0.0.1" not in log.read_text()


@pytest.mark.parametrize("readings", [1, 2])
def test_query_string_sent_as_raw_utf8(client, readings):
    """curl 'http://127.0.0.1:8000/api/search?q=泳ぐ' sends UTF-8 unescaped; WSGI servers hand it over
    read as Latin-1 (Werkzeug's development server twice)."""
    query = "q=泳ぐ&per_page=1"
    for _ in range(readings):
        query = query.encode("utf-8").decode("latin-1")
    data = client.get("/api/search", environ_overrides={"QUERY_STRING": query}).get_json()
    assert data["query"] == "泳ぐ" and data["total"] == 1


def test_did_you_mean_link_keeps_the_filters(client):
    page = client.get("/?q=typescrpt&tag=TypeScript&sort=date").get_data(as_text=True)
    assert 'もしかして: <a href="/?q=TypeScript&amp;tag=TypeScript&amp;sort=date">TypeScript</a>' in page
