"""The runnable example of docs/data.md runs."""

from __future__ import annotations

import re

from ._helpers import REPO


def test_docs_example_runs(capsys):
    text = (REPO / "docs" / "data.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.DOTALL)
    assert len(blocks) == 1
    exec(compile(blocks[0], "docs/data.md", "exec"), {})
    assert "Dataset(name='embedded'" in capsys.readouterr().out
