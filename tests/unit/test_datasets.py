"""Every image dataset, loaded through the user's path from files in its real format."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kdfair.data import DataIO
from kdfair.data.celeba import load_celeba
from kdfair.data.cifar import load_cifar
from kdfair.data.imagenet import load_imagenet
from kdfair.data.svhn import load_svhn
from kdfair.data.tinyimagenet import load_tinyimagenet
from kdfair.errors import KdfairError
from kdfair.factories import build_dataset

from ..conftest import compose_train
from ..fixtures.datasets import (
    write_celeba,
    write_cifar,
    write_imagenet,
    write_svhn,
    write_tinyimagenet,
)


@pytest.mark.parametrize("variant", ["cifar10", "cifar100"])
def test_cifar_labels_images_and_class_names_come_back(tmp_path, variant):
    written = write_cifar(tmp_path, variant)
    data = load_cifar(str(tmp_path), variant=variant)
    assert data.class_names == written["class_names"]
    assert data.num_classes == (10 if variant == "cifar10" else 100)
    np.testing.assert_array_equal(data.train.labels.numpy(), written["train_labels"])
    np.testing.assert_array_equal(data.test.labels.numpy(), written["test_labels"])
    assert data.train.inputs.dtype == torch.uint8 and data.train.inputs.shape[1:] == (3, 32, 32)
    np.testing.assert_array_equal(
        data.train.inputs.numpy().transpose(0, 2, 3, 1), written["train_images"]
    )


def test_svhn_maps_label_10_to_digit_0(tmp_path):
    written = write_svhn(tmp_path)
    data = load_svhn(str(tmp_path))
    np.testing.assert_array_equal(data.train.labels.numpy(), written["train_labels"])
    np.testing.assert_array_equal(data.test.labels.numpy(), written["test_labels"])
    np.testing.assert_array_equal(
        data.test.inputs.numpy().transpose(0, 2, 3, 1), written["test_images"]
    )
    assert data.class_names == [str(d) for d in range(10)]


def test_tinyimagenet_reads_train_folders_and_val_annotations(tmp_path):
    written = write_tinyimagenet(tmp_path)
    data = load_tinyimagenet(str(tmp_path))
    assert data.class_names == written["class_names"] and data.num_classes == 3
    assert data.train.labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert data.test.labels.tolist() == written["val_labels"]
    assert data.train.inputs.shape == (6, 3, 64, 64)
    red = data.train.inputs[:, 0, 0, 0].float()
    assert torch.allclose(red, 40.0 * data.train.labels.float(), atol=3)  # image and label paired
    assert list((tmp_path / "tiny-imagenet-200" / "kdfair-cache").glob("*.npz"))  # decoded once


def test_imagenet_streams_class_folders_through_workers(tmp_path):
    written = write_imagenet(tmp_path)
    data = load_imagenet(DataIO(str(tmp_path), num_workers=0), image_size=32, resize=40)
    assert data.class_names == written["wnids"] and len(data.train) == 6 and len(data.test) == 3
    batches = list(data.train_batches(4, seed=0, epoch=0, device=torch.device("cpu")))
    assert [x.shape for x, _, _ in batches] == [(4, 3, 32, 32), (2, 3, 32, 32)]
    assert sorted(torch.cat([i for _, _, i in batches]).tolist()) == list(range(6))
    x, y = next(data.test_batches(8, device=torch.device("cpu")))
    assert x.shape == (3, 3, 32, 32) and y.tolist() == [0, 1, 2]
    again = list(data.train_batches(4, seed=0, epoch=0, device=torch.device("cpu")))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(batches, again, strict=True))  # resumable


def test_celeba_target_attributes_and_official_partition(tmp_path):
    written = write_celeba(tmp_path)
    data = load_celeba(str(tmp_path), image_size=16)
    test_rows = written["partition"] == 2
    np.testing.assert_array_equal(
        data.test.labels.numpy(), written["attributes"]["Smiling"][test_rows]
    )
    for attr in ("Young", "Male"):
        np.testing.assert_array_equal(
            data.test.attributes[attr].numpy(), written["attributes"][attr][test_rows]
        )
    assert data.attribute_groups == {"Young": ["not Young", "Young"], "Male": ["not Male", "Male"]}
    assert data.class_names == ["not Smiling", "Smiling"]
    assert data.test.inputs.shape == (10, 3, 16, 16)


def test_celeba_balances_the_training_labels_deterministically_per_seed(tmp_path):
    written = write_celeba(tmp_path, n=60)
    a = load_celeba(str(tmp_path), image_size=8, balance_seed=0)
    b = load_celeba(str(tmp_path), image_size=8, balance_seed=0)
    c = load_celeba(str(tmp_path), image_size=8, balance_seed=1)
    counts = torch.bincount(a.train.labels)
    assert counts[0] == counts[1] == 16  # 48 training images, a third smiling
    assert torch.equal(a.train.inputs, b.train.inputs) and torch.equal(
        a.train.labels, b.train.labels
    )
    assert not torch.equal(a.train.inputs, c.train.inputs)
    # Undersampling drops only non-smiling images, so every smiling training image is kept and
    # the shares of the smiling cells are the fixture's own: its counts over the 32 kept images.
    distribution = a.info["train_group_distribution"]
    train = written["partition"] == 0
    smiling = written["attributes"]["Smiling"][train] == 1
    young = written["attributes"]["Young"][train] == 1
    assert distribution["Young & Smiling"] == pytest.approx((young & smiling).sum() / 32)
    assert distribution["not Young & Smiling"] == pytest.approx((~young & smiling).sum() / 32)
    kept_young = a.train.attributes["Young"].numpy() == 1  # the rest: as the kept images say
    assert distribution["Young"] == pytest.approx(kept_young.mean())
    not_smiling = a.train.labels.numpy() == 0
    assert distribution["Young & not Smiling"] == pytest.approx((kept_young & not_smiling).mean())


def test_celeba_other_targets_and_unknown_attributes(tmp_path):
    written = write_celeba(tmp_path)
    data = load_celeba(str(tmp_path), image_size=8, target="Eyeglasses")
    np.testing.assert_array_equal(
        data.test.labels.numpy(), written["attributes"]["Eyeglasses"][written["partition"] == 2]
    )
    with pytest.raises(KdfairError, match="no attribute"):
        load_celeba(str(tmp_path), image_size=8, target="Smiles")


@pytest.mark.parametrize(
    ("loader", "phrase"),
    [
        (lambda r: load_cifar(r), "cifar-10-batches-py"),
        (lambda r: load_cifar(r, variant="cifar100"), "cifar-100-python"),
        (load_svhn, "train_32x32.mat"),
        (load_tinyimagenet, "tiny-imagenet-200"),
        (load_imagenet, "imagenet/train"),
        (load_celeba, "list_attr_celeba.txt"),
    ],
    ids=["cifar10", "cifar100", "svhn", "tinyimagenet", "imagenet", "celeba"],
)
def test_missing_data_names_the_expected_layout_and_how_to_get_it(tmp_path, loader, phrase):
    with pytest.raises(KdfairError, match="not found") as error:
        loader(str(tmp_path))
    assert phrase in str(error.value) and "Expected layout" in str(error.value)


def test_truncated_files_give_clear_errors(tmp_path):
    write_cifar(tmp_path / "c")
    batch = tmp_path / "c" / "cifar-10-batches-py" / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[:100])
    with pytest.raises(KdfairError, match="data_batch_3 is corrupt"):
        load_cifar(str(tmp_path / "c"))
    write_svhn(tmp_path / "s")
    (tmp_path / "s" / "test_32x32.mat").write_bytes(b"MATLAB but not really")
    with pytest.raises(KdfairError, match="test_32x32.mat is corrupt"):
        load_svhn(str(tmp_path / "s"))
    write_celeba(tmp_path / "a")
    attrs = tmp_path / "a" / "celeba" / "list_attr_celeba.txt"
    attrs.write_text("\n".join(attrs.read_text().splitlines()[:10]))  # fewer rows than announced
    with pytest.raises(KdfairError, match="list_attr_celeba.txt is corrupt"):
        load_celeba(str(tmp_path / "a"), image_size=8)
    write_tinyimagenet(tmp_path / "t")
    jpeg = (
        tmp_path / "t" / "tiny-imagenet-200" / "train" / "n00001001" / "images" / "n00001001_0.JPEG"
    )
    jpeg.write_bytes(jpeg.read_bytes()[:20])
    with pytest.raises(KdfairError, match="cannot be decoded"):
        load_tinyimagenet(str(tmp_path / "t"))


@pytest.mark.parametrize(
    ("dataset", "writer"),
    [
        ("cifar10", write_cifar),
        ("cifar100", lambda r: write_cifar(r, "cifar100")),
        ("svhn", write_svhn),
        ("tinyimagenet", write_tinyimagenet),
        ("celeba", write_celeba),
        ("imagenet", write_imagenet),
    ],
)
def test_every_dataset_config_builds_from_its_files(tmp_path, dataset, writer):
    writer(tmp_path)
    overrides = [f"dataset={dataset}", f"dataset.io.root={tmp_path}"]
    if dataset == "imagenet":
        overrides += ["dataset.num_classes=3", "dataset.io.num_workers=0"]
    if dataset == "tinyimagenet":
        overrides += ["dataset.num_classes=3"]
    cfg = compose_train(overrides)
    data = build_dataset(cfg.dataset)
    assert data.name == dataset and len(data.train) > 0 and len(data.test) > 0
    x, y, _ = next(data.train_batches(4, seed=0, epoch=0, device=torch.device("cpu")))
    assert x.dtype == torch.float32 and x.shape[0] == y.shape[0] == min(4, len(data.train))


def test_max_train_cuts_any_dataset_to_a_fixed_subset(tmp_path):
    write_cifar(tmp_path)
    cfg = compose_train(["dataset=cifar10", f"dataset.io.root={tmp_path}", "dataset.max_train=7"])
    a, b = build_dataset(cfg.dataset), build_dataset(cfg.dataset)
    assert len(a.train) == 7 and torch.equal(a.train.labels, b.train.labels)


def test_celeba_undersampling_keeps_images_labels_and_attributes_aligned(tmp_path):
    """Each fixture image is a solid red of 5 * (its row): every kept training image, identified
    by its colour, carries its own row's label and attributes."""
    written = write_celeba(tmp_path, n=50, n_test=10)
    data = load_celeba(str(tmp_path), image_size=8, balance_seed=3)
    rows = np.rint(data.train.inputs[:, 0].float().mean(dim=(1, 2)).numpy() / 5).astype(int)
    assert len(set(rows)) == len(rows) and (written["partition"][rows] == 0).all()
    np.testing.assert_array_equal(data.train.labels.numpy(), written["attributes"]["Smiling"][rows])
    for attr in ("Young", "Male"):
        np.testing.assert_array_equal(
            data.train.attributes[attr].numpy(), written["attributes"][attr][rows]
        )


