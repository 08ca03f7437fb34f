"""The search service: JSON API, the search page and the embeddable widget.

``create_app()`` is the application factory (``gunicorn 'search.web:create_app()'``).
Nothing here searches: every answer comes from :class:`search.searcher.Searcher`.
"""

from __future__ import annotations

import re
import time
from urllib.parse import quote

from flask import Flask, Response, g, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from .config import MAX_PAGE, MAX_PER_PAGE, MAX_QUERY_LENGTH, WebConfig
from .errors import IndexMissing, QueryError
from .querylog import QueryLog
from .searcher import SORTS, SearchResult, Searcher

MAX_URL_BYTES = 4096
MAX_SUGGEST_PREFIX = 64


class BadRequest(Exception):
    """A request parameter that is not acceptable; answered with 400."""


def create_app(test_config: dict | None = None) -> Flask:
    """Build the app; *test_config* overrides settings (index_dir, url_template, cors_origins...)."""
    config = WebConfig.from_env(**(test_config or {}))
    app = Flask(__name__)
    app.wsgi_app = _utf8_query_string(app.wsgi_app)
    app.config["SEARCH"] = config
    app.json.ensure_ascii = False
    app.json.sort_keys = False
    searcher = Searcher(config.index_dir, url_template=config.url_template, synonyms=config.synonyms or None,
                        server=True)
    app.extensions["searcher"] = searcher
    searcher.warm()  # no request pays for opening the index and reading the suggest lexicon
    querylog = QueryLog(config.query_log) if config.query_log else None

    @app.before_request
    def _limits():
        g.started = time.perf_counter()
        if len(request.query_string) > MAX_URL_BYTES:
            raise BadRequest(f"the query string is too long (limit {MAX_URL_BYTES} bytes)")

    @app.after_request
    def _headers(response: Response):
        h = response.headers
        h["X-Content-Type-Options"] = "nosniff"
        h["Referrer-Policy"] = "strict-origin-when-cross-origin"
        if response.mimetype == "text/html":
            h["Content-Security-Policy"] = ("default-src 'self'; script-src 'self'; style-src 'self'; "
                                            "img-src 'self' data:; connect-src 'self'; frame-ancestors 'self'; "
                                            "base-uri 'none'; form-action 'self'")
            h["X-Frame-Options"] = "SAMEORIGIN"
        origin = request.headers.get("Origin")
        if origin and origin in config.cors_origins and request.path.startswith(("/api/", "/static/")):
            h["Access-Control-Allow-Origin"] = origin
            h["Vary"] = "Origin"
        if request.method == "GET" and response.status_code == 200 and request.path.startswith(("/api/", "/static/")):
            h["Cache-Control"] = f"public, max-age={config.cache_seconds}"
        elif "Cache-Control" not in h:
            h["Cache-Control"] = "no-store"
        return response

    @app.errorhandler(BadRequest)
    @app.errorhandler(QueryError)
    def _bad_request(e):
        return _error(str(e), 400)

    def _unavailable(e: IndexMissing) -> str:
        """Why there is no index, without the server's file-system paths."""
        return _hide_paths(str(e), config.index_dir)

    @app.errorhandler(IndexMissing)
    def _no_index(e):
        return _error(_unavailable(e), 503)

    @app.errorhandler(HTTPException)
    def _http_error(e: HTTPException):
        return _error(e.description if e.code != 404 else f"no such page: {request.path[:100]}", e.code or 500)

    @app.errorhandler(Exception)
    def _unexpected(e):
        app.logger.exception("unexpected error")
        return _error("internal error; the search service logged it", 500)

    @app.get("/api/search")
    def api_search():
        params = _search_params()
        result = searcher.search(**params)
        if querylog:
            querylog.search(params, result.total, result.took_ms)
        return jsonify(_public(result))

    @app.get("/api/suggest")
    def api_suggest():
        q = _text_param("q", MAX_SUGGEST_PREFIX)
        return jsonify({"query": q, "suggestions": searcher.suggest(q)})

    @app.get("/api/tags")
    def api_tags():
        return jsonify({"tags": [v.__dict__ for v in searcher.all_tags()]})

    @app.post("/api/click")
    def api_click():
        data = request.get_json(silent=True) or {}
        if querylog and isinstance(data.get("q"), str) and isinstance(data.get("slug"), str):
            querylog.click(data["q"][:MAX_QUERY_LENGTH], data["slug"][:200])
        return Response(status=204)

    @app.get("/health")
    def health():
        try:
            return jsonify(searcher.health())
        except IndexMissing as e:
            return jsonify({"status": "unavailable", "reason": _unavailable(e), "documents": 0}), 503

    @app.get("/")
    def page():
        try:
            params = _search_params()
        except (BadRequest, QueryError) as e:
            return render_template("search.html", params={}, result=None, error=str(e)), 400
        result, error = None, None
        if params["q"] or params["tags"] or params["content_type"]:
            try:
                result = searcher.search(**params)
                if querylog:
                    querylog.search(params, result.total, result.took_ms)
            except QueryError as e:
                error = str(e)
            except IndexMissing as e:
                return render_template("search.html", params=params, result=None, error=_unavailable(e)), 503
        return render_template("search.html", params=params, result=result, error=error,
                               sorts=SORTS, pages=_pages(result))

    return app


