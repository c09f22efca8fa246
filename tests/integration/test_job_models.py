"""One list of a job's models: `kdfair plan` lists exactly the models the pipeline obtains, for
every experiment, with fused and unfused temperatures (the store is replaced by a recorder, so
nothing is trained and no data set is read)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from kdfair import pipeline
from kdfair.compose import compose_train
from kdfair.plan import plan
from kdfair.tracking import Tracker

CONFIGS = Path(__file__).resolve().parents[2] / "src" / "kdfair" / "configs"
EXPERIMENTS = sorted(p.stem for p in (CONFIGS / "experiment").glob("*.yaml"))


class RecordingStore:
    """Stands in for ModelStore: every key is missing, and get_or_train records the groups of
    keys it is asked for (one group = one training call: fused students share one)."""

    def __init__(self, root: Path):
        self.root = root
        self.groups: list[list[str]] = []

    def find(self, key):
        return None

    def folder(self, key) -> Path:
        return self.root / key

    def get_or_train(self, keys, train, descriptions=None):
        self.groups.append(list(keys))
        return [(SimpleNamespace(key=key), True) for key in keys]


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "unfused"])
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_plan_lists_exactly_the_models_the_job_obtains(experiment, fused, tmp_path, monkeypatch):
    for variable in ("KDFAIR_OUTPUTS", "KDFAIR_DATA", "KDFAIR_REDDITBIAS"):
        monkeypatch.setenv(variable, str(tmp_path))  # config checks want existing folders
    overrides = [
        f"+experiment={experiment}",
        "+debug=smoke",
        "seed=1",  # individual fairness's reference teacher (seed 0) is then a model of its own
        "distill.temperature=[1,4,10]",
        f"distill.fused={fused}",
    ]
    planned = [(m.role, m.key) for m in plan(overrides).models]

    store = RecordingStore(tmp_path / "models")
    monkeypatch.setattr(
        pipeline,
        "workshop",
        lambda settings, **options: SimpleNamespace(store=store, data=None, tracker=Tracker()),
    )
    monkeypatch.setattr(pipeline, "ensure_embedding", lambda shop, model: None)
    obtained: list[tuple[str, str]] = []
    monkeypatch.setattr(
        pipeline,
        "record",
        lambda settings, data, models, teacher, reference: obtained.extend(
            (m.role, m.entry.key) for m in [*models, *([reference] if reference else [])]
        ),
    )
    pipeline.run(compose_train(overrides))

    assert list(dict.fromkeys(obtained)) == planned
    distilled = [key for role, key in planned if role == "distilled"]
    assert len(distilled) == 3
    expected = [distilled] if fused else [[key] for key in distilled]
    assert [g for g in store.groups if set(g) <= set(distilled)] == expected
