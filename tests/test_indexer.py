"""Building and updating: new, changed, deleted, unchanged files; the switch; the lock; the CLI."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from search.cli import main
from search.errors import IndexLocked, IndexMissing
from search.indexer import CURRENT, WriterLock, build, current_generation, update
from search.searcher import Searcher

from .conftest import write_article


def slugs(index_dir, q=""):
    """Every slug the query finds, all pages."""
    searcher, found, page = Searcher(index_dir), [], 1
    while True:
        result = searcher.search(q, per_page=50, page=page)
        found.extend(h.slug for h in result.hits)
        if len(found) >= result.total or not result.hits:
            return sorted(found)
        page += 1


def test_build_indexes_every_article(workdir):
    content, index = workdir
    report = build(content, index, workers=1)
    assert report.indexed == 8 and not report.skipped
    assert len(slugs(index)) == 8
    assert (index / CURRENT).read_text().strip() == report.generation


def test_build_with_worker_processes_gives_the_same_index(workdir, tmp_path):
    content, index = workdir
    for n in range(60):  # enough files for the process pool to be used
        write_article(content, f"extra-{n}.md", f"追加記事{n}", body=f"本文{n}です。")
    build(content, index, workers=2)
    build(content, tmp_path / "single", workers=1)
    assert len(slugs(index)) == 68
    assert slugs(index) == slugs(tmp_path / "single")
    for q in ("追加記事", "本文", "ロボット", "泳ぐ"):
        assert slugs(index, q) == slugs(tmp_path / "single", q)
    assert Searcher(index).search("追加記事", per_page=1).total == 60
    # Ties (60 articles alike, equal scores and dates) come in the same order: documents
    # are numbered in file order whatever the number of workers.
    for sort in ("relevance", "date"):
        pages = [[h.slug for h in Searcher(i).search("追加記事", sort=sort, per_page=50).hits]
                 for i in (index, tmp_path / "single")]
        assert pages[0] == pages[1] and len(pages[0]) == 50


def test_a_build_past_its_postings_budget_writes_more_segments_with_the_same_results(workdir, tmp_path, monkeypatch):
    """A process starts a new segment once one holds MAX_SEGMENT_POSTINGS: what bounds a build's memory."""
    content, index = workdir
    for n in range(40):
        write_article(content, f"extra-{n}.md", f"追加記事{n}", body=f"本文{n}です。泳いだ。")
    build(content, tmp_path / "whole", workers=1)
    monkeypatch.setattr("search.indexer.MAX_SEGMENT_POSTINGS", 100)
    build(content, index, workers=1)
    segments = [len(Searcher(i).snapshot().searcher.reader().leaf_readers()) for i in (index, tmp_path / "whole")]
    assert segments[0] > 3 and segments[1] == 1
    for q in ("", "追加記事", "本文", "泳ぐ", "ロボット"):
        assert slugs(index, q) == slugs(tmp_path / "whole", q)
    for sort in ("relevance", "date"):
        pages = [[(h.slug, round(h.score, 9)) for h in Searcher(i).search("本文", sort=sort, per_page=50).hits]
                 for i in (index, tmp_path / "whole")]
        assert pages[0] == pages[1] and len(pages[0]) == 40


def test_update_adds_changes_deletes_and_leaves_the_rest(workdir):
    content, index = workdir
    build(content, index, workers=1)
    write_article(content, "new.md", "新しい記事", body="量子コンピュータの話。")
    (content / "swim.md").write_text((content / "swim.md").read_text().replace("ロボット魚", "ロボット亀"))
    (content / "js.md").unlink()
    report = update(content, index)
    assert (report.indexed, report.updated, report.deleted, report.unchanged) == (1, 1, 1, 6)
    assert "new" in slugs(index) and "js-async" not in slugs(index)
    assert slugs(index, "亀") == ["robot-fish"] and slugs(index, "量子") == ["new"]
    assert len(slugs(index)) == 8


def test_update_with_nothing_changed_does_nothing(workdir):
    content, index = workdir
    build(content, index, workers=1)
    report = update(content, index)
    assert (report.indexed, report.updated, report.deleted, report.unchanged) == (0, 0, 0, 8)


def test_touched_but_unchanged_file_is_not_reindexed(workdir):
    content, index = workdir
    build(content, index, workers=1)
    path = content / "ts54.md"
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 5_000_000_000))
    report = update(content, index)
    assert report.updated == 0 and report.unchanged == 8


