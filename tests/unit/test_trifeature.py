import numpy as np
import pytest

from kdfair.data.trifeature import COLORS, SHAPES, TEXTURES, generate, load_trifeature, render
from kdfair.errors import KdfairError


def test_names_follow_the_protocol():
    assert SHAPES == [
        "triangle",
        "square",
        "plus",
        "circle",
        "tee",
        "rhombus",
        "pentagon",
        "star",
        "fivesquare",
        "trapezoid",
    ]
    assert TEXTURES == [
        "solid",
        "stripes",
        "grid",
        "hexgrid",
        "dots",
        "noise",
        "triangles",
        "zigzags",
        "rain",
        "pluses",
    ]
    assert list(COLORS) == [
        "red",
        "green",
        "blue",
        "yellow",
        "pink",
        "cyan",
        "purple",
        "ocean",
        "orange",
        "white",
    ]


def test_generation_is_deterministic_for_a_seed():
    a, b = generate(20, image_size=16, seed=5), generate(20, image_size=16, seed=5)
    c = generate(20, image_size=16, seed=6)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a["images"], c["images"])


def test_images_have_a_shape_on_grey():
    data = generate(50, image_size=32, seed=0)
    assert data["images"].shape == (50, 32, 32, 3) and data["images"].dtype == np.uint8
    for image in data["images"]:
        foreground = np.abs(image.astype(int) - 128).sum(-1) > 30
        assert 0.1 < foreground.mean() < 0.8  # a shape, not an empty or a full canvas
        assert (image[0, 0] == 128).all() or (image[-1, -1] == 128).all()  # grey background


@pytest.mark.parametrize("color", range(10))
def test_a_solid_shape_is_drawn_in_its_colour(color):
    image = render(3, 0, color, image_size=32, rng=np.random.default_rng(color))
    foreground = np.abs(image.astype(int) - 128).sum(-1) > 30
    rgb = np.asarray(list(COLORS.values())[color])
    exact = (np.abs(image[foreground].astype(int) - rgb).max(-1) <= 2).mean()
    assert exact > 0.7  # all but the anti-aliased rim


def test_textures_mix_the_colour_with_its_darker_shade():
    for texture in range(1, 10):
        image = render(1, texture, 9, image_size=32, rng=np.random.default_rng(texture))
        levels = np.unique(image[image[..., 0] != 128][:, 0])  # red channel of the shape
        assert round(250 * 0.35) in levels  # pixels fully "off": the dark shade of white
        assert levels.max() > (88 + 250) / 2  # pixels mostly "on": nearer white than its shade


def _silhouettes(n, rng, **pose):
    images, labels = [], []
    for _ in range(n):
        shape, texture, color = rng.integers(0, 10, size=3)
        image = render(shape, texture, color, image_size=32, rng=rng, **pose)
        images.append(np.abs(image.astype(float) - 128).sum(-1) > 6)  # foreground mask
        labels.append(shape)
    return np.asarray(images, dtype=float).reshape(n, -1), np.asarray(labels)


def test_the_ten_shapes_are_distinguishable():
    """A nearest-centroid classifier on silhouettes of centred renders (random texture, colour,
    size and +-10 degree rotation) is far above the 10% chance level."""
    rng = np.random.default_rng(0)
    pose = {"centred": True, "max_rotation": 10.0, "scale": (0.75, 0.85)}
    x_train, y_train = _silhouettes(600, rng, **pose)
    x_test, y_test = _silhouettes(300, rng, **pose)
    centroids = np.stack([x_train[y_train == c].mean(0) for c in range(10)])
    distances = ((x_test[:, None, :] - centroids[None]) ** 2).sum(-1)
    accuracy = (distances.argmin(1) == y_test).mean()
    assert accuracy > 0.8


def test_load_trifeature_caches_and_returns_a_bundle(tmp_path):
    bundle = load_trifeature(str(tmp_path), image_size=16, n_train=40, n_test=20)
    cached = list((tmp_path / "trifeature").glob("*.npz"))
    assert len(cached) == 1
    assert bundle.train.inputs.shape == (40, 3, 16, 16)
    assert bundle.test.inputs.shape == (20, 3, 16, 16)
    assert set(bundle.test.attributes) == {"color", "texture"}
    assert bundle.attribute_groups["color"] == list(COLORS)
    assert bundle.class_names == SHAPES and bundle.num_classes == 10
    mtime = cached[0].stat().st_mtime_ns
    again = load_trifeature(str(tmp_path), image_size=16, n_train=40, n_test=20)
    assert cached[0].stat().st_mtime_ns == mtime  # read from the cache, not regenerated
    assert (again.train.inputs == bundle.train.inputs).all()


def test_an_unreadable_cache_is_regenerated(tmp_path):
    load_trifeature(str(tmp_path), image_size=16, n_train=20, n_test=10)
    cached = next((tmp_path / "trifeature").glob("*.npz"))
    cached.write_bytes(b"not a zip file")
    bundle = load_trifeature(str(tmp_path), image_size=16, n_train=20, n_test=10)
    assert len(bundle.train) == 20


def test_too_small_settings_give_a_clear_error(tmp_path):
    with pytest.raises(KdfairError, match="image_size"):
        load_trifeature(str(tmp_path), image_size=8)
    with pytest.raises(KdfairError, match="n_test"):
        load_trifeature(str(tmp_path), n_test=0)
