"""Reading articles: strict frontmatter, Markdown reduced to plain text."""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .config import MAX_ARTICLE_BYTES
from .errors import ArticleError

try:  # libyaml is ten times faster; PyYAML falls back to pure Python without it
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover
    from yaml import SafeLoader as _Loader

MAX_YAML_DEPTH = 20


@dataclass
class Article:
    """One article as the index sees it."""

    path: str  # relative to the content folder, with forward slashes
    slug: str
    title: str
    date: dt.date | None
    description: str = ""
    summary: str = ""
    tags: list[str] = field(default_factory=list)
    content_type: str = ""
    featured: bool = False
    related_products: list[str] = field(default_factory=list)
    image: str = ""
    read_time: int | None = None
    body: str = ""  # plain text
    sha1: str = ""


def content_hash(data: bytes) -> str:
    """The hash that decides whether a file changed since it was indexed."""
    return hashlib.sha1(data).hexdigest()


def read_article(path: Path, root: Path) -> Article:
    """Read and validate one article file; raise ArticleError saying what is wrong."""
    rel = path.relative_to(root).as_posix()
    try:
        size = path.stat().st_size
        if size > MAX_ARTICLE_BYTES:
            raise ArticleError(rel, f"file is too large ({size / 1048576:.1f} MB; the limit is "
                                    f"{MAX_ARTICLE_BYTES // 1048576} MB)")
        data = path.read_bytes()
    except OSError as e:
        raise ArticleError(rel, f"cannot be read: {e.strerror}") from None
    return parse_article(data, rel)


def parse_article(data: bytes, rel: str) -> Article:
    """Parse the bytes of an article file named *rel*."""
    if not data.strip():
        raise ArticleError(rel, "file is empty")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ArticleError(rel, "the file is encoded as UTF-16; save it as UTF-8")
    nuls = data.count(b"\x00")
    if nuls > len(data) // 100 + 1 or b"\x00\x00" in data:
        raise ArticleError(rel, "binary file (contains NUL bytes), not a Markdown article")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        if _looks_like_shift_jis(data):
            raise ArticleError(rel, f"not valid UTF-8 (looks like Shift_JIS) at byte {e.start}; "
                                    "save the file as UTF-8") from None
        raise ArticleError(rel, f"not valid UTF-8 at byte {e.start} (binary, or another encoding); "
                                "save the file as UTF-8") from None
    if nuls:  # a stray NUL pasted into a real post is not worth losing the post for
        text = text.replace("\x00", " ")
    meta, body = split_frontmatter(text, rel)
    return _article(meta, body, rel, content_hash(data))


def _looks_like_shift_jis(data: bytes) -> bool:
    try:
        data.decode("shift_jis")
        return True
    except UnicodeDecodeError:
        return False


_CLOSE = re.compile(r"^---[ \t]*\r?$", re.M)


def split_frontmatter(text: str, rel: str = "<text>") -> tuple[dict, str]:
    """Split YAML frontmatter from the body, strictly.

    The first line must be exactly ``---`` and a later line must close the
    block with ``---``; python-frontmatter accepts ``----``, an indented
    ``---`` or a block that never closes, which hides real mistakes.
    """
    first, _, rest = text.partition("\n")
    if first.rstrip("\r \t") != "---":
        if first.strip().startswith("---"):
            raise ArticleError(rel, f"frontmatter must start with a line '---', found {first.rstrip()[:20]!r}")
        raise ArticleError(rel, "no frontmatter: the file must start with a '---' line")
    close = _CLOSE.search(rest)
    if close is None:
        raise ArticleError(rel, "frontmatter is not closed: no second '---' line")
    source = rest[: close.start()]
    body = rest[close.end():].lstrip("\r\n")
    if "<<<<<<<" in source or ">>>>>>>" in source:
        raise ArticleError(rel, "frontmatter contains git merge-conflict markers")
    meta = _load_yaml(source, rel)
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise ArticleError(rel, f"frontmatter must be a mapping of fields, not a {type(meta).__name__}")
    return meta, body


