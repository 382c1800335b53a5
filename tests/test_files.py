"""concretelab.files: atomic writes that respect the umask (issue 10.10), and every run file written that way."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from concretelab.files import atomic_write, atomic_write_json, atomic_write_text, save_figure
from concretelab.train import train
from train._helpers import small_config


@pytest.fixture
def umask() -> Iterator[callable]:
    previous = os.umask(0o022)

    def set_mask(mask: int) -> None:
        os.umask(mask)

    yield set_mask
    os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_files_get_the_mode_open_would_give(tmp_path, umask, mask: int, expected: int) -> None:
    umask(mask)
    atomic_write_text(tmp_path / "a.txt", "x")
    atomic_write_json(tmp_path / "b.json", {"a": 1})
    atomic_write(tmp_path / "c.bin", lambda handle: handle.write(b"\0"))
    with open(tmp_path / "reference", "w") as handle:  # what a plain open gives, the reference
        handle.write("x")
    assert _mode(tmp_path / "reference") == expected
    for name in ("a.txt", "b.json", "c.bin"):
        assert _mode(tmp_path / name) == expected, name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.json", "c.bin", "reference"]  # no temp left


def test_failed_write_leaves_the_old_file_and_no_temp(tmp_path) -> None:
    atomic_write_text(tmp_path / "a.txt", "old")

    def broken(handle) -> None:
        handle.write(b"partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(tmp_path / "a.txt", broken)
    assert (tmp_path / "a.txt").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_figures_keep_their_format(tmp_path, umask) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure()
    save_figure(fig, tmp_path / "f.png")
    save_figure(fig, tmp_path / "f.pdf")
    plt.close(fig)
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "f.pdf").read_bytes()[:4] == b"%PDF"
    assert _mode(tmp_path / "f.png") == 0o644


def test_every_file_of_a_run_is_readable_by_the_group(tmp_path, umask) -> None:
    umask(0o022)
    out = tmp_path / "run"
    train(small_config(out, steps=4, eval_every=2))
    files = [p for p in out.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"config.toml", "metrics.jsonl", "metrics.csv", "last.safetensors",
                                       "best.safetensors"}
    for path in files:
        assert _mode(path) == 0o644, path
