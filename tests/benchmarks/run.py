"""Benchmark runner: build / update / query / suggest / HTTP / analyzer / peers.

Run from the project's root:  .venv/bin/python -m tests.benchmarks --corpus DIR [--queries FILE]
[--peers] [--http] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from . import queries as Q

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = ROOT / ".venv" / "bin"
SEARCH = str(VENV_BIN / "search")
PEERS_PY = ROOT / ".peers-venv" / "bin" / "python"
PEERS_RUNNER = ROOT.parent / "shared" / "peers" / "run_peers.py"
DEFAULT_QRELS = ROOT / "tests" / "relevance" / "qrels.txt"


# --- helpers -------------------------------------------------------------------------------

def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def pct(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile."""
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100 * len(s) + 0.5)) - 1))
    return s[k]


def summary_ms(values_s: list[float]) -> dict:
    ms = [v * 1000 for v in values_s]
    if not ms:
        return {"n": 0}
    return {"n": len(ms), "p50": pct(ms, 50), "p95": pct(ms, 95), "p99": pct(ms, 99),
            "mean": statistics.fmean(ms), "max": max(ms)}


def dir_size(path: Path) -> tuple[int, int]:
    apparent = allocated = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            apparent += st.st_size
            allocated += st.st_blocks * 512
    return apparent, allocated


def _ppid_map() -> dict[int, int]:
    out = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        out[int(entry.name)] = int(stat[stat.rfind(")") + 2:].split()[1])
    return out


def descendants(pid: int) -> list[int]:
    ppids = _ppid_map()
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in ppids.items() if pp == p]
        found += kids
        todo += kids
    return found


def rss_kb(pid: int, field: str = "VmRSS") -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def mapped_mb(pid: int, index: Path) -> dict:
    """A process's RSS in MB by what is mapped: UniDic's files, the index's files, the rest.

    A file-backed page read through a mapping brings its neighbours into the
    process's RSS with it, when the page cache holds them (the kernel's
    fault-around, 64 KB by default; tests/benchmarks/faultaround.py shows it
    on UniDic's sys.dic), so the dictionary's share is more than MeCab reads.
    """
    totals = {"unidic": 0, "index": 0, "anonymous": 0, "other": 0}
    where, index = None, str(index.resolve())
    try:
        for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
            head = line.split()
            if head and "-" in head[0] and not head[0].endswith(":"):
                path = head[5] if len(head) > 5 else ""
                where = ("unidic" if "unidic" in path else "index" if path.startswith(index)
                         else "anonymous" if not path.startswith("/") else "other")
            elif head and head[0] == "Rss:" and where:
                totals[where] += int(head[1])
    except OSError:
        return {}
    return {k: v / 1024 for k, v in totals.items()}


def smaps_mb(pid: int) -> dict:
    """Pss and private (Private_Clean + Private_Dirty) memory of a process, in MB, from smaps_rollup.

    RSS counts every mapped page the process touched, UniDic's dictionary
    file included, once per process; Pss splits shared pages between the
    processes that map them; private pages are the process's own.
    """
    fields: dict = {}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            name, _, rest = line.partition(":")
            parts = rest.split()
            if len(parts) == 2 and parts[1] == "kB":
                fields[name] = int(parts[0])
    except OSError:
        return {}
    return {"pss": fields.get("Pss", 0) / 1024,
            "private": (fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)) / 1024,
            "pss_anon": fields.get("Pss_Anon", 0) / 1024}


class TreeRss(threading.Thread):
    """Samples the summed VmRSS of a process and its descendants (peak over the samples).

    Also the summed RssAnon (private memory: VmRSS counts the mmapped UniDic
    dictionary, shared by all the processes, once per process), and the
    summed Pss_Anon: RssAnon counts the pages a forked worker still shares
    copy-on-write with its parent in both; Pss_Anon splits them.
    """

    def __init__(self, pid: int, interval: float = 0.25):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak_kb = 0
        self.peak_procs = 0
        self.peak_anon_kb = 0
        self.peak_pss_anon_mb = 0.0
        self._halt = threading.Event()

    def run(self):
        while not self._halt.is_set():
            pids = [self.pid] + descendants(self.pid)
            total = sum(rss_kb(p) for p in pids)
            if total > self.peak_kb:
                self.peak_kb, self.peak_procs = total, len(pids)
            self.peak_anon_kb = max(self.peak_anon_kb, sum(rss_kb(p, "RssAnon") for p in pids))
            self.peak_pss_anon_mb = max(self.peak_pss_anon_mb, sum(smaps_mb(p).get("pss_anon", 0) for p in pids))
            self._halt.wait(self.interval)

    def stop(self):
        self._halt.set()
        self.join()


