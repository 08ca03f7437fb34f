"""The README's set-up is what CI runs, and every CLI command is documented."""

import re
from pathlib import Path

from search.cli import _parser

ROOT = Path(__file__).resolve().parents[1]


def _readme_block(heading: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split(f"## {heading}", 1)[1]
    return re.search(r"```sh\n(.*?)\n```", section, re.S).group(1).strip()


def test_ci_runs_the_readme_install_then_test_command():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    install, test = _readme_block("Install and run"), _readme_block("Tests")
    assert install in ci and test in ci
    assert ci.index(install) < ci.index(test)


def test_every_command_is_in_the_readme():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = _parser()._subparsers._group_actions[0].choices
    for name in commands:
        assert f"search {name}" in readme, name
