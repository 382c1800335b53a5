"""``fetch_binarized_mnist`` and ``concretelab data``: local servers only, nothing leaves this machine.

The success path serves the shared copy from an ``http.server`` on 127.0.0.1 (gzip bodies are
detected from their first bytes); the offline path uses a closed port and a server that never answers.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from concretelab.cli import main
from concretelab.data import FetchError, fetch_binarized_mnist, load_dataset
from concretelab.data.binarized_mnist import cache_file

from ._helpers import SHARED_ABSENT, SHARED_DIR, amat_bytes, random_binary, shared_available

needs_shared = pytest.mark.skipif(not shared_available(), reason=SHARED_ABSENT)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@contextlib.contextmanager
def serve(folder: Path) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 serving ``folder``; yields its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/"  # nothing listens there any more: connection refused


@pytest.fixture
def shared_mirror(tmp_path: Path) -> Path:
    """The shared .amat.gz files under the original download names binarized_mnist_{split}.amat."""
    if not shared_available():
        pytest.skip(SHARED_ABSENT)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for split in ("train", "valid", "test"):
        shutil.copyfile(SHARED_DIR / f"{split}.amat.gz", mirror / f"binarized_mnist_{split}.amat")
    return mirror


@needs_shared
def test_download_verifies_and_fills_the_cache(shared_mirror, isolated_cache, closed_port_url):
    with serve(shared_mirror) as url:
        path = fetch_binarized_mnist(url=url, timeout=10, progress=False)
    assert path == cache_file() and path.is_relative_to(isolated_cache)
    assert [p.name for p in path.parent.iterdir()] == ["binarized_mnist.npz"]  # no partial files left
    data = load_dataset("binarized-mnist")
    assert data.name == "binarized-mnist" and tuple(data.train.shape) == (50_000, 784)
    # a valid cache is not fetched again (the closed port would fail)
    assert fetch_binarized_mnist(url=closed_port_url, timeout=1, progress=False) == path


def test_download_of_a_small_file_is_not_taken_for_binarized_mnist(tmp_path):
    for split in ("train", "valid", "test"):
        (tmp_path / f"binarized_mnist_{split}.amat").write_bytes(amat_bytes(random_binary(3, seed=0)))
    with serve(tmp_path) as url, pytest.raises(ValueError, match=r"has shape \(3, 784\), expected \(50000, 784\)"):
        fetch_binarized_mnist(url=url, timeout=10, progress=False)
    assert not cache_file().exists()


def test_truncated_download_over_file_url_names_the_line(tmp_path):
    (tmp_path / "binarized_mnist_train.amat").write_bytes(amat_bytes(random_binary(4, seed=1))[:-100])
    with pytest.raises(ValueError, match=r"binarized_mnist_train\.amat, line 4: found 734 values, expected 784"):
        fetch_binarized_mnist(url=tmp_path.as_uri(), timeout=5, progress=False)


def test_http_error_is_reported(tmp_path):
    with serve(tmp_path) as url, pytest.raises(FetchError, match="the server answered HTTP 404"):
        fetch_binarized_mnist(url=url, timeout=5, progress=False)


def test_offline_failure_is_clear(closed_port_url):
    with pytest.raises(FetchError, match=r"could not download .*binarized_mnist_train\.amat: .*offline.*--from FOLDER"):
        fetch_binarized_mnist(url=closed_port_url, timeout=1, progress=False)


def test_silent_server_times_out():
    with socket.socket() as listener:  # accepts connections into its backlog but never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
        with pytest.raises(FetchError, match=r"could not download .*(no answer within 0.3 s|timed out)"):
            fetch_binarized_mnist(url=url, timeout=0.3, progress=False)


def test_missing_cache_says_how_to_fetch():
    with pytest.raises(FileNotFoundError, match=r"not in the cache .*concretelab data fetch binarized-mnist"):
        load_dataset("binarized-mnist")


def test_import_of_small_arrays_is_refused(tmp_path):
    np.savez(tmp_path / "small.npz", train=random_binary(2, 0), valid=random_binary(2, 1), test=random_binary(2, 2))
    with pytest.raises(ValueError, match="this is not the full binarized MNIST"):
        fetch_binarized_mnist(source=tmp_path / "small.npz")


# --- the command line, in-process ---------------------------------------------------------------


def test_cli_fetch_offline_exits_2_with_the_reason(closed_port_url, capsys):
    code = main(["data", "fetch", "binarized-mnist", "--url", closed_port_url, "--timeout", "1", "--no-progress"])
    assert code == 2
    error = capsys.readouterr().err
    assert error.startswith("concretelab: error: could not download") and "--from FOLDER" in error


def test_cli_fetch_from_a_missing_folder(tmp_path, capsys):
    assert main(["data", "fetch", "binarized-mnist", "--from", str(tmp_path / "nowhere")]) == 2
    assert f"--from {tmp_path / 'nowhere'}: no such file or folder" in capsys.readouterr().err


def test_cli_fetch_from_a_folder_without_data(tmp_path, capsys):
    assert main(["data", "fetch", "binarized-mnist", "--from", str(tmp_path)]) == 2
    assert "expected {train,valid,test}.amat[.gz] files or a single .npz" in capsys.readouterr().err


def test_cli_rejects_an_unknown_dataset(capsys):
    with pytest.raises(SystemExit) as info:
        main(["data", "fetch", "mnist"])
    assert info.value.code == 2 and "invalid choice: 'mnist'" in capsys.readouterr().err


@needs_shared
def test_cli_fetch_from_the_shared_copy_replaces_a_damaged_cache(capsys, caplog):
    cache_file().parent.mkdir(parents=True)
    cache_file().write_bytes(b"not an npz")
    assert main(["data", "fetch", "binarized-mnist", "--from", str(SHARED_DIR)]) == 0
    assert "binarized MNIST ready in" in capsys.readouterr().out
    assert "is damaged" in caplog.text
    assert main(["data", "info", "binarized-mnist"]) == 0
    out = capsys.readouterr().out
    assert "name: binarized-mnist" in out
    assert "test: 10000 images, mean pixel 0.1325, sha256 ca0294c3b8d984c7a1dc891015a8eea6" in out


def test_cli_info_of_the_embedded_default(capsys):
    assert main(["data", "info"]) == 0
    out = capsys.readouterr().out
    assert "name: embedded" in out and "train: 10000 images, mean pixel 0.1303" in out


def test_cli_info_of_a_missing_path(tmp_path, capsys):
    assert main(["data", "info", str(tmp_path / "absent")]) == 2
    assert "no such file or folder; expected 'embedded'" in capsys.readouterr().err
