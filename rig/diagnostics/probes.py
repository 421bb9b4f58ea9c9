"""How much of the true state a latent space holds, and in what shape: linear and nearest-neighbour probes,
the rank correlation of latent with true-state distances, and the count of active units."""

from __future__ import annotations

import numpy as np
from scipy import stats


def linear_probe_r2(
    train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray, ridge: float = 1e-3
) -> float:
    """R^2 on the test set of a ridge-regularised linear map with bias, fitted on the train set.

    R^2 = 1 - SS_res / SS_tot with both sums taken over all target dims together (so x and y of a
    position count as one target), SS_tot around the test targets' own mean. 1 is perfect, 0 is no
    better than predicting the mean, and it is negative for worse. The bias is not penalised.
    """
    weights, bias = fit_ridge(np.asarray(train_x, np.float64), np.asarray(train_y, np.float64), ridge)
    predicted = np.asarray(test_x, np.float64) @ weights + bias
    return r_squared(np.asarray(test_y, np.float64), predicted)


def knn_probe_r2(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    k: int = 5,
    chunk: int = 512,
) -> float:
    """R^2 on the test set of predicting each target as the mean of its k nearest training latents' targets.

    Set beside the linear probe, it tells missing information (both low) from information that is
    there but folded non-linearly (this one high, the linear one low). Same R^2 convention as
    ``linear_probe_r2``.
    """
    train_x, test_x = np.asarray(train_x, np.float64), np.asarray(test_x, np.float64)
    train_y = np.asarray(train_y, np.float64)
    if len(train_x) != len(train_y) or len(train_x) < k:
        raise ValueError(f"a k={k} probe needs >= {k} paired samples, got {len(train_x)} and {len(train_y)}")
    predicted = []
    for start in range(0, len(test_x), chunk):
        block = test_x[start : start + chunk]
        squared = (block**2).sum(1)[:, None] - 2.0 * block @ train_x.T + (train_x**2).sum(1)[None]
        nearest = np.argpartition(squared, k - 1, axis=1)[:, :k]
        predicted.append(train_y[nearest].mean(axis=1))
    return r_squared(np.asarray(test_y, np.float64), np.concatenate(predicted))


def fit_ridge(x: np.ndarray, y: np.ndarray, ridge: float) -> tuple[np.ndarray, np.ndarray]:
    """Least squares on centred data, so the bias is exactly the mean residual and goes unpenalised."""
    if len(x) != len(y) or len(x) < 2:
        raise ValueError(f"a probe needs >= 2 paired samples, got {len(x)} inputs and {len(y)} targets")
    x_mean, y_mean = x.mean(axis=0), y.mean(axis=0)
    centred_x = x - x_mean
    gram = centred_x.T @ centred_x + ridge * np.eye(x.shape[1])
    weights = np.linalg.solve(gram, centred_x.T @ (y - y_mean))
    return weights, y_mean - x_mean @ weights


def r_squared(target: np.ndarray, predicted: np.ndarray) -> float:
    """1 - SS_res / SS_tot, summed over all target dims."""
    total = float(np.square(target - target.mean(axis=0)).sum())
    if total == 0.0:
        raise ValueError("R^2 is undefined for constant targets")
    return 1.0 - float(np.square(target - predicted).sum()) / total


def distance_rank_correlation(
    latents: np.ndarray,
    states: np.ndarray,
    n_pairs: int = 5000,
    rng: np.random.Generator | None = None,
    groups: np.ndarray | None = None,
) -> float:
    """Spearman correlation between latent and true-state Euclidean distances over random frame pairs.

    The latent reward is -||e(s) - z_g||, so it ranks states correctly only when this is high. With
    ``groups`` (e.g. each frame's episode) both frames of a pair come from one group: in RL, a state is
    only ever compared with goals of its own episode, hence of its own object.
    """
    if len(latents) != len(states) or len(latents) < 2:
        raise ValueError(f"need >= 2 paired frames, got {len(latents)} latents and {len(states)} states")
    rng = rng if rng is not None else np.random.default_rng(0)
    first, second = _frame_pairs(len(latents), n_pairs, rng, groups)
    latent_distance = np.linalg.norm(latents[first] - latents[second], axis=1)
    state_distance = np.linalg.norm(states[first] - states[second], axis=1)
    return float(stats.spearmanr(latent_distance, state_distance)[0])


def _frame_pairs(
    count: int, n_pairs: int, rng: np.random.Generator, groups: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Random pairs of distinct frames, within one group each when ``groups`` is given."""
    if groups is None:
        first = rng.integers(count, size=n_pairs)
        return first, (first + rng.integers(1, count, size=n_pairs)) % count  # never the same frame
    if len(groups) != count:
        raise ValueError(f"groups has {len(groups)} entries for {count} frames")
    order = np.argsort(groups, kind="stable")
    starts = np.searchsorted(groups[order], groups[order], side="left")
    sizes = np.searchsorted(groups[order], groups[order], side="right") - starts
    eligible = np.flatnonzero(sizes > 1)
    if len(eligible) == 0:
        raise ValueError("no group holds two frames to pair")
    pick = eligible[rng.integers(len(eligible), size=n_pairs)]
    offset = (pick - starts[pick] + rng.integers(1, sizes[pick])) % sizes[pick]
    return order[pick], order[starts[pick] + offset]


def active_units(latent_means: np.ndarray, threshold: float = 0.01) -> int:
    """Latent dims whose posterior mean varies across the data: Var_x(E_q[z_d | x]) > threshold.

    Burda et al. (2016, "Importance Weighted Autoencoders"); an inactive dim ignores its input and only
    copies the prior, so it carries no information about the frame. ``latent_means`` is (N, z_dim).
    """
    return int((np.var(latent_means, axis=0) > threshold).sum())
