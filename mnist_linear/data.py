"""MNIST and Fashion-MNIST from their canonical IDX files, verified by MD5.

`load(name)` returns uint8 images `(N, 28, 28)` and int32 labels `(N,)` for the
train and test splits. Files are looked for, in order, in an explicit
`data_dir`, in `$MNIST_LINEAR_DATA` and in the per-user cache
(`$XDG_CACHE_HOME/mnist_linear`, default `~/.cache/mnist_linear`); each of these
is a folder holding `mnist/` and `fashion-mnist/`. If none has them, they are
downloaded into the cache, verified, and moved into place atomically.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from mnist_linear import checks

IMAGE_SIZE = 28
NUM_CLASSES = 10
DATA_ENV = "MNIST_LINEAR_DATA"

_IMAGES_MAGIC = 0x00000803  # uint8 data, 3 dimensions
_LABELS_MAGIC = 0x00000801  # uint8 data, 1 dimension


class IdxFile(NamedTuple):
    filename: str
    md5: str  # of the uncompressed bytes


class Source(NamedTuple):
    folder: str
    classes: tuple[str, ...]
    mirrors: tuple[str, ...]
    train_images: IdxFile
    train_labels: IdxFile
    test_images: IdxFile
    test_labels: IdxFile

    @property
    def files(self) -> tuple[IdxFile, ...]:
        return (self.train_images, self.train_labels, self.test_images, self.test_labels)


SOURCES = {
    "mnist": Source(
        folder="mnist",
        classes=tuple("0123456789"),
        mirrors=(
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
        ),
        train_images=IdxFile("train-images-idx3-ubyte.gz", "6bbc9ace898e44ae57da46a324031adb"),
        train_labels=IdxFile("train-labels-idx1-ubyte.gz", "a25bea736e30d166cdddb491f175f624"),
        test_images=IdxFile("t10k-images-idx3-ubyte.gz", "2646ac647ad5339dbf082846283269ea"),
        test_labels=IdxFile("t10k-labels-idx1-ubyte.gz", "27ae3e4e09519cfbb04c329615203637"),
    ),
    "fashion_mnist": Source(
        folder="fashion-mnist",
        classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                 "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        train_images=IdxFile("train-images-idx3-ubyte.gz", "f4a8712d7a061bf5bd6d2ca38dc4d50a"),
        train_labels=IdxFile("train-labels-idx1-ubyte.gz", "9018921c3c673c538a1fc5bad174d6f9"),
        test_images=IdxFile("t10k-images-idx3-ubyte.gz", "8181f5470baa50b63fa0f6fddb340f0a"),
        test_labels=IdxFile("t10k-labels-idx1-ubyte.gz", "15d484375f8d13e6eb1aabb0c3f46965"),
    ),
}


class DataError(RuntimeError):
    """A dataset file is missing, corrupt or could not be downloaded."""


class Split(NamedTuple):
    """One split of a dataset: uint8 images `(N, 28, 28)` (pixels 0–255) and int32 labels `(N,)` in [0, 10);
    for regression also float `targets` `(N, T)` (see `regression`)."""

    images: np.ndarray  # (N, 28, 28) uint8
    labels: np.ndarray  # (N,) int32
    targets: np.ndarray | None = None  # (N, T) float32, regression only

    def take(self, index) -> "Split":
        """The examples at `index` (a slice or index array) of every array."""
        return Split(*(None if a is None else a[index] for a in self))


class Dataset(NamedTuple):
    """A loaded dataset: its train (60,000) and test (10,000) splits, verified checksums and source folder."""

    name: str
    train: Split
    test: Split
    md5: dict[str, str]  # file name -> verified MD5 of its uncompressed bytes (empty for tfds_official)
    folder: Path  # where the IDX files were read from


def to_float(images: jnp.ndarray) -> jnp.ndarray:
    """Pixels of any shape -> float32 in [0, 1], same shape.

    uint8 is scaled by 1/255; floating-point images are taken as already in
    [0, 1] and only cast (the convention of `tf.image.convert_image_dtype` and
    torchvision). Raises TypeError for other dtypes and ValueError for concrete
    float arrays outside [0, 1] (`checks.pixels`).
    """
    checks.pixels(images)
    if np.dtype(images.dtype) == np.uint8:
        return jnp.asarray(images, jnp.float32) / 255.0
    return jnp.asarray(images, jnp.float32)


def split_validation(split: Split, num_validation: int = 10_000) -> tuple[Split, Split]:
    """(train, validation): the last `num_validation` examples are held out, arrays as given.
    Raises ValueError unless 0 < num_validation < N."""
    if not 0 < num_validation < len(split.labels):
        raise ValueError(
            f"num_validation={num_validation} must be between 1 and {len(split.labels) - 1}."
        )
    cut = len(split.labels) - num_validation
    return split.take(slice(None, cut)), split.take(slice(cut, None))


def cache_dir() -> Path:
    """The per-user cache folder that downloads go to."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mnist_linear"


