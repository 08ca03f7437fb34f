"""Fault injection: writers killed with SIGKILL, two writers at once, a damaged index,
a full disk, and a server answering while the index is rebuilt and updated.

The CLI runs as a subprocess (``python -c LAUNCHER build ...``): the launcher can make
the process SIGKILL itself at an exact point of the build (``SEARCH_TEST_KILL_AT``) or
limit the size of the files it writes (``SEARCH_TEST_FSIZE``); without those variables
it is exactly ``python -m search``.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from search.indexer import build
from search.searcher import Searcher
from search.web import create_app


N_ARTICLES = 400

LAUNCHER = r"""
import os, signal, sys

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

point = os.environ.get("SEARCH_TEST_KILL_AT", "")
if point == "mid_commit":  # segment files written, Whoosh's table of contents not yet
    from whoosh.writing import SegmentWriter
    SegmentWriter._commit_toc = die
elif point == "before_switch":  # new generation renamed into place, CURRENT not yet switched
    import search.indexer as ix
    _write_atomic = ix._write_atomic
    def write_atomic(path, text):
        if path.name == "CURRENT":
            die()
        _write_atomic(path, text)
    ix._write_atomic = write_atomic
elif point == "after_switch":  # CURRENT switched, old generations not yet removed
    import search.indexer as ix
    ix._remove_old_generations = die
elif point in ("analysis", "late"):  # while reading and analysing: the 50th or 350th file
    import search.indexer as ix
    _prepare, calls, fatal = ix._prepare, [], 50 if point == "analysis" else 350
    def prepare(source):
        calls.append(source)
        if len(calls) == fatal:
            die()
        return _prepare(source)
    ix._prepare = prepare
elif point == "before_manifest":  # update: Whoosh committed, the manifest not yet written
    import search.indexer as ix
    ix._write_manifest = die
elif point:
    raise SystemExit(f"unknown kill point {point}")

if os.environ.get("SEARCH_TEST_HOLD"):  # hold the writer lock until the test creates this file
    import time
    import search.indexer as ix
    _prepare_held, release = ix._prepare, os.environ["SEARCH_TEST_HOLD"]
    def prepare_after_release(source):
        while not os.path.exists(release):
            time.sleep(0.01)
        return _prepare_held(source)
    ix._prepare = prepare_after_release

if os.environ.get("SEARCH_TEST_FSIZE"):  # a full disk: writes beyond N bytes fail with EFBIG
    import resource
    n = int(os.environ["SEARCH_TEST_FSIZE"])
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (n, n))