def _load_yaml(source: str, rel: str):
    """Load YAML safely: no aliases (billion laughs), bounded nesting."""
    try:
        # Walk the events of every frontmatter: block-style nesting ("a:\n  b:" or "- - - x")
        # needs no brackets, so no cheaper test can tell which ones are deep.
        depth = 0
        for event in yaml.parse(source, Loader=_Loader):
            if isinstance(event, yaml.AliasEvent):
                raise ArticleError(rel, "frontmatter uses YAML aliases (*name), which are not allowed")
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_YAML_DEPTH:
                    raise ArticleError(rel, f"frontmatter is nested more than {MAX_YAML_DEPTH} levels deep")
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
        return yaml.load(source, Loader=_Loader)
    except (ValueError, OverflowError) as e:  # a date YAML reads but the calendar has not: 2012-02-30
        raise ArticleError(rel, f"frontmatter has an impossible value: {e}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 2})" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ArticleError(rel, f"frontmatter is not valid YAML{where}: {problem}") from None


_SLUG = re.compile(r"^[\w][\w.\-]*$")


def _article(meta: dict, body: str, rel: str, sha1: str) -> Article:
    title = _text(meta, "title", rel)
    if not title:
        raise ArticleError(rel, "frontmatter has no title")
    slug = _string(meta, "slug", rel) or Path(rel).stem
    if not _SLUG.match(slug) or len(slug) > 200:
        raise ArticleError(rel, f"slug {slug!r} may only contain letters, digits, '-', '_' and '.'")
    return Article(
        path=rel,
        slug=slug,
        title=title,
        date=_date(meta, rel),
        description=_text(meta, "description", rel),
        summary=_text(meta, "summary", rel),
        tags=_string_list(meta, "tags", rel),
        content_type=_string(meta, "contentType", rel),
        featured=_boolean(meta, "featured", rel),
        related_products=_string_list(meta, "relatedProducts", rel),
        image=_string(meta, "image", rel),
        read_time=_integer(meta, "readTime", rel),
        body=markdown_to_text(body),
        sha1=sha1,
    )


def _text(meta: dict, key: str, rel: str) -> str:
    """A field shown as text: HTML character references in it are the characters they stand for.

    Posts exported from WordPress carry them in their titles ("ソフトウェア&#038;Webサービス",
    "&#8221;シムエントリ&#8221;"); the body's are decoded with its Markdown.
    """
    value = _string(meta, key, rel)
    return html.unescape(value) if "&" in value else value


def _string(meta: dict, key: str, rel: str) -> str:
    value = meta.get(key)
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        raise ArticleError(rel, f"{key} must be a string, not a {type(value).__name__}")
    return str(value).strip()


def _string_list(meta: dict, key: str, rel: str) -> list[str]:
    value = meta.get(key)
    if value is None:
        return []
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list) or any(isinstance(v, (dict, list)) for v in value):
        raise ArticleError(rel, f"{key} must be a list of strings or a comma-separated string")
    seen: list[str] = []
    for v in value:
        v = str(v).strip() if v is not None else ""
        if v and v not in seen:
            seen.append(v)
    return seen


def _boolean(meta: dict, key: str, rel: str) -> bool:
    value = meta.get(key, False)
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "yes", "1", "false", "no", "0", ""):
        return value.strip().lower() in ("true", "yes", "1")
    raise ArticleError(rel, f"{key} must be true or false, not {value!r}")


def _integer(meta: dict, key: str, rel: str) -> int | None:
    value = meta.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ArticleError(rel, f"{key} must be a number of minutes, not {value!r}")
    if isinstance(value, (int, float)):
        return int(value)
    match = re.match(r"^\s*(\d+)", str(value))
    if not match:
        raise ArticleError(rel, f"{key} must be a number of minutes, not {value!r}")
    return int(match.group(1))


