"""`kdfair train | plan | tune | analyze | compare`: the only code that reads argv.

`kdfair train [hydra overrides]` composes the packaged configs/train.yaml (kdfair.compose) with
the overrides and runs `kdfair.pipeline.run`; `-m` sweeps. Without `+experiment=...`
train.yaml's default_experiment runs the demo experiment. `kdfair plan` composes the same jobs
and reports their models without training (kdfair.plan); `kdfair tune` runs kdfair.tuning's
stages. The overrides are checked first (kdfair.overrides, shared with kdfair.api); `analyze
--remeasure` is set up from configs by kdfair.remeasuring.
"""

from __future__ import annotations

import logging
import os
import shlex
import sys
from pathlib import Path

from kdfair.compose import packaged_config_dir, search_path, user_config_dirs
from kdfair.errors import KdfairError
from kdfair.extras import require_launcher
from kdfair.launching import in_worker, mark_sweep_process, sweep_errors_raised
from kdfair.overrides import check_experiment_file, check_job_overrides, check_tune_overrides
from kdfair.version import __version__

log = logging.getLogger("kdfair")

USAGE = """usage: kdfair <command> [options]

commands:
  train [overrides]   train teacher, student and distilled student(s); Hydra overrides, -m sweeps
                      e.g. kdfair train +experiment=trifeature_resnet20_lenet5 distill.temperature=4
                      (without +experiment=..., the small demo study: +experiment=demo);
                      kdfair train --help lists the experiments and every setting
  plan [overrides]    what that train command (-m: sweep; --tune: tune) would train, and
                      what is stored, in progress or missing; trains nothing
  tune [overrides]    choose the NDS's and each temperature's learning rate on the validation
                      split (a grid around the configured lr; --roles teacher,nds,distilled,
                      tune.grid=[...], tune.seeds=N); writes tuning.csv and an overlay that
                      `kdfair train tuned=PATH` applies, e.g. kdfair tune dataset.val_fraction=0.2
  analyze DIR         claims, tables, figures and report.md of an experiment folder, e.g.
                      outputs/demo [--normalisation ratio|diff] [--correction none|holm|bh]
                      [--claims-correction holm|bh|none]
                      [--threshold 0.05] [--recipe HASH] [--eval HASH] [--resamples 1000]
                      [--remeasure [eval.<key>=<value> ...]]
                      [--logger mlflow|tensorboard [--tracking-uri URI | --log-dir DIR]]
  compare SWEEP ...   several sweeps side by side (settings that differ, metrics vs T with
                      intervals, claims per sweep); SWEEP is a folder or DIR@RECIPE, e.g.
                      kdfair compare outputs/a outputs/b@2e6f60b4 --out outputs/compare

Show the composed config:  kdfair train --cfg job
Your own experiments:      KDFAIR_CONFIG_DIR=DIR (DIR/experiment/<name>.yaml), or --config-dir DIR
Shell completion:          eval "$(kdfair train -sc install=bash)"   (zsh: install=zsh)
Version:                   kdfair --version
"""


def train(overrides: list[str], task=None) -> int:
    """Run `task` (default: kdfair.pipeline.run) on each job of `overrides` through Hydra."""
    import hydra  # imported here so `kdfair --help` stays instant
    from omegaconf import DictConfig

    from kdfair.overlay import expand_tuned

    overrides = expand_tuned(overrides)
    check_job_overrides(overrides)

    @hydra.main(version_base="1.3", config_path=str(packaged_config_dir()), config_name="train")
    def _train(cfg: DictConfig) -> None:
        from hydra.core.hydra_config import HydraConfig

        from kdfair.pipeline import run

        try:
            check_experiment_file(dict(HydraConfig.get().runtime.choices))
            (task or run)(cfg)
        except KdfairError as e:
            log.error("kdfair: error: %s", e)  # to stderr and to the run's log file
            if in_worker():
                raise  # Hydra hands it back to the sweep's process (sweep_errors_raised)
            sys.exit(2)
        except Exception:
            if in_worker():  # the traceback would not survive the trip back: log it here
                log.exception("the job failed")
            raise

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
    require_launcher(overrides)
    if any(a in ("-m", "--multirun") for a in overrides):  # the progress line's "job i/n"
        from kdfair.plan import job_overrides
        from kdfair.progress import JOBS_ENV

        plain = [o for o in overrides if "=" in o and not o.startswith("-")]
        os.environ[JOBS_ENV] = str(len(job_overrides(plain, multirun=True)))
    overrides = [*overrides, *search_path(user_config_dirs())]  # $KDFAIR_CONFIG_DIR
    if int(os.environ.get("RANK", "0")) > 0:  # a torchrun rank other than 0: rank 0 records
        # the config and keeps the log file; this rank logs (warnings only) to the console
        overrides = [
            *overrides,
            "hydra.output_subdir=null",
            "hydra.job_logging.root.handlers=[console]",
        ]
    sys.argv = ["kdfair", *overrides]  # Hydra names the program (completion, --help) after it
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()  # `kdfair tune` runs a sweep per stage in one process
    mark_sweep_process()  # a job in another process runs in a launcher's worker
    if any(a.startswith("hydra/launcher=") for a in overrides):
        with sweep_errors_raised():
            _train()
    else:
        _train()
    distributed.finish()  # under torchrun: every rank done, process group closed
    return 0


