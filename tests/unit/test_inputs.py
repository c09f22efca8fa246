"""Input kinds: images are normalised and augmented, token ids reach the model untouched."""

import torch

from kdfair.data import Augmentation, DataBundle, ImageInputs, Split, TokenInputs

CPU = torch.device("cpu")


def _bundle(inputs: torch.Tensor, kind) -> DataBundle:
    split = Split(inputs, torch.arange(len(inputs)) % 2)
    return DataBundle("toy", split, split, 2, ["a", "b"], {}, kind)


def test_images_are_normalised_per_channel_on_the_way_to_the_model():
    images = torch.tensor([0, 51, 255], dtype=torch.uint8).view(1, 3, 1, 1).repeat(4, 1, 2, 2)
    kind = ImageInputs(mean=(0.0, 0.2, 0.5), std=(1.0, 0.5, 0.25))
    x, _ = next(_bundle(images, kind).test_batches(4, device=CPU))
    assert x.dtype == torch.float32
    torch.testing.assert_close(x[0, :, 0, 0], torch.tensor([0.0, 0.0, 2.0]))


def test_images_are_augmented_only_when_asked():
    images = torch.arange(4 * 3 * 6 * 6, dtype=torch.int64).remainder(256).to(torch.uint8)
    images = images.view(4, 3, 6, 6)
    plain = ImageInputs((0.0,) * 3, (1.0,) * 3)
    flipped = ImageInputs((0.0,) * 3, (1.0,) * 3, Augmentation(crop_padding=2))
    assert not plain.augmented and flipped.augmented
    assert _bundle(images, plain).deterministic_train_stream
    assert not _bundle(images, flipped).deterministic_train_stream
    x_plain, _, idx = next(_bundle(images, plain).train_batches(4, seed=0, epoch=0, device=CPU))
    torch.testing.assert_close(x_plain, images[idx].float() / 255)
    x_aug, _, idx = next(_bundle(images, flipped).train_batches(4, seed=0, epoch=0, device=CPU))
    assert not torch.equal(x_aug, images[idx].float() / 255)


def test_token_ids_reach_the_model_as_they_are_and_have_no_geometry():
    tokens = torch.randint(0, 30_000, (5, 2, 7))
    data = _bundle(tokens, TokenInputs())
    x, _, idx = next(data.train_batches(5, seed=3, epoch=1, device=CPU))
    assert x.dtype == torch.int64 and torch.equal(x, tokens[idx])
    assert data.deterministic_train_stream and data.modality == "text"
    assert not TokenInputs.distances_are_meaningful and ImageInputs.distances_are_meaningful
