"""tensorflow-datasets sources for the same data (no TensorFlow needed).

`IdxMnist` is a tfds builder over the verified IDX files: prepared once as
array_record under `<cache>/tfds` and read back with `tfds.data_source`, it
gives arrays identical to `data.load(name)`. `official(name)` reads the
official tfds "mnist" / "fashion_mnist" when a user has prepared it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

from mnist_linear import data

_OFFICIAL = {"mnist": "mnist", "fashion_mnist": "fashion_mnist"}


class IdxMnist(tfds.core.GeneratorBasedBuilder):
    """MNIST or Fashion-MNIST from the IDX files in `manual_dir`, in file order."""

    VERSION = tfds.core.Version("1.0.0")
    BUILDER_CONFIGS = [tfds.core.BuilderConfig(name=name) for name in data.SOURCES]
    MANUAL_DOWNLOAD_INSTRUCTIONS = "manual_dir is the folder holding the four IDX files."

    def _info(self) -> tfds.core.DatasetInfo:
        size = data.IMAGE_SIZE
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    # A raw tensor, not an encoded image: exact and needs no codec.
                    "image": tfds.features.Tensor(shape=(size, size), dtype=np.uint8),
                    "label": tfds.features.ClassLabel(num_classes=data.NUM_CLASSES),
                }
            ),
            supervised_keys=("image", "label"),
            disable_shuffling=True,  # keep the canonical order of the IDX files
        )

    def _split_generators(self, dl_manager):
        spec = data.SOURCES[self.builder_config.name]
        folder = Path(dl_manager.manual_dir)
        return {
            "train": self._generate_examples(folder, spec.train_images, spec.train_labels),
            "test": self._generate_examples(folder, spec.test_images, spec.test_labels),
        }

    def _generate_examples(self, folder, images, labels):
        split = data.read_split(folder, images, labels)
        for index, (image, label) in enumerate(zip(split.images, split.labels)):
            yield index, {"image": image, "label": int(label)}


def _to_split(source) -> data.Split:
    records = source.__getitems__(range(len(source)))
    images = np.stack([r["image"] for r in records]).astype(np.uint8)
    labels = np.array([r["label"] for r in records], np.int32)
    return data.Split(images.reshape(-1, data.IMAGE_SIZE, data.IMAGE_SIZE), labels)


def read(name: str, folder: os.PathLike, tfds_dir: os.PathLike | None = None) -> tuple[data.Split, data.Split]:
    """(train, test) of `name` through `IdxMnist`, preparing it on first use."""
    tfds_dir = Path(tfds_dir or data.cache_dir() / "tfds")
    sources = tfds.data_source(
        f"idx_mnist/{name}",
        data_dir=tfds_dir,
        builder_kwargs={"file_format": "array_record"},
        download_and_prepare_kwargs={
            "download_config": tfds.download.DownloadConfig(manual_dir=os.fspath(folder))
        },
    )
    return _to_split(sources["train"]), _to_split(sources["test"])


def official(name: str, tfds_dir: os.PathLike | None = None) -> tuple[data.Split, data.Split]:
    """(train, test) from the official tfds dataset, which the user must have prepared.

    Same images and labels as the IDX files, in the order tfds stored them
    (tfds shuffles examples when it prepares a dataset).
    """
    builder = tfds.builder(_OFFICIAL[name], data_dir=tfds_dir)
    build = f"`tfds build {_OFFICIAL[name]} --file_format=array_record` (needs TensorFlow and the internet)"
    if not builder.is_prepared():
        raise data.DataError(
            f"The official tfds {_OFFICIAL[name]!r} is not prepared in {builder.data_dir}. "
            f"Prepare it with {build}, or use load({name!r}, source='tfds'), which needs neither."
        )
    try:
        sources = builder.as_data_source()
    except NotImplementedError as e:  # prepared as TFRecord, which has no random access
        raise data.DataError(f"{builder.data_dir}: {e}\nRebuild it with {build}.") from e
    images = {split: _to_split(source) for split, source in sources.items()}
    # The official features are (28, 28, 1) images; _to_split drops the channel.
    return images["train"], images["test"]
