"""The README's bot snippet stays valid against the installed pipecat-ai."""

from __future__ import annotations

import ast
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_snippet_parses_and_its_imports_resolve() -> None:
    snippet = re.search(r"```python\n(.*?)```", README.read_text(), re.S)
    assert snippet is not None
    tree = ast.parse(snippet.group(1))
    imports = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    assert imports
    exec(compile(ast.Module(body=imports, type_ignores=[]), "README.md", "exec"), {})
    lines = snippet.group(1).strip().splitlines()
    assert 20 <= len(lines) <= 30, len(lines)
