"""kdfair.tracking without a run: the logger enters no key or recipe, a missing tracker package
names its extra, an unwritable log folder stops the job, only finite values are logged."""

from __future__ import annotations

import math
import sys

import pytest

from kdfair.errors import KdfairError
from kdfair.jobmodels import job_models
from kdfair.tracking import epoch_values, model_params, open_tracker, result_values
from kdfair.validate import validate


def _keys_and_recipes(cfg) -> list[tuple[str, str]]:
    settings = validate(cfg)
    models = job_models(settings)
    teacher = models.teacher.spec
    return [(m.key, model_params("demo", m, teacher)["recipe"]) for m in models.every()]


@pytest.mark.parametrize("logger", ["mlflow", "tensorboard"])
def test_the_logger_is_in_no_model_key_or_recipe(smoke_cfg, logger):
    plain = _keys_and_recipes(smoke_cfg())
    tracked = _keys_and_recipes(smoke_cfg(f"logger={logger}"))
    assert tracked == plain and len(plain) == 6  # teacher, NDS, 3 DS, reference teacher


@pytest.mark.parametrize("extra", ["mlflow", "tensorboard"])
def test_a_missing_tracker_package_names_the_extra_that_installs_it(monkeypatch, tmp_path, extra):
    monkeypatch.setitem(sys.modules, extra, None)  # import fails as if not installed
    with pytest.raises(KdfairError, match=rf"pip install 'kdfair\[{extra}\]'"):
        open_tracker({"name": extra}, outputs=tmp_path, experiment="demo", job="job")


def test_an_unwritable_tensorboard_folder_stops_the_job(tmp_path):
    pytest.importorskip("tensorboard")
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    logger = {"name": "tensorboard", "log_dir": str(blocker)}
    with pytest.raises(KdfairError, match="logger=tensorboard cannot write to logger.log_dir"):
        open_tracker(logger, outputs=tmp_path, experiment="demo", job="job")


def test_only_finite_numbers_are_logged():
    row = {"epoch": 3, "lr": 0.1, "train_loss": math.inf, "diverged": True, "note": "x"}
    assert epoch_values(row) == {"lr": 0.1}
    result = {"model_key": "abc", "seed": 0, "accuracy": 0.5, "dpd_color": math.nan, "eod_a": 0.1}
    assert result_values(result) == {"accuracy": 0.5, "eod_a": 0.1}
