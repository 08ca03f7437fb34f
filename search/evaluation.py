"""``search eval``: nDCG@10, MRR@10 and Recall@10 of the engine on judged queries.

Conventions are trec_eval's (and the peers harness's): qrels lines are
``qid 0 slug grade`` with grade >= 1 relevant; nDCG uses linear gain and a
1/log2(rank+1) discount against the ideal ordering of the judged grades; a
query with no relevant judgment is not scored.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

K = 10


def read_queries(path: Path) -> dict[str, str]:
    """qid -> query from a TSV file (``qid<TAB>query``)."""
    queries = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        qid, _, text = line.partition("\t")
        queries[qid.strip()] = text.strip()
    return queries


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """qid -> {slug: grade} from TREC qrels."""
    qrels: dict[str, dict[str, int]] = defaultdict(dict)
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) >= 4:
            qrels[parts[0]][parts[2]] = int(float(parts[3]))
    return dict(qrels)


def _dcg(gains) -> float:
    return sum(g / math.log2(i + 2) for i, g in enumerate(gains))


def score_query(ranked: list[str], judged: dict[str, int], k: int = K) -> dict | None:
    """nDCG@k, MRR@k and Recall@k of one ranking; None when nothing is relevant."""
    relevant = {d: g for d, g in judged.items() if g >= 1}
    if not relevant:
        return None
    top = ranked[:k]
    rr = next((1.0 / (i + 1) for i, d in enumerate(top) if d in relevant), 0.0)
    ideal = _dcg(sorted(relevant.values(), reverse=True)[:k])
    return {"ndcg": _dcg([relevant.get(d, 0) for d in top]) / ideal, "mrr": rr,
            "recall": len(set(top) & set(relevant)) / len(relevant)}


def evaluate(queries_path: Path, qrels_path: Path, index_dir: Path, k: int = K) -> dict:
    """Run every judged query through the search core and score it."""
    from .searcher import Searcher

    queries = read_queries(queries_path)
    qrels = read_qrels(qrels_path)
    searcher = Searcher(index_dir)
    per_query = []
    for qid, text in queries.items():
        result = searcher.search(text, per_page=k)
        ranked = [h.slug for h in result.hits]
        scores = score_query(ranked, qrels.get(qid, {}), k)
        if scores is None:
            continue
        per_query.append({"qid": qid, "query": text, "total": result.total, **scores})
    per_query.sort(key=lambda r: (r["ndcg"], r["mrr"], r["qid"]))
    n = len(per_query)
    mean = {m: (sum(r[m] for r in per_query) / n if n else 0.0) for m in ("ndcg", "mrr", "recall")}
    return {"k": k, "queries": n, "mean": mean, "per_query": per_query}


def format_report(report: dict) -> str:
    """The report for a terminal: means first, then each query, worst first."""
    k = report["k"]
    mean = report["mean"]
    lines = [f"{report['queries']} queries  nDCG@{k} {mean['ndcg']:.4f}  MRR@{k} {mean['mrr']:.4f}  "
             f"Recall@{k} {mean['recall']:.4f}", "",
             f"{'qid':<8} {'nDCG':>6} {'MRR':>6} {'Recall':>6} {'hits':>6}  query"]
    for r in report["per_query"]:
        lines.append(f"{r['qid']:<8} {r['ndcg']:6.3f} {r['mrr']:6.3f} {r['recall']:6.3f} {r['total']:6d}  {r['query']}")
    return "\n".join(lines)
