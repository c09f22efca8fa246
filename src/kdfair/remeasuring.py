"""`kdfair analyze DIR --remeasure [eval.<key>=<value> ...]`: the set-up from configs.

The folder's experiment config is composed again with eval.* overrides (measuring settings; any
other setting would change the models), giving the eval settings as a plain dict and, for
eval.individual.space=input, the test inputs (the dataset built); kdfair.analysis.remeasure then
measures every model from its stored predictions. Here, not in the analysis, because it reads
configs (hydra, omegaconf) and may build a dataset (torch): the analysis takes plain values.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from kdfair.analysis.remeasure import remeasure
from kdfair.compose import ENV_VAR, compose_train, find_config
from kdfair.errors import KdfairError
from kdfair.results import read_results


def remeasure_folder(directory: Path, overrides: list[str]) -> None:
    """Compose the folder's experiment config with `overrides` (eval.* only) and remeasure
    every model of the folder under the eval settings it gives."""
    bad = [o for o in overrides if not o.lstrip("+~").startswith("eval.")]
    if bad:
        raise KdfairError(
            f"--remeasure takes eval.* overrides only (measuring settings), got {bad}; other "
            "settings change the models: train them with `kdfair train`."
        )
    if not (directory / "results.csv").is_file():
        raise KdfairError(f"No results.csv in {directory}; nothing to remeasure.")
    experiment = str(read_results(directory / "results.csv")["experiment"].iloc[0])
    if find_config("experiment", experiment) is None:
        raise KdfairError(
            f"--remeasure reads the eval settings of experiment {experiment!r}, but there is "
            f"no experiment/{experiment}.yaml among kdfair's configs or yours ({ENV_VAR})."
        )
    cfg = compose_train([f"+experiment={experiment}", *overrides])
    evaluation = OmegaConf.to_container(cfg.eval, resolve=True)
    test_inputs = None
    if evaluation["individual"]["enabled"] and evaluation["individual"]["space"] == "input":
        # Only pixel distances need the dataset (and torch): imported here, not above.
        from kdfair.data import Split
        from kdfair.factories import build_dataset
        from kdfair.measure import check_input_space

        data = build_dataset(cfg.dataset)
        check_input_space(evaluation["individual"], data)
        test_inputs = data.test.inputs.numpy() if isinstance(data.test, Split) else None
    remeasure(directory, evaluation, test_inputs=test_inputs)
