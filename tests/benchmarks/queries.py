"""Built-in query lists: dicts of Searcher.search keyword arguments."""

from __future__ import annotations

import csv
from pathlib import Path

# Tech blog (efcl-like): JavaScript, Firefox, Greasemonkey, textlint, Node.js ...
BLOG = [
    "JavaScript", "Firefox", "Greasemonkey", "textlint", "Node.js", "npm", "GitHub", "ECMAScript",
    "TypeScript", "React", "WordPress", "Chrome", "Windows", "Vista", "jQuery", "webpack", "Babel",
    "設定", "拡張機能", "アドオン", "ブックマークレット", "ライブラリ", "テスト", "非同期処理", "型推論",
    "正規表現", "文章", "日本語", "高速化", "インストール", "ショートカット", "プラグイン", "エラー",
    "Firefox 拡張", "textlint ルール", "npm パッケージ 公開", "JavaScript テスト", "Node.js モジュール",
    "GitHub Actions", "ECMAScript 仕様", "Greasemonkey スクリプト 作り方", "ニコニコ動画 ダウンロード",
    "React フック", "ブラウザ 起動 速く",
    "せってい", "にほんご", "ぶらうざ", "ていすと",
    '"textlint rule"', '"非同期処理"', '"Greasemonkey script"', "JavaScript -jQuery", "Firefox OR Chrome",
    {"q": "JavaScript", "tags": ("Firefox",)},
    {"q": "ライブラリ", "tags": ("JavaScript",)},
    {"q": "textlint", "sort": "date"},
    {"q": "Firefox", "sort": "date"},
    {"q": "JavaScript", "page": 2},
    {"q": "設定", "page": 2},
    {"q": "", "tags": ("Node.js",)},
]

# News (livedoor) + literature (Aozora)
LARGE = [
    "iPhone", "Android", "Windows", "Apple", "Google", "Twitter", "Facebook", "iPad", "Xperia", "AKB48",
    "サッカー", "野球", "映画", "スマートフォン", "女性", "恋愛", "結婚", "家電", "カメラ", "ゲーム",
    "東京", "日本代表", "監督", "アプリ", "ドコモ", "テレビ", "ダイエット", "料理", "仕事", "震災",
    "夏目漱石", "芥川龍之介", "宮沢賢治", "書生", "汽車", "停車場", "先生", "手紙", "月夜", "故郷",
    "iPhone アプリ", "Android スマートフォン 発表", "日本代表 監督", "映画 公開", "女性 恋愛 結婚",
    "さっかー", "えいが", "けっこん", "とうきょう",
    '"日本代表"', '"スマートフォン"', "映画 -アニメ", "iPhone OR Android",
    {"q": "映画", "tags": ("MOVIE ENTER",)},
    {"q": "アプリ", "tags": ("エスマックス",)},
    {"q": "先生", "tags": ("夏目漱石",)},
    {"q": "iPhone", "sort": "date"},
    {"q": "日本代表", "sort": "date"},
    {"q": "スマートフォン", "page": 2},
    {"q": "女性", "page": 2},
    {"q": "", "tags": ("Sports Watch",)},
]

SUGGEST_BLOG = [
    "J", "Ja", "Jav", "Fi", "Fire", "Gre", "te", "tex", "text", "No", "Node", "np", "Gi", "Git", "EC",
    "Ty", "Re", "Rea", "We", "Ch", "Wi", "jq", "we", "Ba", "ap", "co",
    "設", "拡", "拡張", "ア", "アド", "ブッ", "ライ", "テ", "テス", "非同", "正規", "日本", "高", "イン",
    "せ", "せっ", "にほ", "ぶら", "てす", "らい", "かく", "ふぁい", "JavaScript テ", "Firefox あ",
]

SUGGEST_LARGE = [
    "i", "iP", "iPh", "An", "And", "Wi", "Ap", "Go", "Goo", "Tw", "Fa", "AK", "Xp", "So", "Do",
    "サ", "サッ", "野", "映", "スマ", "女", "恋", "結", "家", "カメ", "ゲ", "東", "日本", "監", "ア",
    "テレ", "ダイ", "料", "夏目", "芥", "書", "汽", "先", "手", "月",
    "さ", "さっ", "えい", "けっ", "とう", "すま", "にほん", "かめ", "iPhone ア", "日本代表 か",
]


def builtin(corpus: Path) -> tuple[str, list[dict], list[str]]:
    """(name, queries, suggest prefixes) for a corpus: the 'large' lists for news/literature."""
    large = corpus.name == "large" or any(p.name.startswith(("aozora-", "ldcc-")) for p in list(corpus.glob("*.md"))[:50])
    qs, sg = (LARGE, SUGGEST_LARGE) if large else (BLOG, SUGGEST_BLOG)
    return ("built-in " + ("large" if large else "blog")), [_item(q) for q in qs], list(sg)


def _item(q) -> dict:
    return dict(q) if isinstance(q, dict) else {"q": q}


def from_tsv(path: Path) -> list[dict]:
    out = []
    with open(path, encoding="utf-8", newline="") as f:
        for row in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            if len(row) >= 2 and row[1].strip() and not row[0].startswith("#"):
                out.append({"q": row[1].strip(), "qid": row[0]})
    return out


def label(item: dict) -> str:
    s = item.get("q", "")
    extra = [f"{k}={v}" for k, v in item.items() if k not in ("q", "qid")]
    return s + (" [" + ", ".join(extra) + "]" if extra else "")


def api_kwargs(item: dict) -> dict:
    return {k: v for k, v in item.items() if k != "qid"}
