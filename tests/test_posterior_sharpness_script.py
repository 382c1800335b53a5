"""scripts/posterior_sharpness.py: entropies against closed forms, and the command on a small trained run."""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from concretelab.models import build_model
from concretelab.train import train
from train._helpers import small_config

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "posterior_sharpness.py"
_spec = importlib.util.spec_from_file_location("posterior_sharpness", SCRIPT)
sharpness = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sharpness)


def _binary_entropy(p: float) -> float:
    return -p * math.log(p) - (1 - p) * math.log1p(-p)


def test_binary_and_categorical_entropies_match_closed_forms(monkeypatch) -> None:
    model = build_model("6H-784V")
    logits = torch.tensor([0.0, 0.0, 0.0, 10.0, -10.0, 5.0])  # sigma(5) = 0.9933 is not saturated; sigma(10) is
    monkeypatch.setattr(model, "proposal_logits", lambda layer, x, h: logits.expand(x.shape[0], 6))
    [(entropy, saturated)] = sharpness.layer_sharpness(model, torch.zeros(3, 784), torch.Generator().manual_seed(0))
    p10, p5 = 1 / (1 + math.exp(-10)), 1 / (1 + math.exp(-5))
    assert entropy == pytest.approx(3 * math.log(2) + 2 * _binary_entropy(p10) + _binary_entropy(p5), rel=1e-9)
    assert saturated == pytest.approx(2 / 6)

    quaternary = build_model("6H-784V", categories=4)  # 3 units of 4 states
    rows = torch.tensor([[0.0, 0.0, 0.0, 0.0], [20.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    monkeypatch.setattr(quaternary, "proposal_logits", lambda layer, x, h: rows.expand(x.shape[0], 3, 4))
    [(entropy, saturated)] = sharpness.layer_sharpness(quaternary, torch.zeros(2, 784), torch.Generator())
    # uniform: log 4; probabilities (1, e^-20, e^-20, e^-20) / (1 + 3 e^-20); (e, 1, 1, 1) / (e + 3)
    tail = math.exp(-20) / (1 + 3 * math.exp(-20))
    near_one_hot = -(1 - 3 * tail) * math.log1p(-3 * tail) - 3 * tail * math.log(tail)
    e_first = [math.e / (math.e + 3)] + [1 / (math.e + 3)] * 3
    assert entropy == pytest.approx(math.log(4) + near_one_hot - sum(p * math.log(p) for p in e_first), rel=1e-12)
    assert saturated == pytest.approx(1 / 3)


def test_the_command_reports_both_splits_and_every_layer(tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(small_config(run, model="8H-8H-784V", steps=4))
    done = subprocess.run([sys.executable, str(SCRIPT), str(run), "--checkpoint", "last", "--images", "20", "--k", "3"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith(("| train", "| valid"))]
    assert [row.split("|")[1:4] for row in rows] == [
        [" train ", rows[0].split("|")[2], " 0 "], [" train ", rows[0].split("|")[2], " 1 "],
        [" valid ", rows[2].split("|")[2], " 0 "], [" valid ", rows[2].split("|")[2], " 1 "],
    ]
    for row in rows:  # finite bounds and entropies within [0, 8 log 2] for 8 binary units
        nll, entropy = float(row.split("|")[2]), float(row.split("|")[4])
        assert math.isfinite(nll) and nll > 0
        assert 0 <= entropy <= 8 * math.log(2) + 0.05
    bad = subprocess.run([sys.executable, str(SCRIPT), str(run), "--images", "0"], capture_output=True, text=True,
                         timeout=120)
    assert bad.returncode != 0 and "--images and --k must be >= 1" in bad.stderr
