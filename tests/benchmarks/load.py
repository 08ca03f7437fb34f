"""Load test of the search service under gunicorn, with an index update in the middle.

    .venv/bin/python -m tests.benchmarks.load --corpus DIR [--clients 16] [--seconds 60]
                                              [--workers 2] [--port 0] [--max-requests N] [--seed S]

Run from the project's root. Everything happens on 127.0.0.1 and in a temporary folder:

1. the corpus is copied (``cp -r``; the original is never written) and indexed with
   ``search build --content C --index I --quiet``;
2. ``gunicorn -w WORKERS -b 127.0.0.1:PORT 'search.web:create_app()'`` is started with
   ``SEARCH_INDEX_DIR=I`` (PORT 0: a free port) and polled until ``GET /health`` is 200;
3. CLIENTS threads (one ``http.client`` connection each, kept alive when the server allows)
   send for SECONDS seconds (and at most --max-requests requests) a mix of about 60 %
   ``/api/search`` (one to three words, phrases, OR, exclusions, sort=date), 15 % searches
   filtered by one of the top tags of ``/api/tags``, 10 % pages 2-5 and 15 % ``/api/suggest``
   (Latin, kanji, katakana and hiragana prefixes); every non-200 answer, unreadable body or
   exception is an error;
4. at SECONDS/2 five new articles (title word ``負荷試験記事ゼータ<n>``) are written to the
   copied content folder and ``search update --content C --index I --quiet`` is run; its
   duration is recorded, then ``/api/search?q=負荷試験記事ゼータ0`` is polled until total > 0;
5. the RSS of every gunicorn worker is sampled after warm-up and every 5 s;
6. the report gives requests, requests/s, p50/p95/p99 per kind and overall, errors, the
   update's duration and time-to-visible, worker RSS at start/end/max.

Exit status 0 when there were no errors, the update succeeded and its articles were
searchable within 1 s; 1 otherwise; 2 when the setup (copy, build, server start) failed.
gunicorn is stopped and the temporary folder removed in every case (also on Ctrl-C).
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
NEW_WORD = "負荷試験記事ゼータ"
NEW_ARTICLES = 5
VISIBLE_LIMIT_S = 1.0
RSS_EVERY_S = 5.0
KINDS = ("search", "tag", "page", "suggest")
MIX = (("search", 60), ("tag", 15), ("page", 10), ("suggest", 15))

# -- built-in vocabulary ---------------------------------------------------------------------

# efcl.info-like tech blog: JavaScript, Firefox, Greasemonkey, textlint, Node.js ...
BLOG_WORDS = [
    "JavaScript", "Firefox", "Greasemonkey", "textlint", "Node.js", "npm", "GitHub", "ECMAScript",
    "TypeScript", "React", "Chrome", "Windows", "Vista", "jQuery", "webpack", "Babel", "Electron",
    "WebStorm", "Git", "API", "iPhone", "iOS", "AST", "Twitter", "Google", "Safari", "Opera",
    "HTML", "CSS", "DOM", "JSON", "Promise", "ESLint", "Mac", "Linux", "Ruby", "Python",
    "設定", "拡張機能", "アドオン", "ブックマークレット", "ライブラリ", "テスト", "非同期", "正規表現",
    "文章", "日本語", "高速化", "インストール", "ショートカット", "プラグイン", "エラー", "ブラウザ",
    "イベント", "まとめ", "リリース", "検索", "ニコニコ動画", "スクリプト", "ツール", "ルール",
    "モジュール", "パッケージ", "仕様", "校正", "翻訳", "発表", "資料", "勉強会", "書籍", "表示",
    "動画", "画像", "変更", "使い方", "作り方", "サイト", "ファイル", "コマンド", "開発",
    "せってい", "にほんご", "ぶらうざ", "けんさく",
]
BLOG_PREFIXES = [
    "J", "Ja", "Jav", "Fi", "Fire", "Gre", "te", "tex", "text", "No", "Node", "np", "Gi", "Git", "EC",
    "Ty", "Re", "Rea", "We", "Ch", "Wi", "jq", "Ba", "ap", "co", "El", "HT", "CS", "Pr", "ES",
    "設", "拡", "拡張", "ア", "アド", "ブッ", "ライ", "テ", "テス", "非同", "正規", "日本", "高", "イン",
    "ブラ", "検", "ニコ", "ス", "ツ", "モ", "パッ",
    "せ", "せっ", "とう", "にほ", "ぶら", "てす", "らい", "かく", "ふぁい", "けん", "へん", "つか",
    "JavaScript テ", "Firefox あ", "textlint る",
]

# livedoor news + Aozora Bunko short works
LARGE_WORDS = [
    "iPhone", "Android", "Windows", "Apple", "Google", "Twitter", "Facebook", "iPad", "Xperia", "AKB48",
    "Sony", "NTT", "au", "Galaxy", "LTE", "PC", "USB", "SIM", "Mac",
    "サッカー", "野球", "映画", "スマートフォン", "女性", "恋愛", "結婚", "家電", "カメラ", "ゲーム",
    "東京", "日本代表", "監督", "アプリ", "ドコモ", "テレビ", "ダイエット", "料理", "仕事", "震災",
    "なでしこ", "ワールドカップ", "五輪", "選手", "試合", "優勝", "公開", "発売", "発表", "価格",
    "男性", "彼氏", "友達", "美容", "肌", "夏", "冬", "韓国", "中国", "アメリカ",
    "夏目漱石", "芥川龍之介", "宮沢賢治", "太宰治", "書生", "汽車", "停車場", "先生", "手紙", "月夜",
    "故郷", "子供", "母", "戦争", "詩", "桜", "雪", "海", "山", "夢", "死", "旅", "酒",
    "さっかー", "えいが", "けっこん", "とうきょう", "せんせい",
]
LARGE_PREFIXES = [
    "i", "iP", "iPh", "An", "And", "Wi", "Ap", "Go", "Goo", "Tw", "Fa", "AK", "Xp", "So", "Do", "Ga",
    "サ", "サッ", "野", "映", "スマ", "女", "恋", "結", "家", "カメ", "ゲ", "東", "日本", "監", "ア",
    "テレ", "ダイ", "料", "夏目", "芥", "書", "汽", "先", "手", "月", "選", "試", "優", "発", "韓",
    "さ", "さっ", "せっ", "とう", "えい", "けっ", "すま", "にほん", "かめ", "せん", "なつ", "ゆき", "こい",
    "iPhone ア", "日本代表 か", "映画 こ",
]


def vocabulary(content: Path) -> tuple[str, list[str], list[str]]:
    names = [p.name for p in list(content.glob("*.md"))[:200]]
    large = any(n.startswith(("aozora-", "ldcc-")) for n in names)
    return ("large", LARGE_WORDS, LARGE_PREFIXES) if large else ("blog", BLOG_WORDS, BLOG_PREFIXES)


class RequestMaker:
    """Builds varied request paths (most of them unique, so that the result cache rarely helps)."""

    def __init__(self, words: list[str], prefixes: list[str], tags: list[str], seed: int):
        self.words, self.prefixes, self.tags = words, prefixes, tags
        self.rng = random.Random(seed)

    def _q(self) -> str:
        r, w = self.rng, self.words
        x = r.random()
        if x < 0.30:
            return r.choice(w)
        if x < 0.80:
            return " ".join(r.sample(w, 2))
        if x < 0.88:
            return " ".join(r.sample(w, 3))
        a, b = r.sample(w, 2)
        return r.choice([f'"{a}"', f"{a} OR {b}", f"{a} -{b}"])

    def make(self, kind: str) -> str:
        r = self.rng
        if kind == "suggest":
            p = r.choice(self.prefixes)
            if r.random() < 0.2:
                p = r.choice(self.words) + " " + p
            return "/api/suggest?" + urlencode({"q": p})
        params: list[tuple[str, str]] = []
        if kind == "tag":
            if r.random() < 0.75 or not self.tags:
                params.append(("q", self._q() if r.random() < 0.5 else r.choice(self.words)))
            if self.tags:
                params.append(("tag", r.choice(self.tags)))
        else:
            params.append(("q", self._q()))
        if kind == "page":
            params.append(("page", str(r.randint(2, 5))))
        if r.random() < 0.25:
            params.append(("sort", "date"))
        return "/api/search?" + urlencode(params)

    def kind(self) -> str:
        x = self.rng.uniform(0, 100)
        for kind, share in MIX:
            x -= share
            if x < 0:
                return kind
        return MIX[-1][0]


# -- HTTP ------------------------------------------------------------------------------------

def get(conn: http.client.HTTPConnection, path: str) -> tuple[int, bytes]:
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    except Exception:
        conn.close()
        raise


def get_json(port: int, path: str, timeout: float = 30.0) -> tuple[int, dict]:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        status, body = get(conn, path)
        return status, json.loads(body)
    finally:
        conn.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


# -- gunicorn and the index ------------------------------------------------------------------

def tool(name: str) -> str:
    for folder in (ROOT / ".venv" / "bin", Path(sys.executable).parent):
        if (folder / name).exists():
            return str(folder / name)
    found = shutil.which(name)
    if not found:
        raise SystemExit(f"{name} not found (run with the project's .venv/bin/python)")
    return found


def children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                out += [int(x) for x in (task / "children").read_text().split()]
            except OSError:
                pass
    except OSError:
        pass
    return sorted(set(out))


def rss_mb(pid: int, field: str = "VmRSS") -> float | None:
    """A memory figure of /proc/PID/status in MB: VmRSS (all resident pages, including
    UniDic's mmapped dictionary shared by every worker) or RssAnon (private memory)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class Server:
    def __init__(self, index: Path, workers: int, port: int, log: Path):
        self.port = port or free_port()
        env = dict(os.environ, SEARCH_INDEX_DIR=str(index))
        env.pop("SEARCH_QUERY_LOG", None)
        self.log = log
        self._logf = open(log, "wb")
        self.proc = subprocess.Popen(
            [tool("gunicorn"), "-w", str(workers), "-b", f"{HOST}:{self.port}", "--graceful-timeout", "5",
             "search.web:create_app()"],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=self._logf, stderr=subprocess.STDOUT)

    def wait_healthy(self, timeout: float = 120.0) -> dict:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                status, data = get_json(self.port, "/health", timeout=5)
                if status == 200:
                    return data
                last = f"{status} {data}"
            except (OSError, http.client.HTTPException, ValueError) as e:
                last = repr(e)
            time.sleep(0.2)
        raise RuntimeError(f"/health not 200 after {timeout:.0f} s (last: {last}):\n{self.tail()}")

    def workers(self) -> list[int]:
        return children(self.proc.pid)

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            workers = self.workers()
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                for pid in workers:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                self.proc.kill()
                self.proc.wait()
        self._logf.close()


def write_articles(content: Path, content_type: str, tag: str, run_id: str) -> list[str]:
    today = dt.date.today().isoformat()
    slugs = []
    for n in range(NEW_ARTICLES):
        slug = f"loadtest-{run_id}-{n}"
        title = f"{NEW_WORD}{n}: 負荷試験のために追加した記事"
        body = (f"この記事は負荷試験の途中で追加された{NEW_WORD}{n}という架空の記事です。"
                "検索サーバーが多数の要求を処理している間に索引が更新され、新しい記事がすぐに検索結果へ"
                "現れるかどうかを確かめるために書かれました。本文には特別な意味はありませんが、"
                "全文検索の索引に登録されるだけの十分な長さの日本語の文章を含んでいます。"
                f"\n\n同じ試験では{NEW_ARTICLES}本の記事が同時に追加され、更新にかかった時間と、"
                "更新の完了から検索できるようになるまでの時間が記録されます。\n")
        meta = {
            "title": title, "slug": slug, "date": today,
            "description": body[:120].replace("\n", " "),
            "tags": [tag, "負荷試験"], "contentType": content_type, "source": "tests/benchmarks/load.py",
        }
        front = "".join(f"{k}: {json.dumps(v, ensure_ascii=False)}\n" for k, v in meta.items())
        (content / f"{slug}.md").write_text(f"---\n{front}---\n{body}", encoding="utf-8")
        slugs.append(slug)
    return slugs


def corpus_content_type(content: Path) -> str:
    for path in list(content.glob("*.md"))[:20]:
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines()[1:30]:
            if line.startswith("contentType:"):
                return json.loads(line.split(":", 1)[1].strip())
            if line == "---":
                break
    return "blog"


# -- the run ---------------------------------------------------------------------------------

class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.records: list[tuple[float, str, float, int]] = []  # (start offset s, kind, ms, status)
        self.errors: list[str] = []
        self.error_count = 0
        self.reconnects = 0
        self.paths: Counter = Counter()
        self.sent = 0

    def error(self, text: str) -> None:
        with self.lock:
            self.error_count += 1
            if len(self.errors) < 10:
                self.errors.append(text)


def client(n: int, port: int, maker: RequestMaker, stats: Stats, t0: float, stop: threading.Event,
           max_requests: int) -> None:
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    records, paths, reconnects = [], Counter(), 0
    while not stop.is_set():
        with stats.lock:
            if stats.sent >= max_requests:
                break
            stats.sent += 1
            kind = maker.kind()
            path = maker.make(kind)
        paths[path] += 1
        was_open = conn.sock is not None
        start = time.perf_counter()
        try:
            status, body = get(conn, path)
            ms = (time.perf_counter() - start) * 1000
            records.append((start - t0, kind, ms, status))
            if status != 200:
                stats.error(f"{status} GET {path}: {body[:200]!r}")
            else:
                data = json.loads(body)
                if ("total" if kind != "suggest" else "suggestions") not in data:
                    stats.error(f"bad body GET {path}: {body[:200]!r}")
        except Exception as e:  # noqa: BLE001 - every failure is counted
            ms = (time.perf_counter() - start) * 1000
            records.append((start - t0, kind, ms, 0))
            stats.error(f"{type(e).__name__}: {e} GET {path} (client {n}, after {ms:.0f} ms)")
            conn = http.client.HTTPConnection(HOST, port, timeout=30)
            time.sleep(0.05)
        if not was_open:
            reconnects += 1
    conn.close()
    with stats.lock:
        stats.records += records
        stats.paths.update(paths)
        stats.reconnects += reconnects


def rss_sampler(server: Server, samples: list, stop: threading.Event, t0: float) -> None:
    while not stop.wait(RSS_EVERY_S):
        samples.append((time.perf_counter() - t0, {pid: rss_mb(pid) for pid in server.workers()}))


def percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, int(round(p / 100 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


def latency_row(name: str, values: list[float], errors: int) -> str:
    v = sorted(values)
    mean = sum(v) / len(v) if v else float("nan")
    return (f"  {name:<16}{len(v):>8}{errors:>7}{percentile(v, 50):>9.1f}{percentile(v, 95):>9.1f}"
            f"{percentile(v, 99):>9.1f}{(v[-1] if v else float('nan')):>9.1f}{mean:>9.1f}")


def warm_up(port: int, maker: RequestMaker, workers: int) -> None:
    """A few requests per worker, concurrently so that every worker gets some."""
    paths = [maker.make(k) for k in ("search", "search", "tag", "page", "suggest") for _ in range(workers * 2)]
    errors = []

    def run(chunk):
        conn = http.client.HTTPConnection(HOST, port, timeout=60)
        for p in chunk:
            try:
                status, _ = get(conn, p)
                if status != 200:
                    errors.append(f"{status} {p}")
            except Exception as e:  # noqa: BLE001
                errors.append(f"{e!r} {p}")
                conn = http.client.HTTPConnection(HOST, port, timeout=60)
        conn.close()

    threads = [threading.Thread(target=run, args=(paths[i::workers * 2],)) for i in range(workers * 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        print(f"warm-up errors: {errors[:5]}", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.benchmarks.load", description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", required=True, type=Path, help="folder of Markdown articles (copied, never written)")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    ap.add_argument("--port", type=int, default=0, help="0: a free port")
    ap.add_argument("--max-requests", type=int, default=500_000, help="stop after this many requests")
    ap.add_argument("--seed", type=int, default=20240601)
    args = ap.parse_args(argv)
    if not args.corpus.is_dir():
        ap.error(f"no such folder: {args.corpus}")
    if not (1 <= args.clients <= 256 and 1 <= args.workers <= 16 and 2 <= args.seconds <= 3600):
        ap.error("--clients 1-256, --workers 1-16, --seconds 2-3600")

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    load_before = Path("/proc/loadavg").read_text().strip()
    tmp = Path(tempfile.mkdtemp(prefix="search-load-"))
    content, index = tmp / "content", tmp / "index"
    server: Server | None = None
    stop = threading.Event()
    try:
        print(f"load average before: {load_before}", flush=True)
        subprocess.run(["cp", "-r", str(args.corpus), str(content)], check=True)
        n_files = sum(1 for _ in content.rglob("*.md"))
        print(f"copied {args.corpus} ({n_files} .md files) to {content}", flush=True)
        started = time.perf_counter()
        build = subprocess.run([tool("search"), "build", "--content", str(content), "--index", str(index), "--quiet"],
                               cwd=ROOT, capture_output=True, text=True)
        build_s = time.perf_counter() - started
        skipped = sum(1 for line in build.stderr.splitlines() if line.startswith("skipped"))
        print(f"build: exit {build.returncode} in {build_s:.1f} s; {build.stdout.strip()}"
              + (f"; {skipped} skipped" if skipped else ""), flush=True)
        if build.returncode != 0:
            print(build.stderr[-2000:], file=sys.stderr)
            return 2

        server = Server(index, args.workers, args.port, tmp / "gunicorn.log")
        health = server.wait_healthy()
        print(f"gunicorn pid {server.proc.pid} on {HOST}:{server.port}, {args.workers} workers; health: {health}",
              flush=True)
        status, tags_data = get_json(server.port, "/api/tags")
        top_tags = [t["value"] for t in tags_data.get("tags", [])[:20]] if status == 200 else []
        name, words, prefixes = vocabulary(content)
        maker = RequestMaker(words, prefixes, top_tags, args.seed)
        warm_up(server.port, maker, args.workers)
        workers = server.workers()
        rss_start = {pid: rss_mb(pid) for pid in workers}
        anon_start = {pid: rss_mb(pid, "RssAnon") for pid in workers}
        print(f"vocabulary: {name} ({len(words)} words, {len(prefixes)} prefixes, {len(top_tags)} top tags); "
              f"workers {workers}; warm RSS " + ", ".join(f"{v:.1f}" for v in rss_start.values() if v) + " MB",
              flush=True)

        stats = Stats()
        t0 = time.perf_counter()
        samples: list = [(0.0, rss_start)]
        sampler = threading.Thread(target=rss_sampler, args=(server, samples, stop, t0), daemon=True)
        threads = [threading.Thread(target=client, args=(i, server.port, maker, stats, t0, stop, args.max_requests),
                                    daemon=True) for i in range(args.clients)]
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        sampler.start()
        for t in threads:
            t.start()
        print(f"running {args.clients} clients for {args.seconds:g} s ...", flush=True)

        # the update, in the middle
        time.sleep(max(0.0, t0 + args.seconds / 2 - time.perf_counter()))
        run_id = f"{os.getpid()}-{int(time.time())}"
        slugs = write_articles(content, corpus_content_type(content), top_tags[0] if top_tags else "負荷試験", run_id)
        upd_start = time.perf_counter()
        update = subprocess.run([tool("search"), "update", "--content", str(content), "--index", str(index), "--quiet"],
                                cwd=ROOT, capture_output=True, text=True)
        upd_end = time.perf_counter()
        update_s = upd_end - upd_start
        visible_s, poll_ms, polls, totals, took_ms = None, [], 0, {}, []
        conn = http.client.HTTPConnection(HOST, server.port, timeout=30)
        while time.perf_counter() - upd_end < 10:
            polls += 1
            s = time.perf_counter()
            try:
                status, body = get(conn, "/api/search?" + urlencode({"q": f"{NEW_WORD}0"}))
                poll_ms.append((time.perf_counter() - s) * 1000)
                data = json.loads(body) if status == 200 else {}
                took_ms.append(data.get("took_ms"))
                if data.get("total", 0) > 0:
                    visible_s = time.perf_counter() - upd_end
                    break
            except Exception:  # noqa: BLE001
                conn = http.client.HTTPConnection(HOST, server.port, timeout=30)
            time.sleep(0.01)
        for n in range(NEW_ARTICLES):
            try:
                status, data = get_json(server.port, "/api/search?" + urlencode({"q": f"{NEW_WORD}{n}"}))
                hit_slugs = [h["slug"] for h in data.get("hits", [])]
                totals[n] = (data.get("total"), slugs[n] in hit_slugs, hit_slugs[:1] == [slugs[n]])
            except Exception as e:  # noqa: BLE001
                totals[n] = (repr(e), False, False)
        conn.close()
        upd_rel = (upd_start - t0, upd_end - t0)

        time.sleep(max(0.0, t0 + args.seconds - time.perf_counter()))
        stop.set()
        for t in threads:
            t.join(timeout=40)
        elapsed = time.perf_counter() - t0
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        end_workers = server.workers()
        samples.append((elapsed, {pid: rss_mb(pid) for pid in end_workers}))
        anon_end = {pid: rss_mb(pid, "RssAnon") for pid in end_workers}
        load_after = Path("/proc/loadavg").read_text().strip()

        # -- report --
        recs = stats.records
        total = len(recs)
        print()
        print(f"== load test: {args.corpus} ({n_files} files, {health.get('documents')} documents), "
              f"{args.clients} clients, {args.workers} gunicorn workers, {elapsed:.1f} s ==")
        print(f"build {build_s:.1f} s; requests {total}, {total / elapsed:.1f} req/s; "
              f"unique paths {len(stats.paths)} ({100 * len(stats.paths) / max(1, total):.0f} %); "
              f"new connections {stats.reconnects}; statuses {dict(Counter(r[3] for r in recs))}")
        client_cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
        print(f"load-test client CPU {client_cpu:.1f} s ({100 * client_cpu / elapsed:.0f} % of one core)")
        print(f"  {'latency ms':<16}{'count':>8}{'errors':>7}{'p50':>9}{'p95':>9}{'p99':>9}{'max':>9}{'mean':>9}")
        errs_by_kind = Counter(r[1] for r in recs if r[3] != 200)
        for kind in KINDS:
            print(latency_row(kind, [r[2] for r in recs if r[1] == kind], errs_by_kind[kind]))
        print(latency_row("all", [r[2] for r in recs], sum(errs_by_kind.values())))
        during = [r[2] for r in recs if upd_rel[0] <= r[0] <= upd_rel[1] + 1]
        outside = [r[2] for r in recs if not (upd_rel[0] <= r[0] <= upd_rel[1] + 1)]
        print(latency_row("during update", during, 0))
        print(latency_row("rest of run", outside, 0))
        print(f"errors: {stats.error_count}")
        for e in stats.errors[:5]:
            print(f"  {e}")
        print(f"update: exit {update.returncode} in {update_s:.2f} s (at t={upd_rel[0]:.1f} s); "
              f"{update.stdout.strip()} {update.stderr.strip()[-300:]}".rstrip())
        if visible_s is None:
            print(f"time to visible: NOT visible within 10 s ({polls} polls)")
        else:
            print(f"time to visible: {visible_s * 1000:.0f} ms after update exited ({polls} poll(s), "
                  f"poll latency {', '.join(f'{x:.0f}' for x in poll_ms)} ms, of which server took_ms "
                  f"{', '.join(str(x) for x in took_ms)}; the rest is waiting in gunicorn's queue)")
        print("new articles (total, found, ranked first): "
              + "; ".join(f"{NEW_WORD}{n}: {v}" for n, v in totals.items()))
        all_pids = sorted({pid for _, s in samples for pid in s})
        print(f"worker RSS MB ({len(samples)} samples, every {RSS_EVERY_S:g} s):")
        for pid in all_pids:
            series = [s[pid] for _, s in samples if s.get(pid) is not None]
            first = rss_start.get(pid)
            last = samples[-1][1].get(pid)
            fmt = lambda x: "-" if x is None else f"{x:.1f}"  # noqa: E731
            print(f"  pid {pid}: start {fmt(first)}, end {fmt(last)}, max {fmt(max(series) if series else None)}"
                  f"  [{' '.join(f'{x:.0f}' for x in series)}]")
            print(f"  pid {pid}: private (RssAnon) start {fmt(anon_start.get(pid))}, end {fmt(anon_end.get(pid))}")
        if set(end_workers) != set(workers):
            print(f"  WORKERS CHANGED: {workers} -> {end_workers} (a worker died or was restarted)")
        print(f"load average before: {load_before}")
        print(f"load average after:  {load_after}")

        ok = (stats.error_count == 0 and update.returncode == 0 and visible_s is not None
              and visible_s < VISIBLE_LIMIT_S and set(end_workers) == set(workers))
        if server.proc.poll() is None and "Traceback" in server.tail(200):
            print("gunicorn log has tracebacks:\n" + server.tail(30))
            ok = False
        print("RESULT: " + ("PASS" if ok else "FAIL") + f" (errors must be 0, update visible < {VISIBLE_LIMIT_S:g} s)")
        return 0 if ok else 1
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except (RuntimeError, subprocess.CalledProcessError, OSError) as e:
        print(f"load test failed: {e}", file=sys.stderr)
        return 2
    finally:
        stop.set()
        if server is not None:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
