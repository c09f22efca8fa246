"""Recipes and eval settings: what makes two results.csv rows comparable.

A model's *recipe* is everything that defines it except its seed (and, for a distilled student,
its temperature, which is a population's coordinate, not its recipe): the model key's content
without the seed. A distilled student's teacher enters through the teacher's recipe, not through
its seed-specific key, so the DS of every seed of one study share one recipe. Settings are named
as in the config (`student_optim.optimizer.lr`, `teacher.name`, `distill.t_squared`), so a message
about two recipes names the override that tells them apart.

    recipe = sha256(canonical JSON of the flat settings)[:8]

The *eval* hash is the same over the `eval.*` settings that change a measurement (individual
fairness: space, pairs, k, distance, ...); `eval.batch_size` and `eval.every_epoch` change how
predictions are made or logged, never their values, and are left out. `eval.checkpoint` (which
epoch's weights a model keeps) changes the model, so it is a recipe setting (recorded when it is
`best`; absent means `last`), not an eval one.

Both hashes are written on every results.csv row; the flat settings behind each hash are kept in
`recipes.json` beside it (`{"recipes": {hash: {"role", "settings"}}, "evals": {hash: settings}}`).
"""

from __future__ import annotations

import hashlib
import json

HASH_LENGTH = 8
# eval.* keys that never change a measured value (they change how predictions are computed or
# how training is logged), so a rerun that changes them measures nothing new.
EVAL_NON_MEASURING_KEYS = ("batch_size", "every_epoch", "checkpoint")
# The config groups a spec's parts came from, by role (for settings named as overrides).
_SLOTS = {"teacher": ("teacher", "teacher_optim"), "student": ("student", "student_optim")}


def short_hash(obj) -> str:
    canonical = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:HASH_LENGTH]


def flatten(obj, prefix: str = "") -> dict:
    """{'a': {'b': 1}} -> {'a.b': 1}; lists and scalars are leaves."""
    if not isinstance(obj, dict):
        return {prefix: obj}
    flat = {}
    for key, value in obj.items():
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def recipe_settings(
    spec: dict, role: str, teacher_spec: dict | None = None, chosen: dict | None = None
) -> dict:
    """The flat, config-named settings of a model's recipe (see the module docstring).

    `spec` is the model-key content (dataset, batch_size, processes, objective, seed, arch,
    optim, distill); `teacher_spec` is the teacher's, required for a distilled student.
    `chosen`: settings chosen for the population, named as set (`nds_optim.optimizer.lr`, or
    `distill.lr`: a learning rate per T), which replace the student_optim settings they override,
    so the NDS and the DS of one tune (one lr each, per T) read as one recipe per role and still
    agree with each other on every setting they share.
    """
    arch_slot, optim_slot = _SLOTS["teacher" if role == "teacher" else "student"]
    settings = {
        **flatten(spec.get("dataset", {}), "dataset"),
        "dataset.batch_size": spec.get("batch_size"),
        **flatten(spec["arch"], arch_slot),
        **flatten(spec["optim"], optim_slot),
    }
    if "processes" in spec:
        settings["processes"] = spec["processes"]
    if "checkpoint" in spec:
        settings["eval.checkpoint"] = spec["checkpoint"]
    distill = spec.get("distill")
    if distill is not None:
        if teacher_spec is None:
            raise ValueError("a distilled student's recipe needs its teacher's spec")
        settings["distill.alpha"] = distill["alpha"]
        settings["distill.t_squared"] = distill["t_squared"]
        for name in ("method", "control"):  # absent: kd, no control (older recipes unchanged)
            if name in distill:
                settings[f"distill.{name}"] = distill[name]
        for method in ("dkd", "at"):
            settings.update(flatten(distill.get(method, {}), f"distill.{method}"))
        teacher = recipe_settings(teacher_spec, "teacher")
        settings.update({k: v for k, v in teacher.items() if k.startswith("teacher")})
    for name, value in (chosen or {}).items():
        settings.pop(replaced_setting(name), None)
        settings[name] = value
    return dict(sorted(settings.items()))


def replaced_setting(chosen: str) -> str:
    """The student_optim setting a chosen one replaces: distill.lr replaces the student's lr,
    nds_optim.<key> the student's <key>."""
    if chosen == "distill.lr":
        return "student_optim.optimizer.lr"
    return "student_optim." + chosen.removeprefix("nds_optim.")


def recipe_hash(settings: dict) -> str:
    return short_hash(settings)


def eval_settings(eval_cfg: dict) -> dict:
    """The flat eval.* settings that change a measurement."""
    measuring = {k: v for k, v in eval_cfg.items() if k not in EVAL_NON_MEASURING_KEYS}
    return dict(sorted(flatten(measuring, "eval").items()))


def eval_hash(settings: dict) -> str:
    return short_hash(settings)


def readable_columns(spec: dict) -> dict:
    """epochs, lr and t_squared: the recipe settings most often changed, in plain columns."""
    distill = spec.get("distill")
    return {
        "epochs": spec["optim"].get("epochs"),
        "lr": spec["optim"].get("optimizer", {}).get("lr"),
        "t_squared": distill["t_squared"] if distill else None,
    }


def differences(a: dict, b: dict) -> dict:
    """{setting: (value in a, value in b)} for every setting where two recipes differ."""
    missing = object()
    out = {}
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key, missing), b.get(key, missing)
        if va != vb:
            out[key] = (None if va is missing else va, None if vb is missing else vb)
    return out
