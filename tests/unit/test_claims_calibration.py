"""The claims' error rates under planted nulls, and their power on planted effects.

Which null is a null for which claim:
- seed-specific slopes with mean zero, every population with the same mean (`SEED_NULL`): a null
  for every claim (trends, comparisons between populations, the reversal, beyond accuracy);
- accuracy falling with T while errors stay group-independent beyond the floor (`ACCURACY_NULL`):
  a null for the `_excess` claims and `fairness_changes_beyond_accuracy`, not for the raw DPD/EOD
  claims, whose floor really moves.
Rates are of held-or-reversed verdicts on the raw (unadjusted) p at alpha 0.05.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kdfair.analysis.claims import claims
from tests.fixtures.metric_tables import as_sweep, metric_table, verdict_rates

SEED_NULL = {"mean_slope": 0.0, "slope_sd": 0.02}
ACCURACY_NULL = {"accuracy_slope": -0.03, "excess_slope": 0.0}
FAST_TEMPERATURES = (1, 2, 4, 7, 10, 20)
MAX_RATE = 0.075


def _kind(claim: str) -> str:
    return claim.split(" (T=")[0]


def test_seed_specific_slopes_with_mean_zero_are_not_a_trend_fast():
    """200 sweeps at six temperatures: the default run's guard against pooled models (pooled
    over models, the trend claims said held or reversed in about a fifth of such sweeps)."""
    rates = verdict_rates(200, 1, temperatures=FAST_TEMPERATURES, **SEED_NULL)
    trend = rates.xs("fairness_improves_with_T", level="claim")
    assert (trend <= MAX_RATE).all(), trend
    # At 200 sweeps a single rate's standard error is 0.015, so of ~20 rows one may pass 0.075
    # by chance; per claim kind (the per-T comparisons pooled) the rates are steadier.
    by_kind = rates.groupby(lambda key: _kind(key[0])).mean()
    assert (by_kind <= MAX_RATE).all(), by_kind


@pytest.mark.slow
def test_every_claim_kind_is_calibrated_under_the_seed_null():
    rates = verdict_rates(400, 2, **SEED_NULL)
    assert {_kind(c) for c, _ in rates.index} >= {
        "teacher_more_accurate_than_nds",
        "ds_more_accurate_than_nds",
        "fairness_improves_with_T",
        "ds_fairer_than_nds",
        "ds_below_teacher_at_high_T",
        "reversal_above_T10",
        "ds_never_reaches_teacher",
        "fairness_changes_beyond_accuracy",
    }
    assert (rates <= MAX_RATE).all(), rates[rates > MAX_RATE]


@pytest.mark.parametrize(
    "sweeps", [pytest.param(150, id="fast"), pytest.param(400, id="400", marks=pytest.mark.slow)]
)
def test_falling_accuracy_with_group_blind_errors_moves_raw_eod_not_its_excess(sweeps):
    rates = verdict_rates(sweeps, 3, temperatures=FAST_TEMPERATURES, **ACCURACY_NULL)
    excess = rates[[m.endswith("_excess") for _, m in rates.index]]
    assert len(excess) >= 3
    # 400 sweeps: each rate; the fast run's 150 (standard error 0.018): their mean.
    assert (excess <= MAX_RATE).all() if sweeps >= 400 else excess.mean() <= MAX_RATE, excess
    # The raw EOD's floor rises as accuracy falls: its trend claim is reversed in most sweeps.
    assert rates["fairness_improves_with_T", "eod_color"] > 0.6


def test_planted_effects_are_found_in_their_direction():
    rng = np.random.default_rng(4)
    found = pd.concat(
        [
            claims(
                as_sweep(
                    metric_table(
                        rng,
                        temperatures=FAST_TEMPERATURES,
                        mean_slope=-0.03,
                        slope_sd=0.01,
                        accuracy_slope=-0.01,
                        excess_slope=0.01,
                    )
                ),
                correction="none",
            )
            for _ in range(100)
        ]
    ).set_index(["claim", "metric"])
    verdicts = found["verdict"].groupby(level=[0, 1])
    improves = verdicts.apply(lambda v: (v == "held").mean())
    worsens = verdicts.apply(lambda v: (v == "reversed").mean())
    assert improves["fairness_improves_with_T", "dpd_color"] > 0.8  # falls in every seed
    assert worsens["fairness_improves_with_T", "eod_color_excess"] > 0.7  # rises beyond floor
    assert worsens["fairness_changes_beyond_accuracy", "eod_color_excess"] > 0.5


def test_four_seeds_rising_mildly_and_one_falling_steeply_is_not_a_population_trend():
    table = metric_table(np.random.default_rng(5), temperatures=FAST_TEMPERATURES, noise_sd=0.0)
    distilled = table["role"] == "distilled"
    log_t = np.log(table["temperature"].where(distilled, 1.0))
    slope = np.where(table["seed"] == 4, -0.05, 0.002)
    table["dpd_color"] = 0.2 + slope * log_t
    result = claims(as_sweep(table), correction="none").set_index(["claim", "metric"])
    row = result.loc[("fairness_improves_with_T", "dpd_color")]
    # Pooled over models, 20 rising points and 5 falling ones; over seeds, 4 against 1.
    assert row["verdict"] == "not held" and row["n_seeds"] == 5
    assert row["estimate"] == pytest.approx((4 * 0.002 - 0.05) / 5)  # mean per-seed slope


def test_verdicts_use_the_adjusted_p_and_holm_is_the_default():
    rng = np.random.default_rng(6)
    table = metric_table(rng, temperatures=FAST_TEMPERATURES, mean_slope=-0.03, slope_sd=0.005)
    result = claims(as_sweep(table))
    decided = result[result["verdict"].isin(["held", "reversed"])]
    assert len(decided) and (decided["p_adjusted"] <= 0.05).all()
    testable = result["p_value"].notna()
    assert (result.loc[testable, "p_adjusted"] >= result.loc[testable, "p_value"]).all()
    assert result.loc[~testable, "p_adjusted"].isna().all()
    none = claims(as_sweep(table), correction="none")
    np.testing.assert_array_equal(none["p_adjusted"], none["p_value"])
    assert (none["verdict"] != "not held").sum() >= (result["verdict"] != "not held").sum()


VARIANTS = ("dkd", "smoothing")
VARIANT_CLAIMS = {"method_changes_fairness (dkd)", "ds_fairer_than_control (smoothing)"}


def test_methods_and_controls_drawn_like_the_ds_are_rarely_told_apart():
    """The seed null with a method and a control drawn exactly as the DS: their claims (paired
    t-tests over seeds of the per-seed mean over shared T) err at about alpha."""
    rates = verdict_rates(
        150, 7, temperatures=(1, 4, 10), variants=VARIANTS, seed_sd=0.02, **SEED_NULL
    )
    variant = rates[[c in VARIANT_CLAIMS for c, _ in rates.index]]
    assert {c for c, _ in variant.index} == VARIANT_CLAIMS
    assert variant.mean() <= MAX_RATE, variant  # ~12 rows at 150 sweeps: their mean


def test_a_control_less_fair_than_the_ds_and_a_method_that_differs_are_found():
    rng = np.random.default_rng(8)
    tables = [
        claims(
            as_sweep(
                metric_table(
                    rng,
                    temperatures=(1, 4, 10),
                    variants=VARIANTS,
                    variant_shift={"smoothing": 0.05, "dkd": -0.05},
                )
            ),
            correction="none",
        )
        for _ in range(60)
    ]
    found = pd.concat(tables).set_index(["claim", "metric"])["verdict"].groupby(level=[0, 1])
    held = found.apply(lambda v: (v == "held").mean())
    assert held["ds_fairer_than_control (smoothing)", "dpd_color"] > 0.8  # control less fair
    assert held["method_changes_fairness (dkd)", "dpd_color"] > 0.8  # lower: a difference
    reversed_ = found.apply(lambda v: (v == "reversed").mean())
    assert reversed_["method_changes_fairness (dkd)"].max() == 0  # two-sided: never reversed
