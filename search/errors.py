"""Typed errors raised by the core; the CLI and the web app turn them into messages."""


class SearchError(Exception):
    """Base class of every error this package raises on purpose."""


class ArticleError(SearchError):
    """An article file that cannot be indexed; the message says why."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class IndexMissing(SearchError):
    """There is no usable index where one was expected.

    ``public`` is the same message without file-system paths, for HTTP answers.
    """

    def __init__(self, message: str, public: str | None = None):
        super().__init__(message)
        self.public = public or message


class IndexLocked(SearchError):
    """Another build or update holds the writer lock."""


class QueryError(SearchError):
    """A query or a filter that cannot be run; the message says what is wrong."""