def plan(args: list[str]) -> int:
    """`kdfair plan [overrides] [-m | --tune]`: every model the job, sweep or tune needs, and
    its state."""
    from kdfair.overlay import expand_tuned

    multirun = any(a in ("-m", "--multirun") for a in args)
    tuning = "--tune" in args
    overrides = expand_tuned([a for a in args if a not in ("-m", "--multirun", "--tune")])
    overrides, roles = _roles_option(overrides)
    _refuse_flags(
        overrides, "plan", "-m, --tune and --roles", "plan -m +experiment=demo seed=0,1,2"
    )
    check_job_overrides(overrides)
    from kdfair.plan import format_plan, plan_tune
    from kdfair.plan import plan as plan_jobs

    if tuning:
        check_tune_overrides(overrides)
        print(format_plan(plan_tune([*overrides, *roles])))
    else:
        print(format_plan(plan_jobs(overrides, multirun=multirun)))
    return 0


def _refuse_flags(args: list[str], command: str, allowed: str, example: str) -> None:
    flags = [a for a in args if a.startswith("-")]
    if flags:
        raise KdfairError(
            f"kdfair {command} takes overrides and {allowed} only, not {flags[0]!r}: e.g. "
            f"kdfair {example}."
        )


def _roles_option(args: list[str]) -> tuple[list[str], list[str]]:
    """`--roles teacher,nds,distilled` (nds: the non-distilled student) as a tune.roles override."""
    rest, roles = [], []
    it = iter(args)
    for arg in it:
        if arg == "--roles" or arg.startswith("--roles="):
            value = arg.partition("=")[2] if "=" in arg else next(it, "")
            names = ["student" if r.strip() == "nds" else r.strip() for r in value.split(",")]
            roles = [f"tune.roles=[{','.join(names)}]"]
        else:
            rest.append(arg)
    return rest, roles


def tune(args: list[str]) -> int:
    """`kdfair tune [overrides] [--roles ...]`: choose each role's lr on validation."""
    from kdfair.overlay import expand_tuned
    from kdfair.tuning import run_trials
    from kdfair.tuning import tune as run_tune

    overrides = expand_tuned([a for a in args if a not in ("-m", "--multirun")])
    overrides, roles = _roles_option(overrides)
    _refuse_flags(overrides, "tune", "--roles", "tune dataset.val_fraction=0.2 --roles nds")
    check_job_overrides(overrides, tuning=True)
    check_tune_overrides(overrides)
    command = shlex.join(["kdfair", "tune", *args])
    run_tune([*overrides, *roles], lambda sweep: train(sweep, task=run_trials), command=command)
    return 0


def analyze(args: list[str]) -> int:
    """`kdfair analyze DIR [options] [--remeasure [eval overrides]]`: the folder's report."""
    options = _analyze_parser().parse_intermixed_args(args)
    _check_test_options(options)
    if options.overrides and not options.remeasure:
        raise KdfairError(
            f"Unexpected arguments {options.overrides}: eval overrides apply only with "
            "--remeasure, e.g. kdfair analyze outputs/demo --remeasure eval.individual.k=5."
        )
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from kdfair.analysis import analyze as run_analysis
    from kdfair.tracking import analysis_tracker

    tracker = analysis_tracker(  # reached before the analysis runs
        options.experiment_dir, options.logger, options.tracking_uri, options.log_dir
    )
    if options.remeasure:
        from kdfair.remeasuring import remeasure_folder  # configs are read only to remeasure

        remeasure_folder(Path(options.experiment_dir), options.overrides)
        options.evaluation = None  # the rows just measured are the newest
    report = run_analysis(
        options.experiment_dir,
        normalisation=options.normalisation,
        threshold=options.threshold,
        correction=options.correction,
        claims_correction=options.claims_correction,
        recipes=options.recipe,
        evaluation=options.evaluation,
        resamples=options.resamples,
        seed=options.seed,
    )
    tracker.log_analysis(report.parent)
    return _show(report)


