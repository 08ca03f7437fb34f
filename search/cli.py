"""The ``search`` command: build, update, query, analyze, serve, eval, report.

Errors from the core become one line on stderr that says what to do next.
Modules are imported inside each command so that a command pays only for
what it uses (``search update`` starts without Flask).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_STRICT = 0, 1, 2, 3


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    from .errors import SearchError

    try:
        return args.func(args)
    except SearchError as e:
        print(f"search: {e}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:  # output piped into head and closed early
        return EXIT_OK
    except OSError as e:
        from .indexer import disk_error_message

        print(f"search: {disk_error_message(e)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("search: interrupted; the previous index is still being served.", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="search", description="Japanese full-text search for a Markdown blog.")
    sub = p.add_subparsers(metavar="COMMAND")

    def index_arg(sp):
        sp.add_argument("--index", metavar="DIR", help="index folder (default: $SEARCH_INDEX_DIR or index/)")

    def content_args(sp):
        sp.add_argument("--content", metavar="DIR", help="articles folder (default: $SEARCH_CONTENT_DIR or content/)")
        index_arg(sp)
        sp.add_argument("--quiet", action="store_true", help="no progress bar")
        sp.add_argument("--strict", action="store_true", help="fail (exit 3) if any file was skipped")
        sp.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                        help="wait this long for another build or update to finish (default: fail at once)")

    b = sub.add_parser("build", help="rebuild the whole index, then switch to it atomically")
    content_args(b)
    b.add_argument("--workers", type=int, default=None, help="analysis processes (default: one per core)")
    b.set_defaults(func=cmd_build)

    u = sub.add_parser("update", help="index new and changed articles, drop deleted ones")
    content_args(u)
    u.set_defaults(func=cmd_update)

    q = sub.add_parser("query", help="search the index")
    index_arg(q)
    q.add_argument("query", nargs="*", help="words; \"a phrase\"; -excluded; a OR b")
    q.add_argument("--tag", action="append", default=[], help="only articles with this tag (repeatable)")
    q.add_argument("--type", help="only articles of this contentType")
    q.add_argument("--from", dest="date_from", metavar="DATE", help="published on or after (YYYY-MM-DD)")
    q.add_argument("--to", dest="date_to", metavar="DATE", help="published on or before (YYYY-MM-DD)")
    q.add_argument("--sort", default="relevance", choices=["relevance", "date"])
    q.add_argument("--page", type=int, default=1)
    q.add_argument("--per-page", type=int, default=10)
    q.add_argument("--json", action="store_true", help="print the JSON the API returns")
    q.set_defaults(func=cmd_query)

    a = sub.add_parser("analyze", help="show how the analyzer splits a text")
    a.add_argument("text")
    a.add_argument("--json", action="store_true")
    a.set_defaults(func=cmd_analyze)

    s = sub.add_parser("serve", help="run the development web server")
    index_arg(s)
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.set_defaults(func=cmd_serve)

    e = sub.add_parser("eval", help="score the engine on judged queries (nDCG@10, MRR@10, Recall@10)")
    index_arg(e)
    e.add_argument("--queries", required=True, help="TSV: qid<TAB>query")
    e.add_argument("--qrels", required=True, help="TREC qrels: qid 0 slug grade")
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=cmd_eval)

    r = sub.add_parser("report", help="what visitors searched for (from the server's query log)")
    r.add_argument("--log", help="query log file (default: $SEARCH_QUERY_LOG)")
    r.add_argument("--since", metavar="DATE", help="only searches on or after this date")
    r.add_argument("--top", type=int, default=20)
    r.set_defaults(func=cmd_report)
    return p


def _dirs(args):
    from .config import path_setting

    content = path_setting("content_dir", getattr(args, "content", None))
    index = path_setting("index_dir", args.index)
    return content, index


def _print_report(report, kind: str) -> None:
    for rel, reason in report.skipped:
        print(f"skipped {rel}: {reason}", file=sys.stderr)
    print(f"{kind}: {report.summary()}")


def _finish(report, args) -> int:
    if args.strict and report.skipped:
        print(f"search: {len(report.skipped)} file(s) skipped and --strict is set", file=sys.stderr)
        return EXIT_STRICT
    return EXIT_OK


def _progress(args) -> bool:
    return not args.quiet and sys.stderr.isatty()


def cmd_build(args) -> int:
    from .indexer import build

    content, index = _dirs(args)
    report = build(content, index, progress=_progress(args), workers=args.workers, lock_wait=args.wait)
    _print_report(report, "build")
    return _finish(report, args)


def cmd_update(args) -> int:
    from .indexer import update

    content, index = _dirs(args)
    report = update(content, index, progress=_progress(args), lock_wait=args.wait)
    _print_report(report, "update")
    return _finish(report, args)


def cmd_query(args) -> int:
    from .config import path_setting, setting
    from .searcher import Searcher

    searcher = Searcher(path_setting("index_dir", args.index), url_template=setting("url_template"),
                        synonyms=setting("synonyms") or None)
    result = searcher.search(" ".join(args.query), tags=args.tag, content_type=args.type,
                             date_from=args.date_from, date_to=args.date_to, sort=args.sort,
                             page=args.page, per_page=args.per_page)
    if args.json:
        data = result.to_dict()
        for hit in data["hits"]:
            hit.pop("snippet_text", None)
        print(json.dumps(data, ensure_ascii=False, indent=2))
        return EXIT_OK
    print(format_result(result, color=sys.stdout.isatty() and "NO_COLOR" not in os.environ))
    return EXIT_OK


def format_result(result, color: bool) -> str:
    """A result list for people reading a terminal."""
    on, off = ("\x1b[1;33m", "\x1b[0m") if color else ("[", "]")
    bold, dim = ("\x1b[1m", "\x1b[2m") if color else ("", "")
    reset = "\x1b[0m" if color else ""
    lines = []
    shown_from = (result.page - 1) * result.per_page + 1
    if result.total and result.hits:
        lines.append(f"{result.total} 件 ({shown_from}–{shown_from + len(result.hits) - 1} を表示, "
                     f"{result.took_ms:.1f} ms)")
    elif result.total:  # a page past the last one
        last = -(-result.total // result.per_page)
        lines.append(f"{result.total} 件 ({result.page} ページ目はありません。最後は {last} ページ目です, "
                     f"{result.took_ms:.1f} ms)")
    else:
        lines.append("見つかりませんでした。")
    if result.relaxed:
        lines.append("(語句としては見つからなかったため、単語ごとに検索しました)")
    if result.suggestion:
        lines.append(f"もしかして: {result.suggestion}")
    for n, hit in enumerate(result.hits, shown_from):
        lines.append("")
        lines.append(f"{n}. {bold}{hit.title}{reset}  {dim}{hit.date or ''}  {hit.url}{reset}")
        if hit.tags:
            lines.append(f"   {dim}タグ: {', '.join(hit.tags)}{reset}")
        if hit.snippet_text:
            lines.append("   " + hit.snippet_text.replace("\x02", on).replace("\x03", off))
    for name, label in (("tags", "タグ"), ("contentType", "種類")):
        values = result.facets.get(name) or []
        if values:
            lines.append("")
            lines.append(f"{label}: " + ", ".join(f"{v.value} ({v.count})" for v in values[:15]))
    return "\n".join(lines)


def cmd_analyze(args) -> int:
    from .analysis import STOP_POS, units

    rows = []
    for unit in units(args.text):
        rows.append({"surface": args.text[unit.start:unit.end], "term": unit.text, "pos": unit.pos,
                     "variants": list(unit.variants), "reading": unit.reading, "parts": list(unit.parts),
                     "start": unit.start, "end": unit.end, "dropped": unit.stop})
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return EXIT_OK
    position = 0
    print(f"{'pos':>3}  {'surface':<14} {'term':<14} {'part of speech':<10} {'variants':<16} reading")
    for row in rows:
        pos = "-" if row["dropped"] else str(position)
        extra = " ".join(row["variants"] + [f"+{p}" for p in row["parts"]])
        note = f"  (dropped: {row['pos']} is a stop part of speech)" if row["dropped"] and row["pos"] in STOP_POS else ""
        print(f"{pos:>3}  {row['surface']:<14} {row['term']:<14} {row['pos']:<10} {extra:<16} {row['reading']}{note}")
        if not row["dropped"]:
            position += 1
    return EXIT_OK


def cmd_serve(args) -> int:
    from .web import create_app

    overrides = {"index_dir": args.index} if args.index else {}
    app = create_app(overrides)
    print(f"Serving on http://{args.host}:{args.port}/ (development server; use gunicorn in production)")
    app.run(host=args.host, port=args.port, debug=False, threaded=True)
    return EXIT_OK


def cmd_eval(args) -> int:
    from .config import path_setting
    from .evaluation import evaluate, format_report

    report = evaluate(Path(args.queries), Path(args.qrels), path_setting("index_dir", args.index))
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        print(format_report(report))
    return EXIT_OK


def cmd_report(args) -> int:
    from .config import setting
    from .querylog import format_report, summarize

    log = args.log or setting("query_log")
    if not log:
        print("search: no query log: pass --log FILE or set SEARCH_QUERY_LOG", file=sys.stderr)
        return EXIT_USAGE
    print(format_report(summarize(Path(log), since=args.since, top=args.top)))
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
