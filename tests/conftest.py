import shutil
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
ARTICLES = FIXTURES / "articles"
CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"


def pytest_report_header(config):
    import flask
    import fugashi
    import whoosh

    return (f"whoosh {whoosh.versionstring()}, fugashi {fugashi.__version__}, flask {flask.__version__}, "
            f"python {sys.version.split()[0]}")


def copy_articles(dest: Path) -> Path:
    shutil.copytree(ARTICLES, dest)
    return dest


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    """(content_dir, index_dir) of the fixture articles, built once for the session."""
    from search.indexer import build

    root = tmp_path_factory.mktemp("built")
    content = copy_articles(root / "content")
    index = root / "index"
    build(content, index, workers=1)
    return content, index


@pytest.fixture(scope="session")
def searcher(built):
    from search.searcher import Searcher

    s = Searcher(built[1])
    yield s
    s.close()


@pytest.fixture
def workdir(tmp_path):
    """A fresh copy of the fixture articles and an empty index folder."""
    return copy_articles(tmp_path / "content"), tmp_path / "index"


@pytest.fixture
def app(built):
    from search.web import create_app

    app = create_app({"index_dir": str(built[1]), "cors_origins": ["https://blog.example.com"]})
    yield app
    app.extensions["searcher"].close()


@pytest.fixture
def client(app):
    return app.test_client()


def write_article(folder: Path, name: str, title: str, body: str = "本文です。", **fields) -> Path:
    """Write a small valid article; extra frontmatter fields as keyword arguments."""
    lines = ["---", f'title: "{title}"']
    for key, value in fields.items():
        lines.append(f"{key}: {value}")
    lines += ["---", body, ""]
    path = folder / name
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