def run_timed(cmd: list[str], env=None, sample_tree=False) -> dict:
    """Run *cmd*; wall seconds, exit code, max single-process RSS (time -v / RUSAGE_CHILDREN)."""
    use_time = Path("/usr/bin/time").exists()
    full = (["/usr/bin/time", "-v"] + cmd) if use_time else cmd
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    proc = subprocess.Popen(full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT)
    sampler = None
    if sample_tree:
        sampler = TreeRss(proc.pid)
        sampler.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    if sampler:
        sampler.stop()
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    err_s = err.decode("utf-8", "replace")
    res = {"cmd": " ".join(cmd), "wall_s": wall, "rc": proc.returncode,
           "stdout": out.decode("utf-8", "replace")[-2000:]}
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", err_s)
    if m:
        res["max_rss_mb_time_v"] = int(m.group(1)) / 1024
        cpu = re.findall(r"(User|System) time \(seconds\): ([\d.]+)", err_s)
        res["cpu_s"] = sum(float(v) for _k, v in cpu) if cpu else None
        err_s = err_s[: err_s.find("\tCommand being timed")]
    res["ru_maxrss_children_mb"] = after / 1024 if after > before else None  # running max over all children
    if sampler:
        res["tree_rss_peak_mb"] = sampler.peak_kb / 1024
        res["tree_rss_peak_procs"] = sampler.peak_procs
        res["tree_anon_peak_mb"] = sampler.peak_anon_kb / 1024
        res["tree_pss_anon_peak_mb"] = sampler.peak_pss_anon_mb
    res["stderr"] = err_s[-2000:]
    return res


# --- sections ------------------------------------------------------------------------------

def bench_build(content: Path, index: Path) -> dict:
    la0 = loadavg()
    r = run_timed([SEARCH, "build", "--content", str(content), "--index", str(index), "--quiet"], sample_tree=True)
    r["index_bytes"], r["index_bytes_du"] = dir_size(index)
    r["load_before"], r["load_after"] = la0, loadavg()
    if r["rc"] != 0:
        raise SystemExit(f"build failed (rc {r['rc']}): {r['stderr']}")
    return r


NEW_POST = """---
title: "ベンチマーク用の新しい記事 {n}"
slug: "bench-new-post-{n}"
date: "2026-11-{day:02d}"
description: "更新の速さを測るために追加した小さな記事です。"
tags: ["benchmark", "JavaScript"]
contentType: "blog"
---
この記事はインデックスの差分更新にかかる時間を測るために追加しました。
JavaScript と Firefox の話題を少しだけ含みます。非同期処理のテストです。
"""


def bench_update(content: Path, index: Path, words: list[str], reps: int = 3) -> dict:
    trials = []
    la0 = loadavg()
    for n in range(1, reps + 1):
        (content / f"bench-new-post-{n}.md").write_text(NEW_POST.format(n=n, day=n), encoding="utf-8")
        up = run_timed([SEARCH, "update", "--content", str(content), "--index", str(index), "--quiet"])
        qs = [run_timed([SEARCH, "query", "--index", str(index), w]) for w in words[:2]]
        trials.append({"update_s": up["wall_s"], "update_rc": up["rc"], "update_out": up["stdout"].strip(),
                       "update_stderr": up["stderr"].strip(),
                       "update_max_rss_mb": up.get("max_rss_mb_time_v"),
                       "query_s": [q["wall_s"] for q in qs], "query_rc": [q["rc"] for q in qs],
                       "two_queries_s": sum(q["wall_s"] for q in qs)})
    noop = run_timed([SEARCH, "update", "--content", str(content), "--index", str(index), "--quiet"])
    return {"trials": trials, "words": words[:2],
            "update_median_s": statistics.median(t["update_s"] for t in trials),
            "two_queries_median_s": statistics.median(t["two_queries_s"] for t in trials),
            "noop_update_s": noop["wall_s"], "noop_update_out": noop["stdout"].strip(),
            "load_before": la0, "load_after": loadavg()}


