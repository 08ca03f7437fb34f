"""search query and search analyze, as people and scripts use them."""

import json
import subprocess
import sys

from search.cli import main


def test_query_prints_a_readable_list(built, capsys):
    assert main(["query", "--index", str(built[1]), "泳ぐ"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("1 件")
    assert "ロボット魚が泳いだ日" in out and "/articles/robot-fish/" in out and "[泳いだ]" in out
    assert "タグ: ロボット" in out


def test_query_past_the_last_page_says_so(built, capsys):
    assert main(["query", "--index", str(built[1]), "--page", "3", "--per-page", "1", "泳ぐ"]) == 0
    assert capsys.readouterr().out.startswith("1 件 (3 ページ目はありません。最後は 1 ページ目です")


def test_query_json_is_the_api_contract(built, capsys):
    assert main(["query", "--index", str(built[1]), "--json", "--tag", "JavaScript", "--per-page", "2", "--page", "2",
                 "--sort", "date", ""]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["total"] == 5 and data["page"] == 2 and len(data["hits"]) == 2
    assert "snippet_text" not in data["hits"][0]


def test_query_without_an_index_says_how_to_build_one(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "search", "query", "--index", str(tmp_path / "none"), "x"],
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and 'Run "search build" first.' in proc.stderr
    assert "Traceback" not in proc.stderr


def test_query_bad_parameter_is_one_line(built, capsys):
    assert main(["query", "--index", str(built[1]), "--per-page", "500", "x"]) == 1
    assert "per_page" in capsys.readouterr().err


def test_analyze_shows_surface_lemma_reading_pos_and_drops(capsys):
    assert main(["analyze", "ﾌﾟﾘﾝﾀｰで泳いだ"]) == 0
    out = capsys.readouterr().out
    assert "プリンタ" in out and "泳ぐ" in out and "オヨイ" in out and "dropped" in out
    assert main(["analyze", "--json", "泳いだ"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["term"] == "泳い" and rows[0]["variants"] == ["泳ぐ"] and rows[1]["dropped"]


def test_report_lists_frequent_empty_and_unclicked_queries(tmp_path, capsys):
    from search.querylog import QueryLog

    log = QueryLog(tmp_path / "q.jsonl")
    for q, hits in [("泳ぐ", 1), ("泳ぐ", 1), ("ぴよ", 0), ("XSS", 1)]:
        log.search({"q": q, "tags": (), "sort": "relevance", "page": 1}, hits, 1.0)
    log.click("泳ぐ", "robot-fish")
    assert main(["report", "--log", str(tmp_path / "q.jsonl")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("4 searches")
    top, empty, unclicked = out.split("\n\n")[1:4]
    assert "2  泳ぐ" in top and "1  ぴよ" in empty and "1  XSS" in unclicked and "泳ぐ" not in unclicked
    assert main(["report", "--log", str(tmp_path / "q.jsonl"), "--since", "2999-01-01"]) == 0
    assert capsys.readouterr().out.startswith("0 searches")
