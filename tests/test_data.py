"""The loader on the real IDX files: contents, lookup order, download, and every kind of bad file."""

import gzip
import hashlib
import os
import shutil
import urllib.error
from pathlib import Path

import chex
import numpy as np
import pytest
from realdata import mnist

from mnist_linear import data

SHARED = Path(os.environ["MNIST_LINEAR_DATA"])

# Published class counts of the canonical releases.
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_mnist_shapes_dtypes_counts():
    ds = mnist()
    chex.assert_shape(ds.train.images, (60_000, 28, 28))
    chex.assert_shape(ds.test.images, (10_000, 28, 28))
    chex.assert_shape(ds.train.labels, (60_000,))
    chex.assert_shape(ds.test.labels, (10_000,))
    assert ds.train.images.dtype == np.uint8 and ds.test.images.dtype == np.uint8
    assert ds.train.labels.dtype == np.int32
    assert np.bincount(ds.train.labels).tolist() == MNIST_TRAIN_COUNTS
    assert np.bincount(ds.test.labels).tolist() == MNIST_TEST_COUNTS
    assert ds.train.images.max() == 255 and ds.train.images.min() == 0


def test_checksums_are_of_the_uncompressed_bytes():
    for name, source in data.SOURCES.items():
        ds = data.load(name) if name != "mnist" else mnist()
        for file in source.files:
            raw = gzip.decompress((SHARED / source.folder / file.filename).read_bytes())
            assert hashlib.md5(raw).hexdigest() == file.md5 == ds.md5[file.filename]


def test_pixels_and_labels_are_the_files_bytes():
    """The loaded arrays against the IDX layout parsed by hand: a 16-byte header then the images, row-major;
    an 8-byte header then the labels."""
    ds = mnist()
    for split, prefix in ((ds.train, "train"), (ds.test, "t10k")):
        raw = gzip.decompress((SHARED / "mnist" / f"{prefix}-images-idx3-ubyte.gz").read_bytes())
        np.testing.assert_array_equal(split.images, np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 28, 28))
        raw = gzip.decompress((SHARED / "mnist" / f"{prefix}-labels-idx1-ubyte.gz").read_bytes())
        np.testing.assert_array_equal(split.labels, np.frombuffer(raw, np.uint8, offset=8))


def test_fashion_mnist_is_balanced():
    ds = data.load("fashion_mnist")
    assert np.bincount(ds.train.labels).tolist() == [6000] * 10
    assert np.bincount(ds.test.labels).tolist() == [1000] * 10
    assert not np.array_equal(ds.test.images[:100], mnist().test.images[:100])


def test_to_float_range():
    x = np.asarray(data.to_float(mnist().test.images[:10]))
    assert x.dtype == np.float32 and x.min() == 0.0 and x.max() == 1.0
    # XLA multiplies by 1/255, so allow one ulp against true division.
    np.testing.assert_allclose(x, mnist().test.images[:10] / np.float32(255), rtol=np.finfo(np.float32).eps, atol=0)


def test_validation_split_is_the_last_images():
    train, val = data.split_validation(mnist().train)
    assert len(train.labels) == 50_000 and len(val.labels) == 10_000
    np.testing.assert_array_equal(val.images, mnist().train.images[50_000:])
    np.testing.assert_array_equal(train.labels, mnist().train.labels[:50_000])
    with pytest.raises(ValueError, match="num_validation"):
        data.split_validation(mnist().train, 60_000)


def _copy_dataset(dst_root: Path, decompress: bool = False) -> Path:
    folder = dst_root / "mnist"
    folder.mkdir(parents=True)
    for f in data.SOURCES["mnist"].files:
        src = SHARED / "mnist" / f.filename
        if decompress:
            (folder / f.filename.removesuffix(".gz")).write_bytes(gzip.decompress(src.read_bytes()))
        else:
            shutil.copy(src, folder / f.filename)
    return folder


def test_uncompressed_files_and_explicit_data_dir_come_first(tmp_path):
    folder = _copy_dataset(tmp_path, decompress=True)
    ds = data.load("mnist", data_dir=tmp_path, download=False)
    assert ds.folder == folder
    np.testing.assert_array_equal(ds.test.images, mnist().test.images)
    np.testing.assert_array_equal(ds.train.labels, mnist().train.labels)


def test_environment_variable_comes_before_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    _copy_dataset(tmp_path / "cache" / "mnist_linear")
    assert data.find("mnist", download=False) == SHARED / "mnist"
    monkeypatch.delenv(data.DATA_ENV)
    assert data.find("mnist", download=False) == tmp_path / "cache" / "mnist_linear" / "mnist"