class _Planted:
    """A pickle that, when loaded by a plain unpickler, creates a file: code from a data file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import pathlib

        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def test_a_crafted_cifar_batch_runs_no_code(tmp_path):
    import pickle

    write_cifar(tmp_path)
    marker = tmp_path / "code-ran"
    batch = tmp_path / "cifar-10-batches-py" / "data_batch_1"
    batch.write_bytes(pickle.dumps({"data": _Planted(str(marker)), "labels": [0]}))
    with pytest.raises(KdfairError, match="(?s)data_batch_1.*pathlib"):
        load_cifar(str(tmp_path))
    assert not marker.exists()


def test_celeba_reads_the_official_validation_partition(tmp_path):
    written = write_celeba(tmp_path)
    data = load_celeba(str(tmp_path), image_size=16)
    val_rows = written["partition"] == 1
    assert len(data.val) == val_rows.sum() == 2  # unbalanced, like the test split
    np.testing.assert_array_equal(
        data.val.labels.numpy(), written["attributes"]["Smiling"][val_rows]
    )
    np.testing.assert_array_equal(
        data.val.attributes["Male"].numpy(), written["attributes"]["Male"][val_rows]
    )


def _trifeature(tmp_path, *overrides):
    cfg = compose_train(
        [
            "dataset=trifeature_demo",
            f"dataset.io.root={tmp_path}",
            "dataset.n_train=400",
            "dataset.n_test=50",
            *overrides,
        ]
    )
    return build_dataset(cfg.dataset)


def test_val_fraction_holds_out_a_seeded_stratified_split_of_the_training_split(tmp_path):
    whole = _trifeature(tmp_path)
    assert whole.val is None  # the default: the paper trains on the full split
    data = _trifeature(tmp_path, "dataset.val_fraction=0.2")
    train, val = data.train.positions.tolist(), data.val.positions.tolist()
    assert not set(train) & set(val) and sorted(train + val) == list(range(len(whole.train)))
    assert torch.equal(data.test.labels, whole.test.labels)  # the test split is untouched
    assert torch.equal(data.val.labels, whole.train.labels[data.val.positions])
    counts = torch.bincount(whole.train.labels, minlength=10)
    held = torch.bincount(data.val.labels, minlength=10)
    assert ((held - 0.2 * counts).abs() <= 1).all()  # every class gives its share
    again = _trifeature(tmp_path, "dataset.val_fraction=0.2")
    other = _trifeature(tmp_path, "dataset.val_fraction=0.2", "dataset.val_seed=1")
    assert torch.equal(again.val.positions, data.val.positions)
    assert not torch.equal(other.val.positions, data.val.positions)
    assert data.info["n_train"] == len(data.train) and data.info["n_val"] == len(data.val)


def test_val_fraction_is_refused_where_an_official_validation_split_exists(tmp_path):
    write_celeba(tmp_path)
    cfg = compose_train(
        ["dataset=celeba", f"dataset.io.root={tmp_path}", "+dataset.val_fraction=0.1"]
    )
    with pytest.raises(KdfairError, match="official validation partition"):
        build_dataset(cfg.dataset)