def _analyze_parser():
    """`kdfair analyze`'s options (the classwise tests' choices come from kdfair.metrics)."""
    import argparse

    from kdfair.metrics.classwise import CORRECTIONS, NORMALISATIONS

    parser = argparse.ArgumentParser(
        prog="kdfair analyze", description="Claims, tables, figures and report.md of a sweep."
    )
    parser.add_argument("experiment_dir", help="the experiment folder, e.g. outputs/demo")
    parser.add_argument(
        "overrides",
        nargs="*",
        help="with --remeasure: eval.* overrides of the experiment config (eval.individual.k=5)",
    )
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
    parser.add_argument(
        "--claims-correction",
        choices=CORRECTIONS,
        default="holm",
        help="multiple-testing correction over the claims table's testable rows (default holm)",
    )
    parser.add_argument("--threshold", type=float, default=0.05, help="p-value threshold")
    parser.add_argument(
        "--recipe",
        action="append",
        metavar="HASH",
        help="analyse the rows of this recipe (results.csv's recipe column); a distilled recipe "
        "brings its matching teacher and NDS; repeat to pick each role's",
    )
    parser.add_argument(
        "--eval", dest="evaluation", metavar="HASH", help="eval setting to read (default: newest)"
    )
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    parser.add_argument(
        "--logger",
        choices=("none", "mlflow", "tensorboard"),
        default="none",
        help="also log the report and figures to this tracker (the logger group's defaults)",
    )
    parser.add_argument("--tracking-uri", metavar="URI", help="--logger mlflow: its store")
    parser.add_argument("--log-dir", metavar="DIR", help="--logger tensorboard: its folder")
    parser.add_argument(
        "--remeasure",
        action="store_true",
        help="first measure every model again from its stored predictions with the experiment's "
        "current eval settings (plus the overrides), as new rows; trains nothing",
    )
    return parser


def _show(report: Path) -> int:
    """Print a written report and say where its CSVs and figures are."""
    print(report.read_text())
    print(f"written to {report.parent}/", file=sys.stderr)
    return 0


def _check_test_options(options) -> None:
    """Reject a p-value threshold outside (0, 1) and too few bootstrap resamples, up front."""
    if not 0 < options.threshold < 1:
        raise KdfairError(f"--threshold={options.threshold} must be in (0, 1), e.g. 0.05.")
    if options.resamples < 100:
        raise KdfairError(f"--resamples={options.resamples}: use at least 100 (default 1000).")


def compare(args: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="kdfair compare",
        description="Several sweeps side by side: the settings that differ (from the stored "
        "recipes), accuracy and fairness against T with intervals, the claims per sweep.",
    )
    parser.add_argument(
        "sweeps",
        nargs="+",
        metavar="SWEEP",
        help="an experiment folder (outputs/demo) or one recipe of it (outputs/demo@HASH)",
    )
    parser.add_argument("--out", required=True, help="folder for compare.md, its CSVs and figures")
    parser.add_argument("--threshold", type=float, default=0.05, help="p-value threshold")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    options = parser.parse_args(args)
    _check_test_options(options)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from kdfair.analysis.compare import compare as run_compare

    report = run_compare(
        options.sweeps,
        options.out,
        threshold=options.threshold,
        resamples=options.resamples,
        seed=options.seed,
    )
    return _show(report)


COMMANDS = ("train", "plan", "tune", "analyze", "compare")
# Commands whose arguments are Hydra overrides, so the shell completes them like `train`'s.
OVERRIDE_COMMANDS = ("train", "plan", "tune")


def complete(argv: list[str]) -> int:
    """Hydra's completion script asks `kdfair -sc query=bash` with the whole line in
    $COMP_LINE ("kdfair train +experiment=de"). Complete the command word ourselves and hand
    the overrides of train and plan to Hydra without the command word (which Hydra would take
    for an override); `-sc install=...` prints Hydra's script, bound to `kdfair`."""
    if any(a.startswith("install=zsh") for a in argv):  # zsh runs the bash script
        print("autoload -U +X bashcompinit && bashcompinit")
        argv = ["install=bash" if a == "install=zsh" else a for a in argv]
    if not any(a.startswith("query=") for a in argv):
        return train(["-sc", *argv])
    words = os.environ.get("COMP_LINE", "").split()
    typing_command = len(words) == 1 or (
        len(words) == 2 and not os.environ["COMP_LINE"][-1:].isspace()
    )
    if typing_command:
        typed = words[1] if len(words) == 2 else ""
        print(" ".join(c for c in COMMANDS if c.startswith(typed)))
        return 0
    if words[1] not in OVERRIDE_COMMANDS:
        return 0  # analyze and compare take folders: the shell's file completion (-o default)
    line = os.environ["COMP_LINE"]
    os.environ["COMP_LINE"] = line.replace(f" {words[1]}", "", 1)
    return train(["-sc", *argv])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    if argv[0] in ("-V", "--version", "version"):
        print(f"kdfair {__version__}")
        return 0
    command, rest = argv[0], argv[1:]
    try:
        if command in ("-sc", "--shell-completion"):
            return complete(rest)
        if command == "train" and rest[:1] in (["-sc"], ["--shell-completion"]):
            return complete(rest[1:])  # `kdfair train -sc install=bash`, as Hydra documents
        if command == "train":
            return train(rest)
        if command == "plan":
            return plan(rest)
        if command == "tune":
            return tune(rest)
        if command == "analyze":
            return analyze(rest)
        if command == "compare":
            return compare(rest)
    except KdfairError as e:
        print(f"kdfair: error: {e}", file=sys.stderr)
        return 2
    print(f"kdfair: error: unknown command {command!r}.\n\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