def test_missing_without_download_lists_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path / "env"))
    with pytest.raises(data.DataError) as e:
        data.load("mnist", data_dir=tmp_path / "explicit", download=False)
    message = str(e.value)
    for place in ("explicit/mnist", "env/mnist", "cache/mnist_linear/mnist", "MNIST_LINEAR_DATA"):
        assert place in message


def _fetch_from_shared(url: str, destination: Path) -> None:
    """Stands in for the network only: copies the real file the URL names."""
    shutil.copy(SHARED / "mnist" / url.rsplit("/", 1)[1], destination)


def _cache_leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def test_download_verifies_and_moves_into_place(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv(data.DATA_ENV)
    urls = []
    monkeypatch.setattr(data, "_fetch", lambda url, dst: (urls.append(url), _fetch_from_shared(url, dst)))
    ds = data.load("mnist")
    assert ds.folder == tmp_path / "mnist_linear" / "mnist"
    assert _cache_leftovers(tmp_path / "mnist_linear") == ["mnist"]
    assert len(urls) == 4 and all(u.startswith(data.SOURCES["mnist"].mirrors[0]) for u in urls)
    np.testing.assert_array_equal(ds.train.images, mnist().train.images)
    urls.clear()
    data.load("mnist")  # now cached: no second download
    assert urls == []


def test_download_of_a_corrupt_file_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv(data.DATA_ENV)

    def truncated(url, destination):
        _fetch_from_shared(url, destination)
        raw = gzip.decompress(destination.read_bytes())
        destination.write_bytes(raw[:-10])

    monkeypatch.setattr(data, "_fetch", truncated)
    with pytest.raises(data.DataError, match="truncated"):
        data.load("mnist")
    assert _cache_leftovers(tmp_path / "mnist_linear") == []


def test_no_network_gives_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv(data.DATA_ENV)

    def offline(url, destination):
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(data, "_fetch", offline)
    with pytest.raises(data.DataError) as e:
        data.load("mnist")
    message = str(e.value)
    assert "could not download" in message and "name resolution" in message
    assert "Put the four IDX files" in message and str(tmp_path / "mnist_linear" / "mnist") in message
    assert _cache_leftovers(tmp_path / "mnist_linear") == []


def _labels_bytes() -> bytes:
    return gzip.decompress((SHARED / "mnist" / "train-labels-idx1-ubyte.gz").read_bytes())


@pytest.mark.parametrize(
    "corrupt, problem",
    [
        (lambda raw: b"\x00\x00\x08\x04" + raw[4:], "magic number 0x00000804"),
        (lambda raw: raw[:-100], "payload is truncated"),
        (lambda raw: raw[:4] + (59_000).to_bytes(4, "big") + raw[8:], "longer than its header says"),
        (lambda raw: raw[:6], "too short for an IDX header"),
        (lambda raw: raw[:-1] + bytes([(raw[-1] + 1) % 10]), "MD5 of the uncompressed bytes"),
    ],
    ids=["magic", "truncated", "header-size", "short-header", "checksum"],
)
def test_bad_label_file_is_named_with_its_problem(tmp_path, corrupt, problem):
    folder = _copy_dataset(tmp_path)
    bad = folder / "train-labels-idx1-ubyte.gz"
    bad.write_bytes(gzip.compress(corrupt(_labels_bytes())))
    with pytest.raises(data.DataError, match=problem) as e:
        data.load("mnist", data_dir=tmp_path, download=False)
    assert str(bad) in str(e.value)


def test_broken_gzip_is_named(tmp_path):
    folder = _copy_dataset(tmp_path)
    bad = folder / "t10k-images-idx3-ubyte.gz"
    bad.write_bytes(bad.read_bytes()[:5000])
    with pytest.raises(data.DataError, match="cannot read or decompress") as e:
        data.load("mnist", data_dir=tmp_path, download=False)
    assert str(bad) in str(e.value)


def test_images_and_labels_that_disagree_are_named(tmp_path):
    folder = _copy_dataset(tmp_path)
    spec = data.SOURCES["mnist"]
    unchecked = lambda f: data.IdxFile(f.filename, None)  # noqa: E731  (skip MD5 to reach the size check)
    with pytest.raises(data.DataError, match="labels do not match the 60000 images") as e:
        data.read_split(folder, unchecked(spec.train_images), unchecked(spec.test_labels))
    assert "t10k-labels" in str(e.value)
    with pytest.raises(data.DataError, match=r"expected \(N, 28, 28\)"):
        data.read_split(folder, unchecked(spec.train_labels), unchecked(spec.train_labels))


def test_unknown_names_are_refused():
    with pytest.raises(ValueError, match="fashion_mnist"):
        data.load("kmnist")
    with pytest.raises(ValueError, match="tfds"):
        data.load("mnist", source="csv")
