"""Every ```python block in README.md and docs/*.md runs, top to bottom, one namespace per file.

A block whose first line is `# not executed: <reason>` is skipped (for commands that need data or hours).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def _blocks(path: Path) -> list[str]:
    return [b for b in BLOCK.findall(path.read_text()) if not b.lstrip().startswith("# not executed:")]


def test_docs_are_found() -> None:
    assert (ROOT / "README.md").exists()
    assert _blocks(ROOT / "README.md"), "README.md must contain a runnable python example"


@pytest.mark.parametrize("path", [p for p in DOCS if _blocks(p)], ids=lambda p: p.name)
def test_examples_run(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    namespace: dict[str, object] = {"__name__": f"docs_example_{path.stem}"}
    for index, block in enumerate(_blocks(path)):
        code = compile(block, f"{path.name}[block {index}]", "exec")
        exec(code, namespace)