_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/])/(?:[^\s'\"()/]+/)*[^\s'\"()/]+/?")


def _utf8_query_string(wsgi_app):
    """Let a query string sent as raw UTF-8 (curl 'http://127.0.0.1:8000/api/search?q=設定') mean what it says.

    WSGI hands the request line's bytes over as Latin-1 characters, which
    Werkzeug undoes; but Werkzeug's development server (``search serve``)
    reads them that way twice, so 設定 sent unescaped was searched as
    'è¨­å®'.  Such bytes are %-escaped here, once decoded back to what was
    sent; escapes already there are left alone.  (Gunicorn refuses such a
    request line with a 400 of its own.)
    """
    def app(environ, start_response):
        query = environ.get("QUERY_STRING", "")
        if not query.isascii():
            try:
                raw = query.encode("latin-1")
                for _ in range(2):  # undo one Latin-1 reading at a time, while that gives UTF-8
                    raw = raw.decode("utf-8").encode("latin-1")
            except (UnicodeEncodeError, UnicodeDecodeError):
                pass  # raw holds the bytes as sent
            environ["QUERY_STRING"] = quote(raw, safe="&=+%;/?:@,$!*'()~[]")
        return wsgi_app(environ, start_response)

    return app


def _hide_paths(message: str, index_dir) -> str:
    """*message* with the index folder and any other absolute path replaced (they are the server's business)."""
    message = message.replace(str(index_dir), "the index folder")
    return _ABSOLUTE_PATH.sub("…", message)


def _error(message: str, status: int):
    response = jsonify({"error": message, "status": status})
    response.status_code = status
    return response


def _public(result: SearchResult) -> dict:
    data = result.to_dict()
    for hit in data["hits"]:
        hit.pop("snippet_text", None)
    return data


def _text_param(name: str, limit: int) -> str:
    values = request.args.getlist(name)
    if len(values) > 1:
        raise BadRequest(f"{name} may be given only once")
    value = values[0] if values else ""
    if len(value) > limit:
        raise BadRequest(f"{name} is too long ({len(value)} characters; the limit is {limit})")
    return value


def _int_param(name: str, default: int, low: int, high: int) -> int:
    raw = _text_param(name, 10)
    if raw == "":
        return default
    if not raw.isascii() or not raw.isdigit():
        raise BadRequest(f"{name} must be a whole number from {low} to {high}, not {raw!r}")
    value = int(raw)
    if not low <= value <= high:
        raise BadRequest(f"{name} must be from {low} to {high}, not {value}")
    return value


def _search_params() -> dict:
    """The search parameters of the request, checked; BadRequest says what is wrong."""
    tags = request.args.getlist("tag")
    if len(tags) > 10 or any(len(t) > 100 for t in tags):
        raise BadRequest("at most 10 tags of up to 100 characters each")
    sort = _text_param("sort", 20) or "relevance"
    if sort not in SORTS:
        raise BadRequest(f"sort must be one of {', '.join(SORTS)}, not {sort!r}")
    return {
        "q": _text_param("q", MAX_QUERY_LENGTH),
        "tags": tuple(t for t in tags if t.strip()),
        "content_type": _text_param("type", 100) or None,
        "date_from": _text_param("from", 20) or None,
        "date_to": _text_param("to", 20) or None,
        "sort": sort,
        "page": _int_param("page", 1, 1, MAX_PAGE),
        "per_page": _int_param("per_page", 10, 1, MAX_PER_PAGE),
    }


def _pages(result: SearchResult | None) -> dict:
    if result is None or result.total == 0:
        return {}
    last = min(MAX_PAGE, (result.total + result.per_page - 1) // result.per_page)
    return {"current": result.page, "last": last,
            "prev": result.page - 1 if result.page > 1 else None,
            "next": result.page + 1 if result.page < last else None}