def bench_queries(index: Path, items: list[dict], passes: int) -> dict:
    from search.searcher import Searcher

    searcher = Searcher(index)
    la0 = loadavg()
    totals, errors = {}, []
    for it in items:  # warm-up pass (untimed): opens the index, loads facets, warms MeCab
        searcher._cache.clear()
        try:
            totals[Q.label(it)] = searcher.search(**Q.api_kwargs(it), per_page=it.get("per_page", 10)).total
        except Exception as e:  # noqa: BLE001
            errors.append(f"{Q.label(it)}: {type(e).__name__}: {e}")
    times, per_q = [], {Q.label(it): [] for it in items}
    for _ in range(passes):
        for it in items:
            kw = Q.api_kwargs(it)
            kw.setdefault("per_page", 10)
            searcher._cache.clear()
            t0 = time.perf_counter()
            try:
                searcher.search(**kw)
            except Exception:  # noqa: BLE001
                continue
            dt = time.perf_counter() - t0
            times.append(dt)
            per_q[Q.label(it)].append(dt)
    slowest = sorted(((statistics.median(v) * 1000, k) for k, v in per_q.items() if v), reverse=True)[:5]
    res = summary_ms(times)
    res.update({"queries": len(items), "passes": passes, "errors": errors, "totals": totals,
                "zero_hit_queries": [k for k, v in totals.items() if v == 0],
                "slowest_median_ms": slowest, "load_before": la0, "load_after": loadavg()})
    return res


def bench_suggest(index: Path, prefixes: list[str], passes: int = 3) -> dict:
    from urllib.parse import quote

    from search.web import create_app

    app = create_app({"index_dir": str(index)})
    client = app.test_client()
    la0 = loadavg()
    bad = []
    empty = 0
    for p in prefixes:  # warm-up
        r = client.get("/api/suggest?q=" + quote(p))
        if r.status_code != 200:
            bad.append(f"{p}: {r.status_code}")
        elif not r.get_json()["suggestions"]:
            empty += 1
    times = []
    for _ in range(passes):
        for p in prefixes:
            t0 = time.perf_counter()
            client.get("/api/suggest?q=" + quote(p))
            times.append(time.perf_counter() - t0)
    res = summary_ms(times)
    res.update({"prefixes": len(prefixes), "passes": passes, "errors": bad, "empty_results": empty,
                "load_before": la0, "load_after": loadavg()})
    return res


