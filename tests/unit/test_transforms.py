import torch

from kdfair.data.transforms import Augmentation, augment_batch, normalize


def _batch(n=16, h=8, w=8):
    return torch.randint(0, 256, (n, 3, h, w), dtype=torch.uint8)


def test_augmentation_keeps_shape_and_dtype():
    images = _batch()
    out = augment_batch(images, Augmentation(4, True), torch.Generator().manual_seed(0))
    assert out.shape == images.shape and out.dtype == torch.uint8


def test_augmentation_is_a_function_of_the_generator_seed():
    images = _batch()
    a = augment_batch(images, Augmentation(4, True), torch.Generator().manual_seed(3))
    b = augment_batch(images, Augmentation(4, True), torch.Generator().manual_seed(3))
    c = augment_batch(images, Augmentation(4, True), torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_identity_augmentation_leaves_images_untouched():
    images = _batch()
    assert Augmentation(0, False).is_identity
    assert torch.equal(augment_batch(images, Augmentation(0, False), torch.Generator()), images)


def test_each_output_is_a_shifted_or_flipped_copy_of_its_input():
    images = _batch(n=32)
    padding = 2
    out = augment_batch(images, Augmentation(padding, True), torch.Generator().manual_seed(1))
    padded = torch.nn.functional.pad(images, (padding,) * 4)
    for i in range(len(images)):
        candidates = [
            padded[i, :, dy : dy + 8, dx : dx + 8].flip(2)
            if flip
            else padded[i, :, dy : dy + 8, dx : dx + 8]
            for dy in range(2 * padding + 1)
            for dx in range(2 * padding + 1)
            for flip in (False, True)
        ]
        assert any(torch.equal(out[i], c) for c in candidates)


def test_normalize_maps_uint8_to_standardised_floats():
    images = torch.full((1, 3, 2, 2), 255, dtype=torch.uint8)
    out = normalize(images, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    assert out.dtype == torch.float32
    assert torch.allclose(out, torch.full_like(out, 2.0))
