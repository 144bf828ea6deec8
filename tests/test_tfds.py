"""The tensorflow-datasets sources against the IDX source."""

import numpy as np
import pytest
from realdata import mnist

from mnist_linear import data


def test_tfds_source_equals_idx_source(tmp_path):
    via_tfds = data.load("mnist", source="tfds", tfds_dir=tmp_path)
    assert (tmp_path / "idx_mnist" / "mnist" / "1.0.0").is_dir()
    assert any(p.name.endswith(".array_record-00000-of-00001") for p in tmp_path.rglob("*"))
    for got, want in zip(via_tfds.train[:2] + via_tfds.test[:2], mnist().train[:2] + mnist().test[:2]):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    # A second load reads the prepared copy back.
    again = data.load("mnist", source="tfds", tfds_dir=tmp_path)
    np.testing.assert_array_equal(again.test.images, mnist().test.images)


def test_official_tfds_not_prepared_says_how(tmp_path):
    with pytest.raises(data.DataError, match="not prepared") as e:
        data.load("mnist", source="tfds_official", tfds_dir=tmp_path)
    assert "tfds build mnist --file_format=array_record" in str(e.value)
    assert "source='tfds'" in str(e.value)
