"""The .amat parser and the binarized-MNIST file readers: layouts, clear errors, checksum verification."""

from __future__ import annotations

import gzip
import re

import numpy as np
import pytest

from concretelab.data import load_dataset
from concretelab.data.amat import parse_amat
from concretelab.data.binarized_mnist import ARRAY_SHA256, read_amat, read_npz

from ._helpers import amat_bytes, random_binary, write_amat


def test_canonical_layout_round_trips():
    images = random_binary(7, seed=0)
    np.testing.assert_array_equal(parse_amat(amat_bytes(images)), images)


@pytest.mark.parametrize(
    "transform",
    [
        pytest.param(lambda text: text.replace(b"\n", b"\r\n"), id="crlf"),
        pytest.param(lambda text: text.replace(b" ", b"\t"), id="tabs"),
        pytest.param(lambda text: text.replace(b" ", b"   "), id="several spaces"),
        pytest.param(lambda text: text.rstrip(b"\n"), id="no final newline"),
        pytest.param(lambda text: text + b"\n\n  \n", id="trailing blank lines"),
        pytest.param(lambda text: text.replace(b"\n", b" \n"), id="trailing spaces"),
    ],
)
def test_other_whitespace_layouts_parse_to_the_same_array(transform):
    images = random_binary(5, seed=1, width=12)
    np.testing.assert_array_equal(parse_amat(transform(amat_bytes(images)), width=12), images)


def test_bad_character_names_line_and_column():
    text = bytearray(amat_bytes(random_binary(4, seed=2, width=6)))
    text[12 + 4] = ord("2")  # line 2, third value (columns 1, 3, 5 hold values)
    with pytest.raises(ValueError, match=r"f\.amat, line 2, column 5: unexpected character b'2'"):
        parse_amat(bytes(text), width=6, source="f.amat")


def test_value_longer_than_one_character_is_rejected():
    text = amat_bytes(random_binary(3, seed=3, width=4))  # 8 bytes a line
    text = text[:8] + b"10 1 0 1\n" + text[16:]  # line 2 starts with "10"
    with pytest.raises(ValueError, match=r"line 2, column 1: value 10\.\.\. is longer than one character"):
        parse_amat(text, width=4)


def test_wrong_number_of_values_names_the_line():
    lines = amat_bytes(random_binary(5, seed=4, width=6)).split(b"\n")
    lines[2] = lines[2][:-2]  # line 3 loses its last value
    with pytest.raises(ValueError, match=r"line 3: found 5 values, expected 6$"):
        parse_amat(b"\n".join(lines), width=6)


def test_truncated_file_is_reported_as_truncated():
    text = amat_bytes(random_binary(5, seed=5))
    with pytest.raises(
        ValueError, match=r"t\.amat, line 5: found 300 values, expected 784 \(the file looks truncated\)"
    ):
        parse_amat(text[: 4 * 1568 + 600], source="t.amat")


def test_empty_file_is_rejected():
    with pytest.raises(ValueError, match="the file is empty; expected lines of 784 values 0 or 1"):
        parse_amat(b"  \n\n")


def test_truncated_gzip_names_the_file(tmp_path):
    path = tmp_path / "test.amat.gz"
    path.write_bytes(gzip.compress(amat_bytes(random_binary(20, seed=6)))[:-200])
    with pytest.raises(ValueError, match=re.escape(f"{path}: the gzip stream is damaged or truncated")):
        read_amat(path)


def test_gzip_is_detected_from_content_not_suffix(tmp_path):
    images = random_binary(3, seed=7)
    path = tmp_path / "x.amat"
    path.write_bytes(gzip.compress(amat_bytes(images)))
    np.testing.assert_array_equal(read_amat(path), images)


def test_split_named_file_with_the_split_shape_must_match_the_checksum(tmp_path):
    path = write_amat(tmp_path / "valid.amat", random_binary(10_000, seed=8))
    with pytest.raises(ValueError) as info:
        read_amat(path)
    message = str(info.value)
    assert str(path) in message
    assert f"expected sha256 {ARRAY_SHA256['valid']}" in message
    assert re.search(r"found [0-9a-f]{64}", message)


def test_split_named_file_of_another_shape_is_not_verified(tmp_path):
    images = random_binary(30, seed=9)
    np.testing.assert_array_equal(read_amat(write_amat(tmp_path / "binarized_mnist_valid.amat.gz", images)), images)


def test_folder_of_small_amat_files_loads_under_the_folder_name(tmp_path):
    folder = tmp_path / "tiny"
    folder.mkdir()
    arrays = {split: random_binary(rows, seed=rows) for split, rows in (("train", 40), ("valid", 10), ("test", 12))}
    for split, images in arrays.items():
        write_amat(folder / f"{split}.amat.gz", images)
    data = load_dataset(folder)
    assert data.name == "tiny" and not data.dynamic_binarization and data.image_shape == (28, 28)
    for split, images in arrays.items():
        np.testing.assert_array_equal(data.split(split).numpy(), images)
    np.testing.assert_allclose(data.train_mean.numpy(), arrays["train"].mean(axis=0), rtol=1e-6)


def test_npz_file_loads_and_is_checked(tmp_path):
    arrays = {"train": random_binary(20, 0), "valid": random_binary(5, 1), "test": random_binary(6, 2)}
    path = tmp_path / "small.npz"
    np.savez(path, **arrays)
    data = load_dataset(path)
    assert data.name == "small.npz" and tuple(data.test.shape) == (6, 784)
    np.testing.assert_array_equal(data.valid.numpy(), arrays["valid"])


_ZEROS = np.zeros((2, 784), np.uint8)


@pytest.mark.parametrize(
    ("train", "drop", "message"),
    [
        (_ZEROS, ("valid", "test"), r"lacks the arrays \['valid', 'test'\]"),
        (np.zeros((2, 783), np.uint8), (), r"\[train\]: expected shape \(N, 784\), found \(2, 783\)"),
        (np.full((2, 784), 2, np.uint8), (), r"\[train\]: expected values 0 or 1, found values in \[2, 2\]"),
        (np.zeros((2, 784), np.float32), (), r"\[train\]: expected uint8 values 0 or 1, found dtype float32"),
    ],
    ids=["missing arrays", "wrong width", "not binary", "float dtype"],
)
def test_malformed_npz_gives_a_clear_error(tmp_path, train, drop, message):
    arrays = {"train": train, "valid": _ZEROS, "test": _ZEROS}
    path = tmp_path / "bad.npz"
    np.savez(path, **{key: value for key, value in arrays.items() if key not in drop})
    with pytest.raises(ValueError, match=message):
        read_npz(path)


def test_file_that_is_not_an_npz_is_rejected(tmp_path):
    path = tmp_path / "broken.npz"
    path.write_bytes(b"PK\x03\x04 this is not a zip archive")
    with pytest.raises(ValueError, match=r"is not a data file \(an \.npz is a zip archive\)"):
        load_dataset(path)


def test_text_file_is_called_not_a_data_file(tmp_path):
    """Issue 10.9: a text file used to get numpy's message about pickled data."""
    path = tmp_path / "notes.txt"
    path.write_text("hello\n")
    with pytest.raises(ValueError, match=r"notes\.txt is not a data file") as error:
        read_npz(path)
    assert "pickle" not in str(error.value)
