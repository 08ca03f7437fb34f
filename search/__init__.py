"""Japanese full-text search for a Markdown blog: Whoosh + fugashi/UniDic + Flask."""

__version__ = "0.1.0"