def bench_http(index: Path, items: list[dict], out: Path, seconds: float = 20.0, clients: int = 8) -> dict:
    import http.client
    import itertools
    import socket
    from urllib.parse import urlencode

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, SEARCH_INDEX_DIR=str(index))
    env.pop("SEARCH_QUERY_LOG", None)
    log = open(out / "gunicorn.log", "wb")
    proc = subprocess.Popen([str(VENV_BIN / "gunicorn"), "-w", "2", "-b", f"127.0.0.1:{port}",
                             "search.web:create_app()"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    res: dict = {"port": port, "clients": clients, "seconds": seconds}
    try:
        deadline = time.time() + 60
        up = False
        while time.time() < deadline:
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                c.request("GET", "/health")
                r = c.getresponse()
                r.read()
                c.close()
                if r.status == 200:
                    up = True
                    break
            except OSError:
                pass
            time.sleep(0.2)
        if not up:
            res["error"] = "gunicorn did not answer /health within 60 s"
            return res
        workers = descendants(proc.pid)
        res["workers"] = workers
        res["rss_boot_kb"] = {w: rss_kb(w) for w in workers}
        res["master_rss_kb"] = rss_kb(proc.pid)
        for _ in range(40):  # let both workers open the index
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", "/api/search?q=" + "%E8%A8%AD%E5%AE%9A")
            c.getresponse().read()
            c.close()
        res["rss_start_kb"] = {w: rss_kb(w) for w in workers}

        nq = len(items)
        counter = itertools.count()
        lock = threading.Lock()
        lat: list[float] = []
        statuses: dict = {}
        errors: list[str] = []
        stop_at = time.perf_counter() + seconds
        la0 = loadavg()

        def params(n: int) -> dict:
            it = items[n % nq]
            p = {"q": it.get("q", "")}
            if it.get("tags"):
                p["tag"] = list(it["tags"])
            if it.get("sort"):
                p["sort"] = it["sort"]
            # unique (q, page, per_page) for n < nq*46*3: per-worker caches never hit
            p["per_page"] = 5 + (n // nq) % 46
            p["page"] = it.get("page", 1) + (n // (nq * 46)) % 3
            return p

        def client():
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            mine, my_status, my_err = [], {}, []
            while time.perf_counter() < stop_at:
                n = next(counter)
                url = "/api/search?" + urlencode(params(n), doseq=True)
                t0 = time.perf_counter()
                try:
                    conn.request("GET", url)
                    r = conn.getresponse()
                    r.read()
                    mine.append(time.perf_counter() - t0)
                    my_status[r.status] = my_status.get(r.status, 0) + 1
                    if r.status != 200 and len(my_err) < 5:
                        my_err.append(f"{r.status} {url}")
                except Exception as e:  # noqa: BLE001
                    my_err.append(f"{type(e).__name__}: {e} ({url})")
                    my_status["exception"] = my_status.get("exception", 0) + 1
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.close()
            with lock:
                lat.extend(mine)
                for k, v in my_status.items():
                    statuses[k] = statuses.get(k, 0) + v
                errors.extend(my_err)

        t0 = time.perf_counter()
        threads = [threading.Thread(target=client) for _ in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        issued = next(counter)
        res.update(summary_ms(lat))
        res.update({"requests": len(lat), "wall_s": wall, "rps": len(lat) / wall,
                    "statuses": {str(k): v for k, v in statuses.items()},
                    "errors": sum(v for k, v in statuses.items() if k != 200), "error_samples": errors[:10],
                    "all_unique": issued <= nq * 46 * 3, "issued": issued,
                    "load_before": la0, "load_after": loadavg()})
        res["rss_end_kb"] = {w: rss_kb(w) for w in workers}
        res["smaps_end_mb"] = {w: smaps_mb(w) for w in workers}
        # One request at a time: the latency of an uncached search through
        # HTTP, without the queueing of the concurrent run, once that is over
        # (workers warm).  Each pass adds a trailing space to the query (the
        # same search; a new key for the result cache, one the concurrent run
        # never asked for).  Five passes, as the in-process query latency: with
        # three, p99 was the second slowest of ~180 requests.
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        one, one_errors = [], 0
        for spaces in (" ", "  ", "   ", "    ", "     "):
            for it in items:
                p = {"q": it.get("q", "") + spaces, "per_page": 10, "page": it.get("page", 1)}
                if it.get("tags"):
                    p["tag"] = list(it["tags"])
                if it.get("sort"):
                    p["sort"] = it["sort"]
                t0 = time.perf_counter()
                conn.request("GET", "/api/search?" + urlencode(p, doseq=True))
                r = conn.getresponse()
                r.read()
                one.append(time.perf_counter() - t0)
                one_errors += r.status != 200
        # The floor under any answer: the same connection pattern to /health,
        # which does no search (gunicorn's sync workers close each connection).
        floor = []
        for _ in range(300):
            t0 = time.perf_counter()
            conn.request("GET", "/health")
            conn.getresponse().read()
            floor.append(time.perf_counter() - t0)
        conn.close()
        res["sequential"] = {**summary_ms(one), "errors": one_errors}
        res["floor"] = summary_ms(floor)
        res["mapped_end_mb"] = {w: mapped_mb(w, index) for w in workers}
        res["workers_alive_end"] = [w for w in workers if Path(f"/proc/{w}").exists()]
        res["workers_now"] = descendants(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    return res


def bench_analyzer(content: Path, rounds: int = 3) -> dict:
    """Analyzer throughput next to plain fugashi over the same body texts, in this one process.

    ``terms()`` is what indexing runs (no character offsets, as Whoosh asks
    for none at index time); ``scan()`` adds the offsets that highlighting
    needs.  The three run in turn, *rounds* times; the first round also fills
    the analyzer's per-morpheme cache, so the median is a warm figure and the
    first-round one a cold figure.
    """
    import fugashi

    from search.analysis import scan, terms
    from search.documents import read_article

    bodies, skipped = [], 0
    for path in sorted(content.rglob("*.md")):
        try:
            bodies.append(read_article(path, content).body)
        except Exception:  # noqa: BLE001
            skipped += 1
    nbytes = sum(len(b.encode("utf-8")) for b in bodies)
    la0 = loadavg()
    tagger = fugashi.Tagger()
    runs = {
        "fugashi": lambda b: len([w.surface for w in tagger(b)]),
        "terms": lambda b: len(terms(b)),
        "scan": lambda b: len(scan(b)),
    }
    for fn in runs.values():
        fn("ウォームアップ")
    times: dict[str, list[float]] = {name: [] for name in runs}
    counts: dict[str, int] = {}
    for _ in range(rounds):
        for name, fn in runs.items():
            t0 = time.perf_counter()
            counts[name] = sum(fn(b) for b in bodies)
            times[name].append(time.perf_counter() - t0)
    mb = nbytes / 1e6
    out = {"articles": len(bodies), "skipped": skipped, "mb": mb, "rounds": rounds,
           "load_before": la0, "load_after": loadavg()}
    for name, ts in times.items():
        med = statistics.median(ts)
        out[name] = {"s": med, "first_s": ts[0], "all_s": ts, "tokens": counts[name], "mb_s": mb / med,
                     "tok_s": counts[name] / med}
    for name in ("terms", "scan"):
        out[name]["overhead_pct"] = (out[name]["s"] / out["fugashi"]["s"] - 1) * 100
        out[name]["overhead_first_pct"] = (out[name]["first_s"] / out["fugashi"]["first_s"] - 1) * 100
    return out


def bench_eval(index: Path, queries: Path, qrels: Path) -> dict:
    r = subprocess.run([SEARCH, "eval", "--queries", str(queries), "--qrels", str(qrels), "--index", str(index),
                        "--json"], capture_output=True, text=True, cwd=ROOT)
    if r.returncode != 0:
        return {"error": r.stderr.strip()[-500:]}
    rep = json.loads(r.stdout)
    return {"queries": rep["queries"], **rep["mean"]}


def bench_peers(corpus: Path, queries: Path | None, qrels: Path | None, out: Path) -> dict:
    pout = Path("/tmp/peers-bench")
    cmd = [str(PEERS_PY), str(PEERS_RUNNER), "--corpus", str(corpus), "--reps", "5", "--no-limits",
           "--out", str(pout)]
    if queries:
        cmd += ["--queries", str(queries)]
        if qrels:
            cmd += ["--qrels", str(qrels)]
    la0 = loadavg()
    t0 = time.perf_counter()
    with open(out / "peers.log", "wb") as log:
        rc = subprocess.run(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT).returncode
    res = {"cmd": " ".join(cmd), "rc": rc, "wall_s": time.perf_counter() - t0,
           "load_before": la0, "load_after": loadavg(), "peers": {}}
    name = corpus.name
    try:
        report = json.loads((pout / f"{name}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        res["error"] = str(e)
        return res
    for peer, r in report["peers"].items():
        if not r.get("ok"):
            res["peers"][peer] = {"ok": False, "error": r.get("error") or r.get("skipped")}
            continue
        lt = r["latency_ms"]
        ev = r.get("eval", {}).get("mean", {})
        res["peers"][peer] = {"ok": True, "build_s": r["build_s"], "index_mb": r["index"]["apparent_bytes"] / 1e6,
                              "peak_rss_mb": max(r.get("peak_rss_mb_self") or 0, r.get("peak_rss_mb_child") or 0),
                              "p50": lt["p50"], "p95": lt["p95"], "p99": lt["p99"],
                              "ndcg": ev.get("ndcg"), "mrr": ev.get("mrr"),
                              "other_load_cores": r.get("other_load_cores")}
    res["md"] = str(pout / f"{name}.md")
    return res


# --- report --------------------------------------------------------------------------------

def f(v, nd=1, unit=""):
    if v is None:
        return "-"
    return f"{v:.{nd}f}{unit}"


def render(R: dict) -> str:
    rows = []
    b = R["build"]
    rows.append(("full build: wall", f(b["wall_s"], 2, " s"), f"rc {b['rc']}; CPU (user+sys, incl. workers) {f(b.get('cpu_s'), 1, ' s')}; load {b['load_before']} -> {b['load_after']}"))
    rows.append(("full build: peak RSS (max single process)", f(b.get("max_rss_mb_time_v") or b.get("ru_maxrss_children_mb"), 0, " MB"),
                 "/usr/bin/time -v (wait4 ru_maxrss: largest of the CLI and its pool workers)"))
    rows.append(("full build: peak RSS (sum of process tree)", f(b.get("tree_rss_peak_mb"), 0, " MB"),
                 f"sampled every 0.25 s over {b.get('tree_rss_peak_procs')} processes"))
    rows.append(("full build: peak private memory (sum of RssAnon)", f(b.get("tree_anon_peak_mb"), 0, " MB"),
                 "the shared, mmapped dictionary counted once at most"))
    rows.append(("full build: peak private memory (sum of Pss_Anon)", f(b.get("tree_pss_anon_peak_mb"), 0, " MB"),
                 "pages a worker shares copy-on-write with its parent counted once"))
    rows.append(("index size on disk", f(b["index_bytes"] / 1e6, 2, " MB"), f"du {b['index_bytes_du'] / 1e6:.2f} MB"))
    u = R.get("update")
    if u:
        ups = ", ".join(f"{t['update_s']:.2f}" for t in u["trials"])
        qs = ", ".join(f"{t['two_queries_s']:.2f}" for t in u["trials"])
        rows.append(("update after adding 1 post (median)", f(u["update_median_s"], 2, " s"), f"trials {ups} s; load {u['load_before']} -> {u['load_after']}"))
        rows.append((f"2 CLI queries ({' + '.join(u['words'])}) (median)", f(u["two_queries_median_s"], 2, " s"),
                     f"trials {qs} s; update/2-queries = {u['update_median_s'] / u['two_queries_median_s']:.2f}x"))
        rows.append(("update with nothing changed", f(u["noop_update_s"], 2, " s"), u["noop_update_out"][:60]))
    q = R.get("queries")
    if q:
        rows.append(("query latency p50 / p95 / p99 (API, uncached)",
                     f"{f(q['p50'], 1)} / {f(q['p95'], 1)} / {f(q['p99'], 1)} ms",
                     f"{q['queries']} queries x {q['passes']} passes (n={q['n']}), mean {f(q['mean'], 1)}, max {f(q['max'], 1)} ms; "
                     f"errors {len(q['errors'])}; load {q['load_before']} -> {q['load_after']}"))
    s = R.get("suggest")
    if s:
        rows.append(("/api/suggest p50 / p95 / p99 (test client)", f"{f(s['p50'], 2)} / {f(s['p95'], 2)} / {f(s['p99'], 2)} ms",
                     f"{s['prefixes']} prefixes x {s['passes']}; errors {len(s['errors'])}, empty {s['empty_results']}; load {s['load_before']} -> {s['load_after']}"))
    h = R.get("http")
    if h:
        if h.get("error"):
            rows.append(("HTTP load", "ERROR", h["error"]))
        else:
            one = h.get("sequential")
            if one:
                rows.append(("HTTP latency p50 / p95 / p99, one client, uncached", f"{f(one['p50'], 1)} / {f(one['p95'], 1)} / {f(one['p99'], 1)} ms",
                             f"{one['n']} requests one at a time, after the concurrent run; errors {one['errors']}"))
            fl = h.get("floor")
            if fl:
                rows.append(("HTTP floor: GET /health p50 / p99, one client", f"{f(fl['p50'], 2)} / {f(fl['p99'], 2)} ms",
                             f"{fl['n']} requests: gunicorn and Flask with no search, the least any answer costs"))
            rows.append((f"HTTP gunicorn -w 2, {h['clients']} clients, {h['seconds']:.0f} s: req/s", f(h["rps"], 1),
                         f"{h['requests']} requests, unique keys: {h['all_unique']}; load {h['load_before']} -> {h['load_after']}"))
            rows.append((f"HTTP latency p50 / p99, {h['clients']} clients", f"{f(h['p50'], 1)} / {f(h['p99'], 1)} ms", f"p95 {f(h['p95'], 1)}, max {f(h['max'], 1)} ms"))
            rows.append(("HTTP errors (non-200 + exceptions)", str(h["errors"]), json.dumps(h["statuses"])))
            st = " + ".join(f"{v / 1024:.0f}" for v in h["rss_start_kb"].values())
            en = " + ".join(f"{v / 1024:.0f}" for v in h["rss_end_kb"].values())
            bo = " + ".join(f"{v / 1024:.0f}" for v in h["rss_boot_kb"].values())
            rows.append(("gunicorn workers RSS start -> end", f"{st} -> {en} MB", f"at boot {bo} MB; master {h['master_rss_kb'] / 1024:.0f} MB"))
            sm = [m for m in h.get("smaps_end_mb", {}).values() if m]
            if sm:
                rows.append(("gunicorn workers PSS / private at the end", " + ".join(f"{m['pss']:.0f}" for m in sm) + " / "
                             + " + ".join(f"{m['private']:.0f}" for m in sm) + " MB",
                             "PSS: shared pages (UniDic's mapped dictionary) split between the processes mapping them; "
                             "private: the worker's own"))
            mp = [m for m in h.get("mapped_end_mb", {}).values() if m]
            if mp:
                rows.append(("gunicorn workers RSS by mapping at the end", "; ".join(
                    " + ".join(f"{m[k]:.0f}" for m in mp) + f" {k}" for k in ("unidic", "index", "anonymous", "other")) + " MB",
                    "unidic: UniDic's files mapped by MeCab (with fault-around); index: the index's files"))
    a = R.get("analyzer")
    if a:
        rows.append(("fugashi.Tagger() nodes", f"{f(a['fugashi']['mb_s'], 2)} MB/s", f"{a['fugashi']['tok_s']:,.0f} tokens/s ({a['fugashi']['tokens']:,} tokens, {a['fugashi']['s']:.2f} s)"))
        for name, label in (("terms", "analysis.terms() (indexing)"), ("scan", "analysis.scan() (+ offsets)")):
            x = a[name]
            rows.append((label, f"{f(x['mb_s'], 2)} MB/s", f"{x['tok_s']:,.0f} words/s ({x['tokens']:,} words, {x['s']:.2f} s)"))
            rows.append((f"{name}() overhead vs fugashi (time)", f(x["overhead_pct"], 0, " %"),
                         f"first round {x['overhead_first_pct']:.0f} %; median of {a['rounds']}; {a['mb']:.2f} MB body text, "
                         f"{a['articles']} articles; load {a['load_before']} -> {a['load_after']}"))
    e = R.get("eval")
    if e:
        if e.get("error"):
            rows.append(("relevance", "ERROR", e["error"][:100]))
        else:
            rows.append(("nDCG@10 / MRR@10 (search eval)", f"{e['ndcg']:.3f} / {e['mrr']:.3f}", f"{e['queries']} queries; Recall@10 {e['recall']:.3f}"))
    w1 = max(len(r[0]) for r in rows)
    w2 = max(len(r[1]) for r in rows)
    lines = [f"Benchmark: corpus {R['corpus']} ({R['docs']} files), queries: {R['queries_source']}, started {R['started']}",
             f"{'metric'.ljust(w1)} | {'value'.ljust(w2)} | notes", f"{'-' * w1}-+-{'-' * w2}-+------"]
    lines += [f"{r[0].ljust(w1)} | {r[1].ljust(w2)} | {r[2]}" for r in rows]
    p = R.get("peers")
    if p:
        lines += ["", f"Peers (run_peers.py --reps 5, warm in-process; rc {p['rc']}, {p['wall_s']:.0f} s; load {p['load_before']} -> {p['load_after']})"]
        hdr = f"{'engine':<22} {'build s':>8} {'index MB':>9} {'peak RSS':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'nDCG@10':>8} {'MRR@10':>8}"
        lines += [hdr, "-" * len(hdr)]
        if q:
            lines.append(f"{'ours (uncached API)':<22} {f(b['wall_s'], 2):>8} {f(b['index_bytes'] / 1e6, 2):>9} "
                         f"{f(b.get('max_rss_mb_time_v'), 0):>9} {f(q['p50'], 3):>8} {f(q['p95'], 3):>8} {f(q['p99'], 3):>8} "
                         f"{f((e or {}).get('ndcg'), 3):>8} {f((e or {}).get('mrr'), 3):>8}")
        for name, r in p["peers"].items():
            if not r["ok"]:
                lines.append(f"{name:<22} FAILED/skipped: {str(r['error'])[:80]}")
                continue
            lines.append(f"{name:<22} {f(r['build_s'], 2):>8} {f(r['index_mb'], 2):>9} {f(r['peak_rss_mb'], 0):>9} "
                         f"{f(r['p50'], 3):>8} {f(r['p95'], 3):>8} {f(r['p99'], 3):>8} {f(r['ndcg'], 3):>8} {f(r['mrr'], 3):>8}")
        if p.get("error"):
            lines.append("peers error: " + p["error"])
    return "\n".join(lines)


# --- main ----------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.benchmarks", description=__doc__)
    ap.add_argument("--corpus", required=True, type=Path)
    ap.add_argument("--queries", type=Path, help="TSV qid<TAB>query (default: built-in list for the corpus)")
    ap.add_argument("--qrels", type=Path, help=f"TREC qrels for nDCG/MRR (default with --queries: {DEFAULT_QRELS.relative_to(ROOT)})")
    ap.add_argument("--peers", action="store_true", help="also run the reference engines")
    ap.add_argument("--http", action="store_true", help="also load-test gunicorn -w 2")
    ap.add_argument("--out", type=Path, default=Path("/tmp/bench-results"))
    ap.add_argument("--passes", type=int, default=5, help="timed passes over the queries (default 5)")
    ap.add_argument("--http-seconds", type=float, default=20.0)
    ap.add_argument("--no-analyzer", action="store_true")
    a = ap.parse_args(argv)

    corpus = a.corpus.resolve()
    if not corpus.is_dir():
        ap.error(f"{corpus} is not a folder")
    a.out.mkdir(parents=True, exist_ok=True)
    name, items, prefixes = Q.builtin(corpus)
    queries_source = name
    if a.queries:
        items = Q.from_tsv(a.queries)
        queries_source = f"{a.queries} ({len(items)})"
    qrels = a.qrels or (DEFAULT_QRELS if a.queries else None)
    if qrels and not qrels.exists():
        qrels = None
    words = [it["q"] for it in Q.builtin(corpus)[1] if len(it) == 1 and " " not in it["q"] and it["q"].isascii()][:2]

    R: dict = {"corpus": str(corpus), "docs": sum(1 for _ in corpus.rglob("*.md")), "queries_source": queries_source,
               "started": time.strftime("%Y-%m-%d %H:%M:%S"), "cpus": os.cpu_count()}
    tmp = Path(tempfile.mkdtemp(prefix="search-bench-"))
    try:
        content, index = tmp / "content", tmp / "index"
        subprocess.run(["cp", "-r", str(corpus), str(content)], check=True)
        print(f"[bench] copied corpus to {content}; building ... (load {loadavg()})", file=sys.stderr, flush=True)
        R["build"] = bench_build(content, index)
        print(f"[bench] build {R['build']['wall_s']:.1f} s; update ...", file=sys.stderr, flush=True)
        R["update"] = bench_update(content, index, words)
        print(f"[bench] query latency ({len(items)} queries) ...", file=sys.stderr, flush=True)
        R["queries"] = bench_queries(index, items, a.passes)
        print("[bench] suggest ...", file=sys.stderr, flush=True)
        R["suggest"] = bench_suggest(index, prefixes)
        if a.http:
            print("[bench] HTTP load ...", file=sys.stderr, flush=True)
            http_items = items if a.queries is None else items + Q.builtin(corpus)[1]
            R["http"] = bench_http(index, http_items, a.out, a.http_seconds)
        if not a.no_analyzer:
            print("[bench] analyzer throughput ...", file=sys.stderr, flush=True)
            R["analyzer"] = bench_analyzer(corpus)
        if a.queries and qrels:
            R["eval"] = bench_eval(index, a.queries, qrels)
        if a.peers:
            print("[bench] peers (several minutes) ...", file=sys.stderr, flush=True)
            R["peers"] = bench_peers(corpus, a.queries, qrels, a.out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        out_json = a.out / f"{corpus.name}.json"
        out_json.write_text(json.dumps(R, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
        print(f"[bench] results: {out_json}", file=sys.stderr)
    table = render(R)
    (a.out / f"{corpus.name}.txt").write_text(table + "\n", encoding="utf-8")
    print(table)
    return 0