from search.cli import main
sys.exit(main(sys.argv[1:]))
"""

SENTENCES = [
    "新しいプロセッサは消費電力を大幅に削減した。", "東京都内で開かれた発表会には多くの記者が集まった。",
    "開発チームは型推論の改善に取り組んでいる。", "このライブラリはブラウザとサーバの両方で動作する。",
    "検索エンジンの精度を評価するために人手で判定した。", "形態素解析器は文章を単語に分割する。",
    "青森県のりんご農家が新しい品種を育てている。", "プリンターのインクが切れたので買いに行った。",
    "大規模言語モデルの推論コストが下がり続けている。", "週末に映画館で話題の作品を観た。",
    "スマートフォンの新機種が来月発売される予定だ。", "図書館で古い雑誌を読み返した。",
    "ロボットがプールで泳ぐ実験に成功した。", "データベースの移行作業は深夜に行われた。",
    "ネットワークの遅延を測定するツールを書いた。", "春の桜と秋の紅葉を写真に収めた。",
    "電車の遅延で会議に間に合わなかった。", "研究者たちは新しい材料の性質を調べている。",
    "オープンソースの貢献者が世界中から集まっている。", "台風の影響で多くの便が欠航した。",
]
TAGS = ["ニュース", "技術", "JavaScript", "Python", "ガジェット", "科学", "旅行", "映画"]


def token(i: int) -> str:
    """A word found in article *i* only (the analyzer keeps it as one term)."""
    return f"uniq{i:05d}x"


def write_articles(folder: Path, start: int, count: int, size: int = 3000, seed: int = 0) -> None:
    """*count* valid articles of about *size* bytes of Japanese text each."""
    folder.mkdir(parents=True, exist_ok=True)
    rnd = random.Random(seed + start)
    for i in range(start, start + count):
        paragraphs, length = [], 0
        while length < size:
            para = "".join(rnd.choice(SENTENCES) for _ in range(6))
            paragraphs.append(para)
            length += len(para.encode())
        tags = ", ".join(f'"{t}"' for t in rnd.sample(TAGS, 2))
        (folder / f"a{i:05d}.md").write_text(
            f'---\ntitle: "記事 {i} 番 {token(i)}"\nslug: "a{i:05d}"\ndate: "2025-{i % 12 + 1:02d}-{i % 28 + 1:02d}"\n'
            f'tags: [{tags}]\ncontentType: "news"\n---\n# 見出し {i}\n\n' + "\n\n".join(paragraphs) + "\n",
            encoding="utf-8")


def cli_args(command: str, content: Path | None, index: Path, *extra: str) -> list[str]:
    args = [sys.executable, "-c", LAUNCHER, command]
    if content is not None:
        args += ["--content", str(content)]
    return args + ["--index", str(index), *extra]


def env(**extra) -> dict:
    e = {k: v for k, v in os.environ.items() if not k.startswith("SEARCH_")}
    e.update(extra)
    return e


def run(args, timeout=120, **env_extra) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env(**env_extra))


def start(args, **env_extra) -> subprocess.Popen:
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(**env_extra))


def wait_for(condition, timeout: float, what: str, interval: float = 0.005):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def build_dirs(index: Path) -> list[Path]:
    return list(index.glob(".build-*"))


def lock_held(index: Path) -> bool:
    """The writer writes 'pid N' into .lock once it holds the flock and empties it on release."""
    try:
        return (index / ".lock").read_text().startswith("pid")
    except OSError:
        return False


def browse_total(index: Path) -> int:
    return Searcher(index).search("", per_page=50).total


def all_slugs(index: Path) -> list[str]:
    """Every slug, paging through the browse listing (date order, ties by docnum: stable)."""
    s = Searcher(index)
    first = s.search("", per_page=50)
    slugs = [h.slug for h in first.hits]
    for page in range(2, (first.total + 49) // 50 + 1):
        slugs += [h.slug for h in s.search("", per_page=50, page=page).hits]
    return slugs


def assert_serving(index: Path, count: int, probe: int = 7) -> None:
    """The index answers queries, with *count* documents and no duplicates."""
    assert browse_total(index) == count
    slugs = all_slugs(index)
    assert len(slugs) == count and len(set(slugs)) == count
    hits = Searcher(index).search(token(probe)).hits
    assert [h.slug for h in hits] == [f"a{probe:05d}"]


def assert_clean_failure(proc_or_result, *needles: str) -> str:
    """Exit status 1, a message on stderr, no traceback."""
    stderr = proc_or_result.stderr if isinstance(proc_or_result.stderr, str) else proc_or_result.stderr.read()
    assert proc_or_result.returncode == 1, stderr
    assert "Traceback" not in stderr, stderr
    for needle in needles:
        assert needle in stderr, stderr
    return stderr


# --- a corpus built once for the module ----------------------------------------------------------


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """400 articles of ~3 KB and their index, built once; tests work on copies."""
    root = tmp_path_factory.mktemp("faults")
    content, index = root / "content", root / "index"
    write_articles(content, 0, N_ARTICLES)
    started = time.monotonic()
    build(content, index, workers=1)
    return content, index, time.monotonic() - started


@pytest.fixture
def site(corpus, tmp_path):
    """A private copy of the corpus and its index (mtimes kept, so update sees nothing new)."""
    content, index, seconds = corpus
    shutil.copytree(content, tmp_path / "content")
    shutil.copytree(index, tmp_path / "index")
    return tmp_path / "content", tmp_path / "index", seconds


# --- SIGKILL ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_build_whose_worker_process_dies_fails_cleanly(site):
    """A writing worker killed mid-build: the build says so, and the previous index is still served."""
    content, index, _ = site
    write_articles(content, N_ARTICLES, 20)
    old_current = (index / "CURRENT").read_text()
    proc = run(cli_args("build", content, index, "--workers", "2"), SEARCH_TEST_KILL_AT="analysis")
    assert_clean_failure(proc, "indexing process died", "previous index is still being served")
    assert (index / "CURRENT").read_text() == old_current
    assert not build_dirs(index)
    assert_serving(index, N_ARTICLES)
    result = run(cli_args("build", content, index, "--workers", "2"))
    assert result.returncode == 0, result.stderr
    assert "indexed 420" in result.stdout
    assert_serving(index, N_ARTICLES + 20, probe=N_ARTICLES + 3)


@pytest.mark.slow
def test_build_killed_at_any_point_leaves_the_previous_index_serving(site):
    content, index, _ = site
    write_articles(content, N_ARTICLES, 20)  # the next complete build has 420 documents
    old_current = (index / "CURRENT").read_text()

    def killed_build(point: str) -> None:
        proc = run(cli_args("build", content, index, "--workers", "1"), SEARCH_TEST_KILL_AT=point)
        assert proc.returncode == -signal.SIGKILL, (point, proc.stderr)

    for point in ("analysis", "late", "mid_commit", "before_switch"):
        killed_build(point)
        assert (index / "CURRENT").read_text() == old_current, point
        assert_serving(index, N_ARTICLES)
        assert Searcher(index).search(token(N_ARTICLES + 3)).total == 0

    # The next build cleans up whatever the killed ones left, without help.
    result = run(cli_args("build", content, index, "--workers", "1"))
    assert result.returncode == 0, result.stderr
    assert "indexed 420" in result.stdout
    assert not build_dirs(index)
    assert not list(index.glob(".*.tmp"))
    assert len(list(index.glob("gen-*"))) <= 2
    assert_serving(index, N_ARTICLES + 20, probe=N_ARTICLES + 3)

    # Killed after the switch: the new index is complete and served; the next build tidies up.
    write_articles(content, N_ARTICLES + 20, 5)
    killed_build("after_switch")
    assert_serving(index, N_ARTICLES + 25, probe=N_ARTICLES + 22)
    result = run(cli_args("build", content, index, "--workers", "1"))
    assert result.returncode == 0, result.stderr
    assert not build_dirs(index) and len(list(index.glob("gen-*"))) <= 2
    assert_serving(index, N_ARTICLES + 25, probe=N_ARTICLES + 22)


@pytest.mark.slow
def test_update_killed_midway_then_the_next_update_gets_every_article_once(site):
    content, index, _ = site
    write_articles(content, N_ARTICLES, 200)
    total = N_ARTICLES + 200

    # Killed while analysing the new files, and while Whoosh commits. (A kill after a
    # fixed delay is not a fixed point: the update got fast enough to finish first.)
    result = run(cli_args("update", content, index), SEARCH_TEST_KILL_AT="analysis")
    assert result.returncode == -signal.SIGKILL, result.stderr
    assert_serving(index, N_ARTICLES)
    result = run(cli_args("update", content, index), SEARCH_TEST_KILL_AT="mid_commit")
    assert result.returncode == -signal.SIGKILL, result.stderr
    assert_serving(index, N_ARTICLES)

    # Killed after Whoosh committed but before the manifest was written: the new articles
    # are served; the next update indexes them again and must not duplicate them.
    result = run(cli_args("update", content, index), SEARCH_TEST_KILL_AT="before_manifest")
    assert result.returncode == -signal.SIGKILL, result.stderr
    assert browse_total(index) == total

    result = run(cli_args("update", content, index))
    assert result.returncode == 0, result.stderr
    assert_serving(index, total, probe=N_ARTICLES + 150)
    assert Searcher(index).health()["documents"] == total
    # And a further update has nothing to do.
    result = run(cli_args("update", content, index))
    assert result.returncode == 0 and "indexed 0, updated 0, deleted 0" in result.stdout, result.stdout
    assert_serving(index, total)


# --- two writers --------------------------------------------------------------------------------


@pytest.mark.slow
def test_two_updates_at_once_one_is_refused_or_both_wait(site):
    content, index, _ = site
    write_articles(content, N_ARTICLES, 150)

    release = index.parent / "release-1"
    first = start(cli_args("update", content, index), SEARCH_TEST_HOLD=str(release))
    wait_for(lambda: lock_held(index), 30, "the first update to take the lock")
    second = run(cli_args("update", content, index), timeout=60)
    assert first.poll() is None, "the first update finished too soon to test the lock"
    stderr = assert_clean_failure(second, "Another build or update is running")
    assert len(stderr.strip().splitlines()) == 1
    release.touch()
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert_serving(index, N_ARTICLES + 150)

    # With --wait both succeed, one after the other.
    write_articles(content, N_ARTICLES + 150, 100)
    release = index.parent / "release-2"
    first = start(cli_args("update", content, index), SEARCH_TEST_HOLD=str(release))
    wait_for(lambda: lock_held(index), 30, "the first update to take the lock")
    second = start(cli_args("update", content, index, "--wait", "30"))
    release.touch()
    err2 = second.communicate(timeout=120)[1]
    err1 = first.communicate(timeout=120)[1]
    assert first.returncode == 0 and second.returncode == 0, (err1, err2)
    assert_serving(index, N_ARTICLES + 250, probe=N_ARTICLES + 200)


@pytest.mark.slow
def test_update_during_a_build_is_refused_and_the_build_completes(site):
    content, index, _ = site
    write_articles(content, N_ARTICLES, 30)
    release = index.parent / "release-build"
    builder = start(cli_args("build", content, index, "--workers", "1"), SEARCH_TEST_HOLD=str(release))
    wait_for(lambda: build_dirs(index), 30, "the build to start")
    updater = run(cli_args("update", content, index), timeout=60)
    assert builder.poll() is None
    assert_clean_failure(updater, "Another build or update is running")
    # A second build is refused the same way.
    assert_clean_failure(run(cli_args("build", content, index, "--workers", "1")), "Another build or update")
    assert_serving(index, N_ARTICLES)  # still the old index while the build runs
    release.touch()
    err = builder.communicate(timeout=120)[1]
    assert builder.returncode == 0, err
    assert_serving(index, N_ARTICLES + 30, probe=N_ARTICLES + 29)


# --- a damaged index ----------------------------------------------------------------------------


def _segment_files(index: Path) -> list[Path]:
    """The files of the served generation's segments (postings, terms, stored fields)."""
    files = [p for p in index.glob("gen-*/MAIN_*") if p.name != "MAIN_WRITELOCK"]
    assert files, "no segment files to damage"
    return files


