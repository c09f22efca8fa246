"""Recipes: one hash per study setting, the same for every seed, different for any other change."""

import copy

from kdfair.recipes import differences, eval_hash, eval_settings, recipe_hash, recipe_settings

TEACHER = {
    "dataset": {"name": "trifeature", "n_train": 5000},
    "batch_size": 64,
    "objective": "ce",
    "seed": 0,
    "arch": {"name": "resnet20", "num_classes": 10},
    "optim": {"epochs": 6, "optimizer": {"lr": 0.1}},
}


def _student(seed=0, lr=0.05):
    return {**TEACHER, "seed": seed, "arch": {"name": "lenet5"}, "optim": {"optimizer": {"lr": lr}}}


def _distilled(seed=0, temperature=4.0, teacher_key="aaaa", t_squared=False, lr=0.05):
    spec = _student(seed, lr)
    spec["objective"] = "kd"
    spec["distill"] = {
        "teacher_key": teacher_key,
        "temperature": temperature,
        "alpha": 0.8,
        "t_squared": t_squared,
    }
    return spec


def _recipe(spec, teacher=TEACHER):
    role = "distilled" if "distill" in spec else "teacher" if spec is teacher else "student"
    return recipe_hash(recipe_settings(spec, role, teacher if role == "distilled" else None))


def test_seed_temperature_and_teacher_key_are_not_part_of_the_recipe():
    teacher_1 = {**TEACHER, "seed": 1}
    assert _recipe(TEACHER, TEACHER) == recipe_hash(recipe_settings(teacher_1, "teacher"))
    a = _recipe(_distilled(seed=0, temperature=1.0, teacher_key="k0"), TEACHER)
    b = _recipe(_distilled(seed=1, temperature=10.0, teacher_key="k1"), teacher_1)
    assert a == b


def test_any_other_setting_changes_the_recipe_and_is_named_as_an_override():
    base = recipe_settings(_distilled(), "distilled", TEACHER)
    faster = recipe_settings(_distilled(lr=0.1), "distilled", TEACHER)
    assert recipe_hash(base) != recipe_hash(faster)
    assert differences(base, faster) == {"student_optim.optimizer.lr": (0.05, 0.1)}
    hinton = recipe_settings(_distilled(t_squared=True), "distilled", TEACHER)
    assert differences(base, hinton) == {"distill.t_squared": (False, True)}
    longer_teacher = copy.deepcopy(TEACHER)
    longer_teacher["optim"]["epochs"] = 60
    other = recipe_settings(_distilled(), "distilled", longer_teacher)
    assert differences(base, other) == {"teacher_optim.epochs": (6, 60)}


def test_eval_hash_ignores_settings_that_never_change_a_measurement():
    evaluation = {"batch_size": 512, "every_epoch": True, "individual": {"k": 10}}
    same = {"batch_size": 64, "every_epoch": False, "individual": {"k": 10}}
    other = {"batch_size": 512, "every_epoch": True, "individual": {"k": 5}}
    assert eval_hash(eval_settings(evaluation)) == eval_hash(eval_settings(same))
    assert eval_hash(eval_settings(evaluation)) != eval_hash(eval_settings(other))
    assert eval_settings(other) == {"eval.individual.k": 5}
