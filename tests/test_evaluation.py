"""search eval: metric values computed by hand on a tiny fixture."""

import json
import math

import pytest

from search.cli import main
from search.evaluation import score_query


def test_metrics_by_hand():
    # ranking: a (grade 3), x (unjudged), b (grade 1); c (grade 2) is missed
    scores = score_query(["a", "x", "b"], {"a": 3, "b": 1, "c": 2, "z": 0})
    dcg = 3 / math.log2(2) + 0 + 1 / math.log2(4)          # 3 + 0.5
    ideal = 3 / math.log2(2) + 2 / math.log2(3) + 1 / math.log2(4)
    assert scores["ndcg"] == pytest.approx(dcg / ideal)    # 3.5 / 4.7619
    assert scores["ndcg"] == pytest.approx(0.73501, abs=1e-4)
    assert scores["mrr"] == 1.0
    assert scores["recall"] == pytest.approx(2 / 3)


def test_first_relevant_at_rank_three():
    scores = score_query(["x", "y", "b"], {"b": 2})
    assert scores["mrr"] == pytest.approx(1 / 3)
    assert scores["ndcg"] == pytest.approx((2 / math.log2(4)) / 2)
    assert scores["recall"] == 1.0


def test_query_without_relevant_judgments_is_not_scored():
    assert score_query(["a"], {"a": 0}) is None


def test_eval_command_on_the_fixture_index(built, tmp_path, capsys):
    queries = tmp_path / "q.tsv"
    queries.write_text("q1\t泳ぐ\nq2\tプリンター\nq3\t存在しない言葉ぴよ\n", encoding="utf-8")
    qrels = tmp_path / "qrels.txt"
    qrels.write_text("q1 0 robot-fish 3\nq2 0 printer-guide 3\nq2 0 aomori-dc 1\nq3 0 ts54 2\n", encoding="utf-8")
    assert main(["eval", "--queries", str(queries), "--qrels", str(qrels), "--index", str(built[1]), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    per = {r["qid"]: r for r in report["per_query"]}
    assert per["q1"]["ndcg"] == 1.0 and per["q3"]["ndcg"] == 0.0
    assert report["per_query"][0]["qid"] == "q3"  # worst first
    assert report["queries"] == 3
    assert main(["eval", "--queries", str(queries), "--qrels", str(qrels), "--index", str(built[1])]) == 0
    assert capsys.readouterr().out.startswith("3 queries  nDCG@10 ")