def _damage_delete_segment(index: Path):
    for seg in _segment_files(index):
        seg.unlink()


def _damage_truncate_segment(index: Path):
    for seg in _segment_files(index):
        with open(seg, "r+b") as f:
            f.truncate(seg.stat().st_size // 3)


def _damage_empty_segment(index: Path):
    for seg in _segment_files(index):
        seg.write_bytes(b"")


def _damage_garbage_toc(index: Path):
    for toc in index.glob("gen-*/_MAIN_*.toc"):
        toc.write_bytes(b"\x00garbage" * 10)


def _damage_delete_toc(index: Path):
    for toc in index.glob("gen-*/_MAIN_*.toc"):
        toc.unlink()


def _damage_delete_current(index: Path):
    (index / "CURRENT").unlink()


def _damage_current_missing_folder(index: Path):
    (index / "CURRENT").write_text("gen-20990101000000-deadbeef\n")


def _damage_current_garbage(index: Path):
    (index / "CURRENT").write_bytes(b"\xff\xfe../../etc\n")


def _damage_current_is_a_folder(index: Path):
    (index / "CURRENT").unlink()
    (index / "CURRENT").mkdir()


def _damage_unreadable_generation(index: Path):
    for gen in index.glob("gen-*"):
        gen.chmod(0)


DAMAGES = [
    pytest.param(_damage_delete_segment, id="segment-deleted"),
    pytest.param(_damage_truncate_segment, id="segment-truncated"),
    pytest.param(_damage_empty_segment, id="segment-emptied"),
    pytest.param(_damage_garbage_toc, id="toc-garbage"),
    pytest.param(_damage_delete_toc, id="toc-deleted"),
    pytest.param(_damage_delete_current, id="current-deleted"),
    pytest.param(_damage_current_missing_folder, id="current-names-missing-generation"),
    pytest.param(_damage_current_garbage, id="current-garbage"),
    pytest.param(_damage_current_is_a_folder, id="current-is-a-folder"),
    pytest.param(_damage_unreadable_generation, id="generation-chmod-000",
                 marks=pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")),
]


@pytest.fixture
def small_site(workdir):
    content, index = workdir
    build(content, index, workers=1)
    return content, index


# Whoosh leaks the file of a garbage table of contents when it fails to read it.
@pytest.mark.filterwarnings("ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("damage", DAMAGES)
def test_damaged_index_is_reported_clearly_and_rebuilt(small_site, damage, tmp_path):
    content, index = small_site
    count = browse_total(index)
    damage(index)
    try:
        # The command line: one line that says to run "search build", no traceback.
        result = run([sys.executable, "-m", "search", "query", "--index", str(index), "x"], timeout=60)
        assert result.returncode != 0
        assert "Traceback" not in result.stderr, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "search build" in lines[0], result.stderr

        # The web app: 503 with a reason, JSON for the API, never a 500.
        app = create_app({"index_dir": str(index)})
        client = app.test_client()
        health = client.get("/health")
        assert health.status_code == 503, health.get_data(as_text=True)
        assert health.json["status"] != "ok" and health.json["reason"]
        for url in ("/api/search?q=x", "/api/suggest?q=x", "/api/tags"):
            r = client.get(url)
            assert r.status_code == 503, (url, r.status_code, r.get_data(as_text=True))
            assert r.is_json and r.json["status"] == 503 and r.json["error"]
            assert str(tmp_path) not in r.get_data(as_text=True), "the server's file paths leak"
        page = client.get("/?q=x")
        assert page.status_code == 503 and "search build" in page.get_data(as_text=True)
    finally:
        for gen in index.glob("gen-*"):
            gen.chmod(0o755)

    # "search build" recovers without manual cleanup; the running app notices.
    result = run([sys.executable, "-m", "search", "build", "--content", str(content), "--index", str(index),
                  "--workers", "1"], timeout=60)
    assert result.returncode == 0, result.stderr
    assert browse_total(index) == count
    assert client.get("/health").status_code == 200
    assert client.get("/api/search?q=x").status_code == 200


# --- disk full ----------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("limit", [16 * 1024, 64 * 1024])
def test_disk_full_during_build_fails_cleanly_and_keeps_the_old_index(tmp_path, limit):
    content, index = tmp_path / "content", tmp_path / "index"
    write_articles(content, 0, 120)
    build(content, index, workers=1)
    before = (index / "CURRENT").read_text()
    write_articles(content, 120, 10)

    result = run(cli_args("build", content, index, "--workers", "1"), timeout=120, SEARCH_TEST_FSIZE=str(limit))
    print(f"disk full ({limit} bytes): exit {result.returncode}, stderr: {result.stderr.strip()!r}")
    stderr = assert_clean_failure(result)
    assert stderr.startswith("search: ")
    assert re.search(r"disk|space|too large|write", stderr, re.I), stderr
    assert "previous index is still being served" in stderr
    assert (index / "CURRENT").read_text() == before
    assert_serving(index, 120)

    # The server keeps answering from the old index; the next build (with room) recovers.
    client = create_app({"index_dir": str(index)}).test_client()
    assert client.get("/health").json["documents"] == 120
    result = run(cli_args("build", content, index, "--workers", "1"))
    assert result.returncode == 0, result.stderr
    assert not build_dirs(index)
    assert_serving(index, 130, probe=125)


@pytest.mark.slow
def test_disk_full_during_update_fails_cleanly(tmp_path):
    content, index = tmp_path / "content", tmp_path / "index"
    write_articles(content, 0, 60)
    build(content, index, workers=1)
    write_articles(content, 60, 60)
    result = run(cli_args("update", content, index), SEARCH_TEST_FSIZE=str(64 * 1024))
    print(f"disk full during update: exit {result.returncode}, stderr: {result.stderr.strip()!r}")
    assert_clean_failure(result)
    assert_serving(index, 60)
    result = run(cli_args("update", content, index))
    assert result.returncode == 0, result.stderr
    assert_serving(index, 120, probe=100)


# --- serving while writing ----------------------------------------------------------------------


@pytest.mark.slow
def test_server_answers_every_request_during_build_and_update(site):
    from werkzeug.serving import make_server

    content, index, _ = site
    app = create_app({"index_dir": str(index)})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    threading.Thread(target=server.serve_forever, daemon=True).start()

    stop = threading.Event()
    failures: list[str] = []
    counts = {"requests": 0}
    queries = ["東京", "型推論", "プロセッサ 電力", '"形態素解析"', "", "ロボット -プール", token(5)]

    def hammer():
        n = 0
        while not stop.is_set():
            q = queries[n % len(queries)]
            url = f"{base}/api/search?q={urllib.parse.quote(q)}&page={n % 3 + 1}"
            if n % 11 == 0:
                url = f"{base}/health"
            n += 1
            try:
                with urllib.request.urlopen(url, timeout=10) as r:
                    json.loads(r.read())
                    if r.status != 200:
                        failures.append(f"{url}: {r.status}")
            except urllib.error.HTTPError as e:
                failures.append(f"{url}: {e.code} {e.read()[:300]!r}")
            except Exception as e:  # noqa: BLE001 - any failure counts
                failures.append(f"{url}: {type(e).__name__}: {e}")
            counts["requests"] += 1

    clients = [threading.Thread(target=hammer, daemon=True) for _ in range(2)]
    for t in clients:
        t.start()
    try:
        write_articles(content, N_ARTICLES, 20)
        result = run(cli_args("build", content, index, "--workers", "1"))
        assert result.returncode == 0, result.stderr
        time.sleep(0.3)

        write_articles(content, N_ARTICLES + 20, 40)
        (content / "a00003.md").unlink()
        result = run(cli_args("update", content, index))
        assert result.returncode == 0, result.stderr
        returned = time.monotonic()
        probe = f"{base}/api/search?q={token(N_ARTICLES + 33)}"

        def found():
            with urllib.request.urlopen(probe, timeout=5) as r:
                return json.loads(r.read())["total"] == 1

        wait_for(found, 1.0, "the server to find an article added by the update", interval=0.02)
        seen_after = time.monotonic() - returned
        with urllib.request.urlopen(f"{base}/api/search?q={token(3)}", timeout=5) as r:
            assert json.loads(r.read())["total"] == 0, "a deleted article is still found"
        with urllib.request.urlopen(f"{base}/health", timeout=5) as r:
            assert json.loads(r.read())["documents"] == N_ARTICLES + 59
    finally:
        stop.set()
        for t in clients:
            t.join(timeout=30)
        server.shutdown()
    print(f"{counts['requests']} requests during build and update; new article seen after {seen_after:.3f} s")
    assert counts["requests"] > 50
    assert not failures, failures[:5]