def test_files_with_new_times_and_the_same_content_are_not_analysed_again(workdir, monkeypatch):
    """A fresh checkout or copy gives every file a new time: update hashes them, and reads none as an article."""
    from search import analysis

    content, index = workdir
    build(content, index, workers=1)
    changed = content / "ts54.md"
    changed.write_text(changed.read_text(encoding="utf-8") + "\n追記。\n", encoding="utf-8")
    for path in content.glob("*.md"):
        os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 5_000_000_000))
    analysed = []
    terms = analysis.terms
    monkeypatch.setattr(analysis, "terms", lambda text: analysed.append(text) or terms(text))
    report = update(content, index)
    assert report.updated == 1 and report.unchanged == 7
    assert 0 < len(analysed) <= 4 and any("追記" in text for text in analysed)  # the changed article's fields only
    assert slugs(index, "追記") == ["ts54"]
    served, gen = Searcher(index).health(), current_generation(index)
    folder = gen.stat().st_mtime_ns
    for path in content.glob("*.md"):  # touched again, nothing changed: the index is left as it is
        os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 5_000_000_000))
    assert update(content, index).unchanged == 8
    assert Searcher(index).health() == served
    assert gen.stat().st_mtime_ns == folder  # what servers watch to reopen the index
    assert update(content, index).unchanged == 8


def test_update_without_an_index_builds_one(workdir):
    content, index = workdir
    assert update(content, index).indexed == 8


def test_file_that_breaks_is_removed_and_reported(workdir):
    content, index = workdir
    build(content, index, workers=1)
    (content / "ts54.md").write_text("no frontmatter any more")
    report = update(content, index)
    assert report.deleted == 1 and report.skipped[0][0] == "ts54.md"
    assert "ts54" not in slugs(index)


def test_an_impossible_date_skips_its_article_not_the_build(workdir):
    """YAML reads 2012-02-30 as a date and the calendar refuses it: that file is reported, the rest indexed."""
    content, index = workdir
    (content / "bad-date.md").write_text("---\ntitle: 日付の壊れた記事\ndate: 2012-02-30\n---\n本文\n", encoding="utf-8")
    report = build(content, index, workers=1)
    assert report.indexed == 8 and [(rel, reason) for rel, reason in report.skipped] == [
        ("bad-date.md", "frontmatter has an impossible value: day is out of range for month")]


def test_duplicate_slug_is_skipped_with_the_other_file_named(workdir):
    content, index = workdir
    write_article(content, "copy.md", "コピー", slug="ts54")
    report = build(content, index, workers=1)
    assert any("already used by" in why for _, why in report.skipped)
    assert slugs(index).count("ts54") == 1


@pytest.mark.parametrize("workers", [1, 2])
def test_duplicate_slug_keeps_the_first_file_with_worker_processes(workdir, workers):
    """Files written by different processes: the first in file order keeps the slug, whatever process took it."""
    content, index = workdir
    for n in range(60):
        write_article(content, f"extra-{n:02d}.md", f"追加記事{n}", body=f"本文{n}です。")
    write_article(content, "zz-copy.md", "重複した記事", slug="extra-03", body="重複の本文です。")
    write_article(content, "aa-first.md", "先の記事", slug="shared", body="先の本文です。")
    write_article(content, "ab-second.md", "後の記事", slug="shared", body="後の本文です。")
    report = build(content, index, workers=workers)
    assert sorted(rel for rel, _ in report.skipped) == ["ab-second.md", "zz-copy.md"]
    assert report.indexed == 8 + 60 + 1
    assert slugs(index, "重複") == [] and slugs(index, "後の本文") == []
    assert slugs(index, "先の本文") == ["shared"]
    assert len(slugs(index)) == 69
    assert Searcher(index).search("本文", per_page=1).total == 61


def test_rebuild_switches_generation_and_keeps_only_one_old(workdir):
    content, index = workdir
    gens = [build(content, index, workers=1).generation for _ in range(3)]
    assert len(set(gens)) == 3
    on_disk = sorted(p.name for p in index.glob("gen-*"))
    assert gens[-1] in on_disk and len(on_disk) == 2