def _date(meta: dict, rel: str) -> dt.date | None:
    for key in ("publishedAt", "date"):
        value = meta.get(key)
        if value is None or value == "":
            continue
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        text = str(value).strip()
        try:
            return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).date()
        except ValueError:
            match = re.match(r"^(\d{4})[-/](\d{1,2})[-/](\d{1,2})", text)
            if match:
                try:
                    return dt.date(*map(int, match.groups()))
                except ValueError:
                    pass
            raise ArticleError(rel, f"{key} is not a date: {text[:40]!r} (use YYYY-MM-DD)") from None
    return None


# --- Markdown to text ---------------------------------------------------------

_COMMENT = re.compile(r"<!--.*?-->", re.S)
_IMG_ALT = re.compile(r"<img\b[^>]*?\balt=\"([^\"]*)\"[^>]*>", re.I)
_BLOCK_END = re.compile(r"</(?:p|h[1-6]|li|td|th|tr|pre|blockquote|div|table|dt|dd)>|<br\s*/?>|<hr\s*/?>", re.I)
_TAG = re.compile(r"<[^>]*>")
# A URL is ASCII: Japanese text written right after one (http://example.com/です。) is not part of it.
_URL = re.compile(r"https?://[!#-&(*-;=?-\[\\^-~]+")  # printable ASCII but space " ' ) < > ]
_LIQUID = re.compile(r"\{%.*?%\}|\{\{.*?\}\}", re.S)
_AOZORA = re.compile(r"《[^》]*》|［＃[^］]*］|｜")
_BLANKS = re.compile(r"\n{3,}")
_TABLE_RULE = re.compile(r"^[ \t]*\|?[ \t]*:?-{3,}:?[ \t]*(?:\|[ \t]*:?-{3,}:?[ \t]*)*\|?[ \t]*$", re.M)


def markdown_to_text(markdown: str) -> str:
    """Plain text of a Markdown body: link text, table cells and code kept; syntax, URLs and HTML dropped.

    cmark (the CommonMark reference parser, in C) renders the body to HTML, raw HTML
    included since nothing here is ever shown as HTML; the text is what is
    left between the tags.  It is over twenty times faster than the pure
    Python parsers on the blog corpus.
    """
    import cmarkgfm
    from cmarkgfm.cmark import Options

    markdown = _LIQUID.sub(" ", markdown)
    # Plain CommonMark: cmarkgfm's GFM entry point never frees the document
    # tree (30 KB leaked per article, measured), and for text a table's cells
    # are the same words either way; only its pipes and rules are dropped below.
    rendered = cmarkgfm.markdown_to_html(markdown, options=Options.CMARK_OPT_UNSAFE)
    rendered = _COMMENT.sub(" ", rendered)
    rendered = _IMG_ALT.sub(r" \1 ", rendered)
    rendered = _BLOCK_END.sub("\n", rendered)
    text = html.unescape(_TAG.sub("", rendered))
    text = _TABLE_RULE.sub("", text).replace("|", " ")
    text = _AOZORA.sub("", text)
    text = _URL.sub(" ", text)
    return _BLANKS.sub("\n\n", text).strip()


def iter_article_files(root: Path):
    """Yield the Markdown files under *root*, in a stable order, never leaving it.

    Symbolic links are followed only when they point inside *root*; loops
    and links out of the content folder are reported as skipped.
    """
    root = root.resolve()
    seen_dirs: set[tuple[int, int]] = set()

    def walk(folder: Path):
        try:
            st = folder.stat()
        except OSError:
            return
        if (st.st_dev, st.st_ino) in seen_dirs:
            return
        seen_dirs.add((st.st_dev, st.st_ino))
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as e:
            yield folder, f"cannot list folder: {e.strerror}"
            return
        for entry in entries:
            path = Path(entry.path)
            if entry.name.startswith("."):
                continue
            if entry.is_symlink():
                try:
                    target = path.resolve(strict=True)
                except (OSError, RuntimeError):
                    yield path, "broken or looping symbolic link"
                    continue
                if not target.is_relative_to(root):
                    yield path, "symbolic link points outside the content folder"
                    continue
            if entry.is_dir():
                yield from walk(path)
            elif entry.name.endswith((".md", ".markdown")) and entry.is_file():
                yield path, None

    yield from walk(root)
