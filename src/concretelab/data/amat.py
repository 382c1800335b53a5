"""The ``.amat`` text format of binarized MNIST: one image per line, pixel values separated by spaces.

The canonical layout (the original ``binarized_mnist_{train,valid,test}.amat`` files of Larochelle &
Murray 2011) is 784 single-character values ``0``/``1`` separated by single spaces, each line ending in
``\\n``: exactly 1568 bytes a line. That layout is parsed by one reshape of the bytes. Anything else
(tabs, several spaces, ``\\r\\n``, trailing blank lines) goes through a general vectorised parser that
reports the first problem by line and column. Neither loops over pixels in Python.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from concretelab.data._files import read_maybe_gzip

__all__ = ["parse_amat", "read_amat_file"]

_ZERO, _ONE, _SPACE, _TAB, _CR, _NEWLINE = (ord(c) for c in "01 \t\r\n")


def parse_amat(text: bytes, *, width: int = 784, source: str = "<bytes>") -> np.ndarray:
    """Parse ``.amat`` text into a ``(lines, width)`` uint8 array of 0/1.

    Args:
        text: the (uncompressed) file contents.
        width: values expected on every line (784 = 28 x 28 for MNIST).
        source: names the file in error messages.

    Raises ``ValueError`` naming ``source``, the line (1-based) and what was expected, for an empty
    file, a character other than ``0``, ``1`` or whitespace, a value longer than one character, or a
    line with the wrong number of values (as the last line of a truncated file has).
    """
    buffer = np.frombuffer(text, dtype=np.uint8)
    fast = _parse_canonical(buffer, width)
    if fast is not None:
        return fast
    return _parse_general(buffer, width, source)


def read_amat_file(path: Path, *, width: int = 784) -> np.ndarray:
    """Read and parse an ``.amat`` file, gzip-compressed or not (detected from its first bytes)."""
    return parse_amat(read_maybe_gzip(path), width=width, source=str(path))


def _parse_canonical(buffer: np.ndarray, width: int) -> np.ndarray | None:
    """The array when ``buffer`` has the canonical layout, else None."""
    line_bytes = 2 * width
    if buffer.size == 0 or buffer.size % line_bytes:
        return None
    rows = buffer.reshape(-1, line_bytes)  # (lines, 2 * width): value, separator, value, ..., '\n'
    if not ((rows[:, 1:-1:2] == _SPACE).all() and (rows[:, -1] == _NEWLINE).all()):
        return None
    values = rows[:, 0::2] - np.uint8(_ZERO)  # wraps around below '0', so one comparison checks both ends
    if (values > 1).any():
        return None
    return np.ascontiguousarray(values)


def _parse_general(buffer: np.ndarray, width: int, source: str) -> np.ndarray:
    is_digit = (buffer == _ZERO) | (buffer == _ONE)
    is_newline = buffer == _NEWLINE
    is_blank = (buffer == _SPACE) | (buffer == _TAB) | (buffer == _CR) | is_newline
    content = np.flatnonzero(~is_blank)
    if content.size == 0:
        raise ValueError(f"{source}: the file is empty; expected lines of {width} values 0 or 1")
    buffer = buffer[: content[-1] + 1]  # trailing whitespace and blank lines are allowed
    is_digit, is_newline, is_blank = is_digit[: buffer.size], is_newline[: buffer.size], is_blank[: buffer.size]
    newlines = np.flatnonzero(is_newline)

    def where(position: int) -> str:
        line = int(np.searchsorted(newlines, position))  # newlines before `position`
        line_start = int(newlines[line - 1]) + 1 if line else 0
        return f"line {line + 1}, column {position - line_start + 1}"

    bad = np.flatnonzero(~(is_digit | is_blank))
    if bad.size:
        position = int(bad[0])
        raise ValueError(
            f"{source}, {where(position)}: unexpected character {bytes(buffer[position : position + 1])!r}; "
            f"expected values 0 or 1 separated by spaces, {width} per line"
        )
    joined = np.flatnonzero(is_digit[1:] & is_digit[:-1])
    if joined.size:
        position = int(joined[0])
        raise ValueError(
            f"{source}, {where(position)}: value {bytes(buffer[position : position + 2]).decode()}... is longer "
            "than one character; expected single values 0 or 1 separated by spaces"
        )
    starts = np.concatenate(([0], newlines + 1))  # one start per line; the last line has no '\n'
    counts = np.add.reduceat(is_digit, starts, dtype=np.int64)
    wrong = np.flatnonzero(counts != width)
    if wrong.size:
        line = int(wrong[0])
        hint = " (the file looks truncated)" if line == counts.size - 1 and counts[line] < width else ""
        raise ValueError(f"{source}, line {line + 1}: found {int(counts[line])} values, expected {width}{hint}")
    return (buffer[is_digit] - np.uint8(_ZERO)).reshape(-1, width)