def test_failed_build_leaves_previous_index_serving(workdir, monkeypatch):
    content, index = workdir
    first = build(content, index, workers=1).generation
    import search.indexer as indexer

    def explode(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(indexer, "_write_manifest", explode)
    with pytest.raises(OSError):
        build(content, index, workers=1)
    assert current_generation(index).name == first
    assert not list(index.glob(".build-*"))
    assert len(slugs(index)) == 8


def test_killed_build_keeps_previous_index(workdir):
    content, index = workdir
    build(content, index, workers=1)
    for n in range(150):
        write_article(content, f"bulk-{n}.md", f"大量記事{n}", body="日本語の本文です。" * 200)
    proc = subprocess.Popen([sys.executable, "-m", "search", "build", "--content", str(content), "--index",
                             str(index), "--workers", "1", "--quiet"])
    while proc.poll() is None and not list(index.glob(".build-*")):
        pass
    proc.kill()
    proc.wait()
    assert len(slugs(index)) == 8  # the old generation still answers
    report = build(content, index, workers=1)
    assert report.indexed == 158 and not list(index.glob(".build-*"))


def test_second_writer_is_refused_with_a_clear_message(workdir):
    content, index = workdir
    build(content, index, workers=1)
    with WriterLock(index):
        with pytest.raises(IndexLocked, match="Another build or update is running"):
            update(content, index)


def test_lock_of_a_killed_writer_is_recovered(workdir):
    content, index = workdir
    code = ("import sys, time; from pathlib import Path; from search.indexer import WriterLock\n"
            "l = WriterLock(Path(sys.argv[1])); l.__enter__(); print('locked', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(index)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    with pytest.raises(IndexLocked):
        build(content, index, workers=1)
    proc.kill()
    proc.wait()
    proc.stdout.close()
    assert build(content, index, workers=1).indexed == 8


def test_missing_index_is_reported_with_the_command_that_builds_it(tmp_path):
    with pytest.raises(IndexMissing, match='Run "search build"'):
        current_generation(tmp_path)


# --- the CLI ---------------------------------------------------------------------------------

def test_cli_build_prints_summary_and_skipped_files(workdir, capsys):
    content, index = workdir
    (content / "broken.md").write_text("----\ntitle: x\n----\n")
    code = main(["build", "--content", str(content), "--index", str(index), "--quiet"])
    out, err = capsys.readouterr()
    assert code == 0
    assert out.startswith("build: indexed 8, updated 0, deleted 0, unchanged 0, skipped 1 in ")
    assert "skipped broken.md: frontmatter must start with a line '---'" in err


def test_cli_strict_fails_on_skipped_files(workdir, capsys):
    content, index = workdir
    (content / "broken.md").write_text("")
    assert main(["build", "--content", str(content), "--index", str(index), "--strict"]) == 3
    assert "--strict" in capsys.readouterr().err


def test_cli_update_output(workdir, capsys):
    content, index = workdir
    main(["build", "--content", str(content), "--index", str(index)])
    write_article(content, "more.md", "もう一本")
    assert main(["update", "--content", str(content), "--index", str(index)]) == 0
    assert "update: indexed 1, updated 0, deleted 0, unchanged 8" in capsys.readouterr().out


def test_cli_missing_content_folder_is_an_error(tmp_path, capsys):
    assert main(["build", "--content", str(tmp_path / "nope"), "--index", str(tmp_path / "i")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_cli_locked_index_exit_code(workdir, capsys):
    content, index = workdir
    build(content, index, workers=1)
    with WriterLock(index):
        assert main(["update", "--content", str(content), "--index", str(index)]) == 1
    assert "Another build or update is running" in capsys.readouterr().err


def test_cli_reads_folders_from_the_environment(workdir, monkeypatch, capsys):
    content, index = workdir
    monkeypatch.setenv("SEARCH_CONTENT_DIR", str(content))
    monkeypatch.setenv("SEARCH_INDEX_DIR", str(index))
    assert main(["build"]) == 0
    assert (index / CURRENT).exists()


def test_progress_bar_only_on_a_terminal(workdir):
    content, index = workdir
    proc = subprocess.run([sys.executable, "-m", "search", "build", "--content", str(content), "--index", str(index)],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and "indexing [" not in proc.stderr


def index_both_ways(content, tmp_path) -> dict:
    """Readers over the articles of *content* written by Whoosh's SegmentWriter ("whoosh") and by ours ("ours")."""
    from whoosh import index as whoosh_index

    from search.indexer import Report, _prepare, _Writer, scan, schema

    docs = [doc for _, doc, _, _ in map(_prepare, scan(content, Report())) if doc]
    readers = {}
    for name, make in (("whoosh", lambda ix: ix.writer()), ("ours", lambda ix: _Writer(ix))):
        (tmp_path / name).mkdir()
        ix = whoosh_index.create_in(str(tmp_path / name), schema())
        writer = make(ix)
        for doc in docs:
            writer.add_document(**doc)
        writer.commit()
        readers[name] = ix.reader()
    return readers


def test_fast_writer_writes_what_whooshs_writer_writes(tmp_path):
    """The build's writer (postings as arrays per term) against Whoosh's own SegmentWriter, same documents."""
    readers = index_both_ways(Path(__file__).resolve().parents[1] / "content", tmp_path)
    ours, theirs = readers["ours"], readers["whoosh"]
    assert ours.doc_count() >= 30
    terms = list(theirs.all_terms())
    assert list(ours.all_terms()) == terms and len(terms) > 5_000
    for fieldname, text in terms:
        for kind in ("weight", "positions"):
            a, b = ours.postings(fieldname, text), theirs.postings(fieldname, text)
            if b.supports(kind):
                assert list(a.items_as(kind)) == list(b.items_as(kind)), (fieldname, text, kind)
        a, b = ours.term_info(fieldname, text), theirs.term_info(fieldname, text)
        assert (a.weight(), a.doc_frequency(), a.min_length(), a.max_length(), a.max_weight(), a.min_id(),
                a.max_id()) == (b.weight(), b.doc_frequency(), b.min_length(), b.max_length(), b.max_weight(),
                                b.min_id(), b.max_id()), (fieldname, text)
    for docnum in range(ours.doc_count()):
        assert ours.stored_fields(docnum) == theirs.stored_fields(docnum)
        for fieldname in ("title", "tags", "abstract", "body"):
            assert ours.doc_field_length(docnum, fieldname) == theirs.doc_field_length(docnum, fieldname)
    assert ours.field_length("body") == theirs.field_length("body")


@pytest.mark.parametrize("compression", [0, 3])
def test_fast_writer_blocks_match_whooshs(tmp_path, monkeypatch, compression):
    """Many documents sharing words (posting lists of several blocks): the same blocks and statistics as Whoosh's.

    (The files are not byte for byte the same: ours pickles a block with
    protocol 5, Whoosh with protocol 2.)  With and without zlib on the blocks.
    """
    monkeypatch.setattr("search.indexer.COMPRESSION", compression)
    content = tmp_path / "content"
    content.mkdir()
    for n in range(300):
        write_article(content, f"p{n:03d}.md", f"共通の題{n % 7}", body="検索の本文です。" * (1 + n % 5) + f"番号{n}。")
    blocks = {}
    for name, reader in index_both_ways(content, tmp_path).items():
        assert reader.doc_frequency("body", "検索") == 300  # three blocks of up to 128 postings
        if name == "ours":
            assert reader.postings("body", "検索")._compression == compression  # whoosh-reloaded is pinned
        seen = []
        for fieldname, text in reader.all_terms():
            m = reader.postings(fieldname, text)
            while m.is_active():
                seen.append((fieldname, text, m.id(), m.weight(), m.value(), m.block_min_length(),
                             m.block_max_length(), m.block_max_weight()))
                m.next()
        blocks[name] = seen
    assert len(blocks["ours"]) > 5_000
    assert blocks["ours"] == blocks["whoosh"]


def test_build_pickles_posting_blocks_with_protocol_5(tmp_path):
    """A build's posting blocks are pickled with protocol 5 (cheaper to read than Whoosh's 2), last blocks included."""
    from collections import Counter

    from whoosh.codec.whoosh3 import W3LeafMatcher

    from search.indexer import BLOCK_PICKLE_PROTOCOL

    content = tmp_path / "content"
    content.mkdir()
    for n in range(200):
        write_article(content, f"p{n:03d}.md", f"題{n}", body="検索の本文です。" + f"番号{n}。")
    build(content, tmp_path / "index", workers=1)
    searcher = Searcher(tmp_path / "index")  # keeps the snapshot's files open
    reader = searcher.snapshot().searcher.reader()
    leaf = reader.leaf_readers()[0][0]
    protocols = Counter()
    for (fieldname, tbytes), info in leaf._terms.items():
        m = leaf._terms._codec.postings_reader(leaf._terms._postfile, info, reader.schema[fieldname].format)
        while isinstance(m, W3LeafMatcher):
            protocols[m._postfile.get(m._dataoffset, 2)] += 1
            if m._lastblock:
                break
            m._goto(m._nextoffset)
    assert protocols[b"\x80\x02"] == 0 and protocols[bytes([0x80, BLOCK_PICKLE_PROTOCOL])] > 500
