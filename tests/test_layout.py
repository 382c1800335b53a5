"""Imports flow one way through the package (docs/dev/layout.md): a module imports only from layers below its own
(models and estimators, both above objectives, do not import each other)."""

from __future__ import annotations

import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "concretelab"
LAYER = {
    "checks": 0, "devices": 0, "files": 0, "seeding": 0,
    "functional": 1, "data": 1,
    "distributions": 2,
    "objectives": 3,
    "models": 4, "estimators": 4, "schedules": 4,
    "train": 5, "lab": 5, "tour": 5, "pyro": 5,
    "run": 6, "reproduce": 6,
    "cli": 7,
    "__init__": 8, "__main__": 8,
}  # fmt: skip
IMPORT = re.compile(r"^\s*(?:from|import) concretelab\.(\w+)", re.MULTILINE)


def test_every_module_imports_only_from_lower_layers() -> None:
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        top = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        assert top in LAYER, f"{top} is not placed in a layer: add it to LAYER and to docs/dev/layout.md"
        for imported in IMPORT.findall(path.read_text(encoding="utf-8")):
            if imported != top and LAYER[imported] >= LAYER[top]:
                wrong.append(f"{path.relative_to(PACKAGE)} imports concretelab.{imported}")
    assert not wrong, "imports against the layering:\n" + "\n".join(wrong)
