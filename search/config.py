"""Every setting in one place: defaults, environment variables (prefix SEARCH_), flags override."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# name -> (environment variable, default, description)
SETTINGS = {
    "content_dir": ("SEARCH_CONTENT_DIR", "content", "folder of Markdown articles"),
    "index_dir": ("SEARCH_INDEX_DIR", "index", "folder of the search index"),
    "url_template": ("SEARCH_URL_TEMPLATE", "/articles/{slug}/", "URL of an article in results"),
    "cors_origins": ("SEARCH_CORS_ORIGINS", "", "comma-separated origins allowed to call the API (off when empty)"),
    "synonyms": ("SEARCH_SYNONYMS", "", "synonyms file (default: the one shipped in the package)"),
    "query_log": ("SEARCH_QUERY_LOG", "", "file the server appends each search to (off when empty)"),
    "cache_seconds": ("SEARCH_CACHE_SECONDS", "60", "Cache-Control max-age of API responses"),
}

MAX_QUERY_LENGTH = 256  # characters of q; longer queries are refused with 400
MAX_PER_PAGE = 50
MAX_PAGE = 100
MAX_ARTICLE_BYTES = 5 * 1024 * 1024
SEARCH_TIME_LIMIT = 2.0  # seconds of scoring per search before the results are cut short


def setting(name: str, override: str | None = None) -> str:
    """The value of a setting: the override if given, else the environment, else the default."""
    env, default, _ = SETTINGS[name]
    if override is not None:
        return override
    return os.environ.get(env, default)


def path_setting(name: str, override: str | os.PathLike | None = None) -> Path:
    """A folder setting resolved against the current directory."""
    return Path(setting(name, None if override is None else str(override))).resolve()


@dataclass(frozen=True)
class WebConfig:
    """What the web app needs to know."""

    index_dir: Path
    url_template: str
    cors_origins: tuple[str, ...]
    cache_seconds: int
    synonyms: str
    query_log: str

    @classmethod
    def from_env(cls, **overrides) -> "WebConfig":
        """Settings from the environment, with keyword overrides (used by tests and the CLI)."""
        origins = overrides.pop("cors_origins", None)
        if origins is None:
            origins = [o.strip() for o in setting("cors_origins").split(",") if o.strip()]
        values = dict(
            index_dir=path_setting("index_dir", overrides.pop("index_dir", None)),
            url_template=overrides.pop("url_template", None) or setting("url_template"),
            cors_origins=tuple(origins),
            cache_seconds=int(overrides.pop("cache_seconds", None) or setting("cache_seconds")),
            synonyms=overrides.pop("synonyms", None) or setting("synonyms"),
            query_log=overrides.pop("query_log", None) or setting("query_log"),
        )
        if overrides:
            raise TypeError(f"unknown settings: {', '.join(sorted(overrides))}")
        return cls(**values)
