"""The Dataset object and per-pixel Bernoulli binarization."""

from __future__ import annotations

import pytest
import torch

from concretelab.data import Dataset, binarize


def binary(rows: int, seed: int) -> torch.Tensor:
    return (torch.rand(rows, 16, generator=torch.Generator().manual_seed(seed)) < 0.4).to(torch.uint8)


def small(**overrides) -> Dataset:
    fields = {"name": "toy", "train": binary(10, 0), "valid": binary(4, 1), "test": binary(3, 2), "image_shape": (4, 4)}
    fields.update(overrides)
    return Dataset(**fields)


def test_binarize_frequencies_match_grey_levels():
    # 40,000 draws per level: the standard error of a frequency is <= 0.0025, so 6 sigma is 0.015
    # (failure rate below 1e-8 per level).
    levels = torch.tensor([0, 1, 51, 128, 200, 254, 255], dtype=torch.uint8)
    grey = levels.repeat(40_000, 1)
    draws = binarize(grey, generator=torch.Generator().manual_seed(0))
    assert draws.dtype == torch.float32 and set(draws.unique().tolist()) <= {0.0, 1.0}
    frequency = draws.mean(dim=0)
    assert torch.allclose(frequency, levels.double().div(255).float(), atol=0.015)
    assert frequency[0] == 0 and frequency[-1] == 1


def test_binarize_is_a_function_of_the_generator():
    grey = torch.randint(0, 256, (5, 784), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    first = binarize(grey, generator=torch.Generator().manual_seed(7), dtype=torch.uint8)
    assert first.dtype == torch.uint8
    assert torch.equal(first, binarize(grey, generator=torch.Generator().manual_seed(7), dtype=torch.uint8))
    assert not torch.equal(first, binarize(grey, generator=torch.Generator().manual_seed(8), dtype=torch.uint8))


def test_binarize_rejects_non_uint8():
    with pytest.raises(
        ValueError, match=r"grey must be a torch.uint8 tensor of levels 0..255, got dtype torch.float32"
    ):
        binarize(torch.rand(3, 4))


def test_train_mean_and_eval_batches():
    data = small()
    assert torch.allclose(data.train_mean, data.train.double().mean(dim=0).float())
    assert data.num_pixels == 16
    batches = list(data.eval_batches("valid", 3))
    assert [tuple(batch.shape) for batch in batches] == [(3, 16), (1, 16)]
    assert torch.equal(torch.cat(batches), data.valid.float())
    assert "name='toy'" in repr(data) and "train=(10, 16)" in repr(data)


def test_dynamic_dataset_mean_is_that_of_the_binarized_pixel():
    grey = torch.tensor([[0, 255, 51, 102]] * 3, dtype=torch.uint8)
    data = small(
        train=grey, valid=binary(2, 3)[:, :4], test=binary(2, 4)[:, :4], image_shape=(2, 2), dynamic_binarization=True
    )
    assert torch.allclose(data.train_mean, torch.tensor([0.0, 1.0, 0.2, 0.4]))
    for refused in (lambda: next(data.eval_batches("train", 2)), lambda: data.binary_split("train")):
        with pytest.raises(ValueError, match=r"split 'train'.*'toy'.*binarized afresh.*use 'valid' or 'test'"):
            refused()
    assert torch.equal(data.binary_split("valid"), data.valid)  # the binary splits are served as stored


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"valid": binary(4, 1) * 3}, "valid must hold 0/1 pixels, found the value 3"),
        ({"train": torch.full((3, 16), 200, dtype=torch.uint8)}, "train must hold 0/1 pixels, found the value 200"),
        ({"test": binary(3, 2).float()}, r"test must be a torch.uint8 tensor \(N, 16\), got torch.float32"),
        ({"train": binary(10, 0)[:, :15]}, r"train has shape \(10, 15\); expected \(N >= 1, 16\)"),
        ({"image_shape": (4,)}, r"image_shape must be \(H, W\)"),
    ],
)
def test_invalid_datasets_are_rejected(overrides, message):
    with pytest.raises(ValueError, match=message):
        small(**overrides)


def test_unknown_split_name():
    with pytest.raises(ValueError, match=r"name must be one of \('train', 'valid', 'test'\), got 'validation'"):
        small().split("validation")
