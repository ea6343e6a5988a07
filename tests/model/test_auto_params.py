"""Size-adaptive training parameters (`training.train.auto_params`) and the calibration rule
they switch on (no isotonic calibration on a small validation part)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from training.train import (
    FULL_SIZE_ROWS,
    ISOTONIC_MIN_ROWS,
    SMALL_NUM_LEAVES,
    ModelParams,
    auto_params,
    choose_calibrator,
)


@pytest.mark.parametrize("n_train", [FULL_SIZE_ROWS, 21_000, 1_000_000])
def test_no_change_at_the_contract_paths_sizes(n_train: int) -> None:
    params = ModelParams()
    assert auto_params(n_train, params) is params


def test_a_small_table_gets_small_trees_and_no_isotonic() -> None:
    sized = auto_params(1_050, ModelParams())
    assert sized.num_leaves == SMALL_NUM_LEAVES
    assert sized.isotonic_min_rows == ISOTONIC_MIN_ROWS
    assert sized.min_data_in_leaf == 100  # 1,050 / 10 is above the default: kept
    # nothing else moves
    same = replace(sized, num_leaves=7, isotonic_min_rows=0)
    assert same == ModelParams()


def test_a_mid_size_table_keeps_the_trees() -> None:
    sized = auto_params(4_900, ModelParams())
    assert (sized.num_leaves, sized.min_data_in_leaf) == (7, 100)
    assert sized.isotonic_min_rows == ISOTONIC_MIN_ROWS


@pytest.mark.parametrize(("n_train", "leaf"), [(50, 20), (175, 20), (400, 40), (999, 99)])
def test_a_tiny_table_can_still_split(n_train: int, leaf: int) -> None:
    sized = auto_params(n_train, ModelParams())
    assert sized.min_data_in_leaf == leaf


def test_values_set_in_the_config_win_and_twice_is_once() -> None:
    mine = ModelParams(num_leaves=15, min_data_in_leaf=5, isotonic_min_rows=1)
    assert auto_params(300, mine) == mine
    once = auto_params(800, ModelParams(learning_rate=0.05))
    assert once.learning_rate == 0.05 and once.num_leaves == SMALL_NUM_LEAVES
    assert auto_params(800, once) == once


def _noisy_validation(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    raw = rng.uniform(0.05, 0.95, n)
    return raw, (rng.random(n) < raw).astype(float)


def test_auto_calibration_skips_isotonic_below_the_row_floor() -> None:
    raw, y = _noisy_validation(300)
    calibrator, cv = choose_calibrator(raw, y, "auto", seed=1, isotonic_min_rows=2_000)
    assert set(cv) == {"platt", "none"}
    assert calibrator.method in {"platt", "none"}
    # the default (0) keeps every candidate, as on the contract path
    _, cv = choose_calibrator(raw, y, "auto", seed=1)
    assert set(cv) == {"isotonic", "platt", "none"}
    # enough rows: isotonic is a candidate again
    raw, y = _noisy_validation(2_000)
    _, cv = choose_calibrator(raw, y, "auto", seed=1, isotonic_min_rows=2_000)
    assert set(cv) == {"isotonic", "platt", "none"}


def test_an_explicit_isotonic_choice_is_kept() -> None:
    raw, y = _noisy_validation(300)
    calibrator, cv = choose_calibrator(raw, y, "isotonic", seed=1, isotonic_min_rows=2_000)
    assert calibrator.method == "isotonic" and cv == {}
