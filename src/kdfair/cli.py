"""`kdfair train | analyze`: the only code that reads argv.

`kdfair train [hydra overrides]` composes configs/train.yaml with the overrides and runs
`kdfair.pipeline.run`; `-m` sweeps. Without `+experiment=...` it runs the demo experiment.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from kdfair.errors import KdfairError

log = logging.getLogger("kdfair")

USAGE = """usage: kdfair <command> [options]

commands:
  train [overrides]   train teacher, student and distilled student(s); Hydra overrides, -m sweeps
                      e.g. kdfair train +experiment=trifeature_resnet20_lenet5 distill.temperature=4
                      (without +experiment=..., the small demo study: +experiment=demo)
  analyze DIR         tables, figures and report.md of an experiment folder, e.g. outputs/demo
                      [--normalisation ratio|diff] [--correction none|holm|bh] [--threshold 0.05]

Show the composed config:  kdfair train --cfg job
"""


def config_dir() -> Path:
    """configs/ of the source tree (kdfair is installed editable), or $KDFAIR_CONFIG_DIR."""
    path = Path(
        os.environ.get("KDFAIR_CONFIG_DIR", Path(__file__).resolve().parents[2] / "configs")
    )
    if not (path / "train.yaml").is_file():
        raise KdfairError(
            f"kdfair's configs were not found at {path}. Install kdfair from its source tree "
            "with `pip install -e .` (as `make` does), or set KDFAIR_CONFIG_DIR to the configs/ "
            "folder."
        )
    return path


def _selects_experiment(overrides: list[str]) -> bool:
    return any(a.lstrip("+~").startswith("experiment=") for a in overrides)


def train(overrides: list[str]) -> int:
    import hydra  # imported here so `kdfair --help` stays instant
    from omegaconf import DictConfig

    if not _selects_experiment(overrides):
        # Before the first override, after any flags (-m, --cfg job): later overrides such as
        # +debug=smoke then still apply on top of the demo's values.
        first = next(
            (i for i, a in enumerate(overrides) if "=" in a and not a.startswith("-")),
            len(overrides),
        )
        overrides = [*overrides[:first], "+experiment=demo", *overrides[first:]]

    @hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="train")
    def _train(cfg: DictConfig) -> None:
        from kdfair.pipeline import run

        try:
            run(cfg)
        except KdfairError as e:
            log.error("kdfair: error: %s", e)  # to stderr and to the run's log file
            sys.exit(2)

    from kdfair import distributed

    if distributed.launched_by_torchrun() and any(
        a.startswith("hydra/launcher=") for a in overrides
    ):
        raise KdfairError(
            "hydra/launcher=... cannot run under torchrun: torchrun's processes are one job's "
            "ranks, and a launcher's workers would inherit their rank variables. Under torchrun "
            "a sweep (-m) runs its jobs one after another, each on all processes; for jobs in "
            "parallel, each on several GPUs, use hydra/launcher=slurm with "
            "hydra.launcher.tasks_per_node=<GPUs per node> instead of torchrun."
        )
    if int(os.environ.get("RANK", "0")) > 0:  # a torchrun rank other than 0: rank 0 records
        # the config and keeps the log file; this rank logs (warnings only) to the console
        overrides = [
            *overrides,
            "hydra.output_subdir=null",
            "hydra.job_logging.root.handlers=[console]",
        ]
    sys.argv = ["kdfair train", *overrides]
    _train()
    distributed.finish()  # under torchrun: every rank done, process group closed
    return 0


def analyze(args: list[str]) -> int:
    import argparse

    from kdfair.metrics.classwise import CORRECTIONS, NORMALISATIONS

    parser = argparse.ArgumentParser(
        prog="kdfair analyze", description="Tables, figures and report.md of a sweep."
    )
    parser.add_argument("experiment_dir", help="the experiment folder, e.g. outputs/demo")
    parser.add_argument(
        "--normalisation",
        choices=NORMALISATIONS,
        default="ratio",
        help="class accuracy / overall accuracy (ratio) or minus it (diff)",
    )
    parser.add_argument(
        "--correction",
        choices=CORRECTIONS,
        default="none",
        help="multiple-comparison correction over classes (the paper: none)",
    )
    parser.add_argument("--threshold", type=float, default=0.05, help="p-value threshold")
    options = parser.parse_args(args)
    if not 0 < options.threshold < 1:
        raise KdfairError(f"--threshold={options.threshold} must be in (0, 1), e.g. 0.05.")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from kdfair.analysis import analyze as run_analysis

    report = run_analysis(
        options.experiment_dir,
        normalisation=options.normalisation,
        threshold=options.threshold,
        correction=options.correction,
    )
    print(report.read_text())
    print(f"written to {report.parent}/", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    command, rest = argv[0], argv[1:]
    try:
        if command == "train":
            return train(rest)
        if command == "analyze":
            return analyze(rest)
    except KdfairError as e:
        print(f"kdfair: error: {e}", file=sys.stderr)
        return 2
    print(f"kdfair: error: unknown command {command!r}.\n\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