def _source(name: str) -> Source:
    if name not in SOURCES:
        raise ValueError(f"Unknown dataset {name!r}; choose one of {sorted(SOURCES)}.")
    return SOURCES[name]


def _present(folder: Path, filename: str) -> Path | None:
    """The file, gzipped or not, inside `folder`, if it is there."""
    for candidate in (folder / filename, folder / filename.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    return None


def _candidate_roots(data_dir: str | os.PathLike | None) -> list[Path]:
    roots = []
    if data_dir is not None:
        roots.append(Path(data_dir))
    if os.environ.get(DATA_ENV):
        roots.append(Path(os.environ[DATA_ENV]))
    roots.append(cache_dir())
    return roots


def read_idx(path: Path, md5: str | None = None) -> np.ndarray:
    """Reads one IDX file (gzipped or not) into a uint8 array, checking it.

    Checks the magic number (uint8 data with 3 dimensions for images, 1 for
    labels), that the header's sizes are not empty and the payload matches them exactly, and, if `md5`
    is given, the MD5 of the uncompressed bytes. Every failure raises DataError
    naming the file; nothing is allocated beyond the file's own bytes.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise DataError(f"{path}: cannot read or decompress it ({e}). Delete it and fetch it again.") from e
    if len(raw) < 8:
        raise DataError(f"{path}: {len(raw)} bytes is too short for an IDX header; the file is truncated.")
    magic = int.from_bytes(raw[:4], "big")
    if magic not in (_IMAGES_MAGIC, _LABELS_MAGIC):
        raise DataError(
            f"{path}: magic number {magic:#010x} is not an IDX uint8 file "
            f"({_IMAGES_MAGIC:#010x} for images, {_LABELS_MAGIC:#010x} for labels)."
        )
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated inside the header ({len(raw)} of {header} bytes).")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    payload, expected = len(raw) - header, math.prod(shape)  # exact integers: no overflow for huge headers
    if expected == 0:  # numpy cannot even shape some of these (0 beside sizes whose product overflows)
        raise DataError(f"{path}: header gives shape {shape}, which holds nothing. Delete the file and fetch it "
                        "again.")
    if payload != expected:
        problem = "truncated" if payload < expected else "longer than its header says"
        raise DataError(
            f"{path}: payload is {problem}: header gives shape {shape} ({expected} bytes) "
            f"but {payload} bytes follow. Delete the file and fetch it again."
        )
    if md5 is not None:
        actual = hashlib.md5(raw).hexdigest()
        if actual != md5:
            raise DataError(
                f"{path}: MD5 of the uncompressed bytes is {actual}, expected {md5}. "
                "The file is corrupt or not the canonical release; delete it and fetch it again."
            )
    return np.frombuffer(raw, np.uint8, offset=header).reshape(shape)


def read_split(folder: Path, images: IdxFile, labels: IdxFile) -> Split:
    """The images and labels of one split from `folder`, verified (`read_idx`); DataError names a file
    whose images are not `(N, 28, 28)` or whose labels do not match them one to one."""
    image_path, label_path = _present(folder, images.filename), _present(folder, labels.filename)
    x = read_idx(image_path, images.md5)
    y = read_idx(label_path, labels.md5)
    if x.ndim != 3 or x.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise DataError(f"{image_path}: images have shape {x.shape}, expected (N, 28, 28).")
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise DataError(
            f"{label_path}: {y.shape} labels do not match the {x.shape[0]} images of {image_path}."
        )
    return Split(x, y.astype(np.int32))


def _fetch(url: str, destination: Path) -> None:
    """The network boundary: copies `url` to `destination`."""
    with urllib.request.urlopen(url, timeout=60) as response, open(destination, "wb") as out:
        shutil.copyfileobj(response, out)


def _download(source: Source, root: Path) -> Path:
    """Downloads and verifies all four files, then moves the folder into place."""
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{source.folder}-", dir=root))
    try:
        for file in source.files:
            errors = []
            for mirror in source.mirrors:
                try:
                    _fetch(mirror + file.filename, staging / file.filename)
                    read_idx(staging / file.filename, file.md5)
                    break
                except (OSError, urllib.error.URLError, DataError) as e:
                    errors.append(f"{mirror + file.filename}: {e}")
            else:
                raise DataError("could not download a verified copy:\n  " + "\n  ".join(errors))
        final = root / source.folder
        if final.exists():  # an incomplete earlier copy: replace its files one by one
            for file in source.files:
                os.replace(staging / file.filename, final / file.filename)
        else:
            os.replace(staging, final)  # atomic: readers see all four files or none
        return final
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def find(name: str, data_dir: str | os.PathLike | None = None, download: bool = True) -> Path:
    """The folder holding the four IDX files of `name`, downloading them if needed. Raises ValueError
    for an unknown name and DataError, listing where it looked, when the files cannot be had."""
    source = _source(name)
    roots = _candidate_roots(data_dir)
    for root in roots:
        if all(_present(root / source.folder, f.filename) for f in source.files):
            return root / source.folder
    looked = "\n  ".join(str(r / source.folder) for r in roots)
    how = (
        f"Put the four IDX files ({', '.join(f.filename for f in source.files)}, gzipped or not) "
        f"in one of those folders, or point ${DATA_ENV} (or data_dir=) at a folder holding "
        f"'{source.folder}/'."
    )
    if not download:
        raise DataError(f"{name} not found. Looked in:\n  {looked}\n{how}")
    try:
        return _download(source, cache_dir())
    except DataError as e:
        raise DataError(f"{name} not found and {e}\nLooked in:\n  {looked}\n{how}") from e


def load(
    name: str = "mnist",
    *,
    source: str = "idx",
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    tfds_dir: str | os.PathLike | None = None,
) -> Dataset:
    """Loads `name` ("mnist" or "fashion_mnist") as uint8 arrays.

    source: "idx" parses the IDX files (MD5-verified); "tfds" reads the same
    files through a tensorflow-datasets builder prepared as array_record in
    `tfds_dir` (default: the cache), giving identical arrays; "tfds_official"
    reads tfds's own prepared dataset from `tfds_dir` (default: tfds's), in its
    stored order and with no IDX checksums to verify. Images uint8 `(N, 28, 28)`
    (pixels 0–255), labels int32 `(N,)` in [0, 10). Raises ValueError for an unknown
    name or source, DataError for missing or corrupt files (see `read_idx`).
    """
    spec = _source(name)
    if source not in ("idx", "tfds", "tfds_official"):
        raise ValueError(f"Unknown source {source!r}; choose 'idx', 'tfds' or 'tfds_official'.")
    if source == "tfds_official":
        from mnist_linear import tfds_source  # tensorflow-datasets is slow to import

        train, test = tfds_source.official(name, tfds_dir)
        return Dataset(name, train, test, {}, Path(tfds_dir or "~/tensorflow_datasets").expanduser())
    folder = find(name, data_dir, download)
    if source == "idx":
        train = read_split(folder, spec.train_images, spec.train_labels)
        test = read_split(folder, spec.test_images, spec.test_labels)
    else:
        from mnist_linear import tfds_source

        train, test = tfds_source.read(name, folder, tfds_dir)
    return Dataset(name, train, test, {f.filename: f.md5 for f in spec.files}, folder)
