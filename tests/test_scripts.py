"""The results scripts tabulate what the run directories hold."""

from __future__ import annotations

import importlib.util
import json
import sys
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch

from rig.data import FrameDataset
from rig.rundir import RunDir

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


def load_script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the script runs
    spec.loader.exec_module(module)
    return module


def write_metrics(directory: Path, **heldout: float) -> None:
    (directory / "pretrain").mkdir(parents=True)
    (directory / "pretrain" / "metrics.json").write_text(json.dumps({"heldout_colours": heldout}))


def test_representation_table_gives_mean_std_and_counts_seeds_meeting_the_targets(tmp_path: Path) -> None:
    table = load_script("representation_table")
    keys = [key for key, _ in table.COLUMNS]
    good = dict.fromkeys(keys, 0.95)
    write_metrics(table.run_dir(tmp_path, "ccrig", 0), **good)
    write_metrics(table.run_dir(tmp_path, "ccrig", 1), **{**good, "probe_r2_hand": 0.85})
    lines = table.table(["ccrig", "missing"], [0, 1, 2], tmp_path)
    ccrig_row = next(line for line in lines if line.startswith("| ccrig |"))
    cells = [cell.strip() for cell in ccrig_row.strip("|").split("|")]
    assert cells[1] == "2"  # seed 2 has no metrics yet
    assert cells[2] == "0.900 ± 0.071"  # hand probe: mean and sample std of 0.95 and 0.85
    assert cells[-1] == "1 / 2"  # seed 1 misses the 0.9 hand target
    assert any(line.startswith("| missing | 0 |") for line in lines)
    assert len(table.per_seed(["ccrig"], [0, 1, 2], tmp_path)) == 2
    # On the multi-object env the position probes need 0.8, so 0.85 meets them.
    write_metrics(table.run_dir(tmp_path, "ccrig_multiobject", 0), **{**good, "probe_r2_hand": 0.85})
    write_metrics(table.run_dir(tmp_path, "ccrig_multiobject", 1), **{**good, "probe_r2_hand": 0.75})
    multi_row = table.table(["ccrig_multiobject"], [0, 1], tmp_path)[-1]
    assert multi_row.strip("|").split("|")[-1].strip() == "1 / 2"


def test_representation_table_ranks_each_measure_against_the_agents_final_distance(tmp_path: Path) -> None:
    table = load_script("representation_table")
    keys = [key for key, _ in table.COLUMNS]
    # Five runs over two configs: the interaction rises with the agent's distance, the hand probe falls
    # with it, and the object probe is the same everywhere (no rank correlation can be computed).
    for index, (config, seed) in enumerate(
        [("ccrig", 0), ("ccrig", 1), ("ccrig", 2), ("rig_multicolor", 0), ("rig_multicolor", 1)]
    ):
        directory = table.run_dir(tmp_path, config, seed)
        write_metrics(
            directory,
            **{
                **dict.fromkeys(keys, 0.9),
                "part_interaction": 1.0 + 0.1 * index,
                "probe_r2_hand": 0.95 - 0.01 * index,
            },
        )
        (directory / "eval.json").write_text(json.dumps({"puck_distance_mean": 0.05 + 0.01 * index}))
    # A seed that was only pretrained has no agent and is left out.
    write_metrics(table.run_dir(tmp_path, "ccrig", 3), **dict.fromkeys(keys, 0.5))
    lines = table.predictors(["ccrig", "rig_multicolor"], [0, 1, 2, 3], tmp_path)
    assert lines[0].endswith("over 5 runs:")
    by_title = {line.split(":")[0].strip(): line for line in lines[1:]}
    assert "Spearman +1.00" in by_title["reward part interaction"]
    assert "Spearman -1.00" in by_title["probe R² hand (z)"]
    assert "probe R² object (z)" not in by_title
    assert table.predictors(["ccrig"], [0, 1, 2], tmp_path) == []  # fewer than 4 runs
    assert "agent final puck distance 0.0500 m" in table.per_seed(["ccrig"], [0], tmp_path)[0]


def fake_run(directory: Path, seed: int, puck: dict[int, float], overrides: tuple[str, ...] = ()) -> Path:
    """A run directory with a config and a learning curve of the given final puck distances per step."""
    from rig.config import load_config, to_yaml
    from rig.evaluate import EvalPoint, write_eval_curve
    from rig.rundir import RunDir

    run = RunDir(directory)
    run.root.mkdir(parents=True)
    run.config.write_text(to_yaml(load_config(None, [f"seed={seed}", *overrides])))
    (run.root / "agent").mkdir()
    pusher = {"puck_distance_std": 0.0, "hand_distance": 0.03, "hand_distance_std": 0.0}
    curve = [EvalPoint(step, {"puck_distance": value, **pusher}, 0.5, 20) for step, value in puck.items()]
    write_eval_curve(run.root / "agent" / "eval_curve.csv", curve)
    return run.root


def test_compare_seeds_reads_the_curve_at_the_step_and_tests_the_difference(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    compare = load_script("compare_seeds")
    new = [fake_run(tmp_path / f"new{s}", s, {50000: 0.040 + 0.002 * s, 75000: 0.030}) for s in range(3)]
    old = [fake_run(tmp_path / f"old{s}", s, {50000: 0.050 + 0.004 * s}) for s in range(3)]
    compare.main(
        ["--first", *map(str, new), "--second", *map(str, old), "--step", "50000", "--names", "new,old"]
    )
    out = capsys.readouterr().out
    assert "new: 0.0420 ± 0.0020" in out  # 0.040, 0.042, 0.044
    assert "old: 0.0540 ± 0.0040" in out
    assert "difference -0.0120" in out
    assert "new mean <= old mean + one standard error (0.0563): holds" in out


def test_compare_seeds_takes_recorded_values_for_the_second_method(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    compare = load_script("compare_seeds")
    new = [fake_run(tmp_path / f"new{s}", s, {50000: 0.040 + 0.002 * s}) for s in range(3)]
    values = ["0.050", "0.054", "0.058"]
    compare.main(
        ["--first", *map(str, new), "--second-values", *values, "--step", "50000", "--names", "new,old"]
    )
    out = capsys.readouterr().out
    assert "old: recorded values, not read from runs; their goals were not checked" in out
    assert "old: 0.0540 ± 0.0040" in out
    assert "value 2: 0.0580" in out
    assert "difference -0.0120" in out
    assert "new mean <= old mean + one standard error (0.0563): holds" in out
    with pytest.raises(SystemExit):  # one of --second and --second-values, not both
        compare.main(
            ["--first", *map(str, new), "--second", str(new[0]), "--second-values", "0.05", "--step", "1"]
        )


def test_compare_seeds_refuses_runs_on_other_goals_or_without_the_step(tmp_path: Path) -> None:
    compare = load_script("compare_seeds")
    a = [fake_run(tmp_path / f"a{s}", s, {50000: 0.04 + 0.01 * s}) for s in range(2)]
    b = [fake_run(tmp_path / f"b{s}", s, {50000: 0.05 + 0.01 * s}, ("eval.seed=7",)) for s in range(2)]
    with pytest.raises(SystemExit, match="different goals"):
        compare.main(["--first", *map(str, a), "--second", *map(str, b), "--step", "50000"])
    with pytest.raises(SystemExit, match="no evaluation at step 75000"):
        compare.main(["--first", *map(str, a), "--second", *map(str, a), "--step", "75000"])


def test_compare_seeds_compares_any_goal_metric_the_runs_record(tmp_path: Path) -> None:
    compare = load_script("compare_seeds")
    a = [fake_run(tmp_path / f"a{s}", s, {50000: 0.04 + 0.01 * s}) for s in range(2)]
    with pytest.raises(SystemExit, match="records no 'angle_difference'"):
        compare.main(["--first", *map(str, a), "--second", *map(str, a), "--step", "50000",
                      "--metric", "angle_difference"])  # fmt: skip


RESULTS = Path(__file__).resolve().parent.parent / "docs" / "results"


def test_env_results_tabulates_the_door_records_against_random_and_the_oracle() -> None:
    results = load_script("env_results")
    text = results.table(RESULTS, ["rig_door", "oracle_door"])
    rig = [
        json.loads((path / "eval.json").read_text()) for path in sorted((RESULTS / "rig_door").glob("seed*"))
    ]
    angles = [record["angle_difference_mean"] for record in rig]
    random = json.loads((RESULTS / "rig_door" / "seed0" / "baselines" / "random.json").read_text())
    ratio = np.mean(angles) / random["angle_difference_mean"]
    assert "final angle difference (rad)" in text and "final hand distance (m)" in text
    rig_row = next(line for line in text.splitlines() if "`rig_door`" in line)
    assert " / ".join(f"{angle:.3f}" for angle in angles) in rig_row
    assert f"| {np.mean(angles):.3f} ± {np.std(angles, ddof=1):.3f} |" in rig_row
    assert f"| {ratio:.2f}x, 95% CI [" in rig_row
    assert f"| random policy |  | (same goals) | – | {random['angle_difference_mean']:.3f} |" in text
    success = results.table(RESULTS, ["rig_door", "oracle_door"], "success_rate")
    assert "vs random (95% CI)" in success.splitlines()[0].split("success")[1]


def test_env_results_says_when_two_methods_end_alike_on_every_seed() -> None:
    results = load_script("env_results")

    class Constant(results.Method):  # type: ignore[misc, name-defined]
        label = "constant"

        def finals(self, key: str) -> list[float]:
            return [0.25, 0.25, 0.25]

    line = results.against(Constant("a", []), Constant("b", []), "puck_distance", "m")
    assert "each ends at one value on every seed (0.25 and 0.25), nothing to test" in line


def test_env_results_labels_stacked_frames_and_held_actions(tmp_path: Path) -> None:
    import shutil

    import yaml

    results = load_script("env_results")
    assert results.read_method(RESULTS, "rig_pointmaze").label == "RIG (beta-VAE)"
    assert results.read_method(RESULTS, "rig_pointmaze_fs2").label == "RIG (beta-VAE), 2 frames"
    held = tmp_path / "held" / "seed0"
    shutil.copytree(RESULTS / "rig_pointmaze_fs2" / "seed0", held)
    config = yaml.safe_load((held / "config.yaml").read_text())
    config["env"]["kwargs"] = {"frame_skip": 4}
    (held / "config.yaml").write_text(yaml.safe_dump(config))
    assert results.read_method(tmp_path, "held").label == "RIG (beta-VAE), frame skip 4, 2 frames"


def test_env_results_refuses_other_goals_and_unknown_metrics() -> None:
    results = load_script("env_results")
    with pytest.raises(SystemExit, match="different goals"):
        results.table(RESULTS, ["rig_door", "rig"])
    with pytest.raises(SystemExit, match="unknown metric 'puck_distance'"):
        results.table(RESULTS, ["rig_door"], "puck_distance")


@pytest.fixture(scope="module")
def multicolour_debug_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from rig.config import load_config
    from rig.pipeline import run_pipeline

    run_dir = tmp_path_factory.mktemp("runs") / "ccrig"
    overrides = ["env.id=rig/PushMultiColor-v0", "env.eval_palette=heldout", "vae.kind=cc_vae"]
    cfg = load_config("debug", [f"run_dir={run_dir}", "device=cpu", "torch_threads=1", *overrides])
    run_pipeline(cfg, progress=False, report=False)
    return run_dir


def test_diagnose_agent_loads_a_pretrained_only_run_with_the_fitted_goal_prior(
    multicolour_debug_run: Path, tmp_path: Path
) -> None:
    import shutil

    from rig.checkpoints import load_run

    diagnose = load_script("diagnose_agent")
    pretrained = tmp_path / "pretrained"
    shutil.copytree(multicolour_debug_run, pretrained, ignore=shutil.ignore_patterns("agent"))
    cfg, rep, policy = diagnose.load(RunDir(pretrained))
    assert policy is None and cfg.vae.kind == "cc_vae"
    # The agent trained with the goal prior fitted to the same frames, so the two must agree.
    assert rep.goal_prior == load_run(multicolour_debug_run / "agent").representation.goal_prior
    # A budget's weights: the debug pretraining's only budget is its best.pt.
    _, budget, _ = diagnose.load(RunDir(pretrained), epochs=2)
    pairs = zip(budget.state_dict().values(), rep.state_dict().values(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)
    with pytest.raises(SystemExit, match=r"best_epochs5.pt is missing \(budgets kept: 2\)"):
        diagnose.load(RunDir(pretrained), epochs=5)
    with pytest.raises(SystemExit, match="has an agent"):
        diagnose.load(RunDir(multicolour_debug_run), epochs=2)


def test_diagnose_agent_reads_goals_and_reaching_on_the_runs_goals(multicolour_debug_run: Path) -> None:
    diagnose = load_script("diagnose_agent")
    from rig.checkpoints import load_run
    from rig.envs import make_env

    trained = load_run(multicolour_debug_run / "agent")
    cfg, rep = trained.config, trained.representation
    readings = diagnose.goal_readings(cfg, rep, FrameDataset.load(RunDir(multicolour_debug_run).frames), 4, 7)
    assert {key: value.shape for key, value in readings.items()} == {
        **dict.fromkeys(("imagined", "real", "true"), (4, 4)),
        "start": (4, 2),
    }
    env = make_env(cfg.env, palette="train", render=False)
    env.reset(seed=8)
    np.testing.assert_allclose(readings["true"][1], env.unwrapped.goal)  # the second goal is seed 7 + 1's
    np.testing.assert_allclose(readings["start"][1], env.unwrapped.state[2:])
    env.close()
    rows = diagnose.reaching(cfg, trained.model, rep, "heldout", 3, 10_000)
    assert [row.policy for row in rows] == ["agent", "agent + training noise", "random"]
    assert {row.palette for row in rows} == {"heldout"}
    random_row = rows[2]
    assert 0 <= random_row.touched <= 1 and random_row.object_moved >= 0
    assert random_row.puck_distance > 0 and random_row.hand_distance > 0
    # The episodes split by how far their goals put the object, and the split means make the whole mean.
    counts = [count for count, _ in random_row.by_distance]
    assert sum(counts) == 3
    split_mean = sum(count * final for count, final in random_row.by_distance if count) / 3
    assert split_mean == pytest.approx(random_row.puck_distance)


def test_diagnose_agent_adds_the_training_noise_to_the_agents_action_within_bounds() -> None:
    from gymnasium import spaces

    diagnose = load_script("diagnose_agent")

    class Fixed:
        def predict(self, observation, state=None, episode_start=None, deterministic=False):
            assert deterministic, "the noise is added to the deterministic action, as TD3 collects"
            return np.array([0.95, -0.2], np.float32), None

    space = spaces.Box(-1.0, 1.0, (2,), np.float32)
    quiet = diagnose.NoisyPolicy(Fixed(), space, 0.0, seed=0)
    np.testing.assert_allclose(quiet.predict({})[0], [0.95, -0.2], rtol=1e-6)
    noisy = diagnose.NoisyPolicy(Fixed(), space, 0.2, seed=0)
    actions = np.array([noisy.predict({})[0] for _ in range(2000)])
    assert actions.max() <= 1.0 and actions.min() >= -1.0 and actions.dtype == np.float32
    assert actions[:, 1].std() == pytest.approx(0.2, rel=0.1)
    assert actions[:, 1].mean() == pytest.approx(-0.2, abs=0.02)
    assert np.mean(actions[:, 0] == 1.0) == pytest.approx(0.4, abs=0.05), "P(0.95 + N(0, 0.2) > 1)"


def test_diagnose_agent_splits_episodes_by_the_distance_their_goals_need() -> None:
    diagnose = load_script("diagnose_agent")
    final, needed = np.array([0.01, 0.02, 0.05, 0.07]), np.array([0.0, 0.039, 0.08, 0.2])
    assert diagnose.by_distance(final, needed) == (
        (2, pytest.approx(0.015)),
        (0, pytest.approx(np.nan, nan_ok=True)),
        (2, pytest.approx(0.06)),
    )
    share = diagnose.goal_summary(np.array([[0, 0, 0.1, 0], [0, 0, 0.02, 0.01]]), np.zeros((2, 2)))
    assert share.split(" | ")[2] == "0.50", "one goal of two puts the object 8 cm or more from its start"
    assert share.split(" | ")[0] == "0.50", "the second goal puts the puck on the hand"
    scenes = np.array(
        [
            [0.0, 0.0, 0.1, 0.0],  # possible
            [0.0, 0.0, 0.03, 0.0],  # hand and puck overlap
            [0.0, 0.0, 0.2, 0.0],  # the puck through the wall
            [-0.22, 0.0, 0.1, 0.0],  # the hand through the wall
        ]
    )
    assert diagnose.possible_scenes(scenes).tolist() == [True, False, False, False]


def test_exploration_takes_each_episodes_largest_displacement_from_its_start() -> None:
    exploration = load_script("exploration")
    achieved = np.array([[[0.0, 0.0], [3.0, 4.0], [1.0, 0.0]], [[1.0, 1.0], [1.0, 1.0], [1.0, 2.0]]])
    np.testing.assert_allclose(exploration.largest_displacements(achieved), [5.0, 1.0])


def test_exploration_measures_the_agent_random_actions_and_the_oracles_replay(tmp_path: Path) -> None:
    from rig.config import load_config
    from rig.pipeline import run_pipeline

    exploration = load_script("exploration")
    run_dir = tmp_path / "oracle"
    cfg = load_config("debug", [f"run_dir={run_dir}", "device=cpu", "torch_threads=1", "vae.kind=state"])
    run_pipeline(cfg, progress=False, report=False)
    rows = exploration.measure(run_dir, episodes=3, seed=5, moved=0.0)
    assert [(row.source, row.episodes) for row in rows] == [("agent", 3), ("random", 3), ("replay", 6)]
    # Push-v0's achieved goal holds the hand, which every policy moves; nothing moves 10 m.
    assert all(row.moved_share == 1.0 and row.mean_displacement > 0 for row in rows)
    assert all(row.moved_share == 0.0 for row in exploration.measure(run_dir, 3, 5, moved=10.0))


def test_critic_returns_discounts_each_steps_future_rewards() -> None:
    critic = load_script("critic_returns")
    returns = critic.discounted_returns(np.array([-1.0, -2.0, -4.0]), 0.5)
    np.testing.assert_allclose(returns, [-3.0, -4.0, -4.0])


def test_critic_returns_compares_q_with_the_returns_of_longer_episodes(tmp_path: Path) -> None:
    from rig.config import load_config
    from rig.latent_env import GoalMode
    from rig.pipeline import run_pipeline

    critic = load_script("critic_returns")
    run_dir = tmp_path / "rig"
    cfg = load_config("debug", [f"run_dir={run_dir}", "device=cpu", "torch_threads=1"])
    run_pipeline(cfg, progress=False, report=False)
    row = critic.check(run_dir, GoalMode.EVAL, episodes=2, horizon=30, seed=3)
    assert (row.goals, row.episodes, row.steps) == ("eval", 2, 10)  # the debug config's 10-step episodes
    # Every step's reward is minus a latent distance, so the returns are negative and the bias is Q - G.
    assert row.returns < 0 and row.final_reward < 0
    assert row.bias == pytest.approx(row.q - row.returns) and row.abs_error >= abs(row.bias) - 1e-9
    with pytest.raises(ValueError, match="shorter than the run's episodes"):
        critic.check(run_dir, GoalMode.TRAIN, episodes=1, horizon=5, seed=3)


def test_reward_fidelity_scores_how_the_latent_distance_ranks_success() -> None:
    fidelity = load_script("reward_fidelity")
    success = np.array([True, True, False, False])
    assert fidelity.success_auc(np.array([0.1, 0.2, 0.3, 0.4]), success) == 1.0
    assert fidelity.success_auc(np.array([0.4, 0.3, 0.2, 0.1]), success) == 0.0
    assert fidelity.success_auc(np.array([0.1, 0.4, 0.2, 0.3]), success) == 0.5
    assert np.isnan(fidelity.success_auc(np.array([0.1, 0.2]), np.array([False, False])))


def test_reward_fidelity_runs_the_agent_on_its_goals_and_refuses_the_oracle(
    multicolour_debug_run: Path, tmp_path: Path
) -> None:
    from rig.config import load_config
    from rig.pipeline import run_pipeline

    fidelity = load_script("reward_fidelity")
    row = fidelity.measure(multicolour_debug_run, episodes=3, seed=10_000)
    assert (row.metric, row.episodes, row.near_steps) == ("puck_distance", 3, 8)  # a quarter of 30 steps
    assert -1.0 <= row.spearman <= 1.0 and 0.0 <= row.ended <= row.reached <= 1.0
    oracle = tmp_path / "oracle"
    run_pipeline(load_config("debug", [f"run_dir={oracle}", "vae.kind=state"]), progress=False, report=False)
    with pytest.raises(ValueError, match="sees the true state"):
        fidelity.measure(oracle, episodes=1, seed=0)


def test_motion_probe_pairs_each_frame_with_the_one_gap_steps_before() -> None:
    motion = load_script("motion_probe")
    latents = np.arange(10.0).reshape(5, 2)
    achieved = np.array([[0.0], [1.0], [3.0], [6.0], [10.0]])
    inputs, targets = motion.displacement_pairs(latents, achieved, 2)
    np.testing.assert_array_equal(inputs[0], [4.0, 5.0, 0.0, 1.0])  # z_2 then z_0
    np.testing.assert_array_equal(targets[:, 0], [3.0, 5.0, 7.0])
    with pytest.raises(ValueError, match="shorter than the episode"):
        motion.displacement_pairs(latents, achieved, 5)


def test_motion_probe_reads_a_displacement_the_latents_carry_and_not_one_they_lack() -> None:
    motion = load_script("motion_probe")
    rng = np.random.default_rng(0)
    positions = [np.cumsum(rng.normal(size=(60, 2)), axis=0) for _ in range(8)]
    seen = motion.Readings(latents=positions, achieved=positions)  # the latent is the position itself
    blind = motion.Readings(latents=[rng.normal(size=(60, 2)) for _ in positions], achieved=positions)
    position, step = motion.measure(seen, [1])
    assert (position.target, step.target, step.gap) == ("position", "displacement", 1)
    assert step.linear_r2 == pytest.approx(1.0) and position.linear_r2 == pytest.approx(1.0)
    assert step.mean_size == pytest.approx(np.sqrt(np.pi / 2), rel=0.15)  # |N(0, I_2)| has mean sqrt(pi/2)
    assert all(row.linear_r2 < 0.2 and row.knn_r2 < 0.2 for row in motion.measure(blind, [1, 4]))


def test_motion_probe_runs_the_agent_and_refuses_the_oracle(
    multicolour_debug_run: Path, tmp_path: Path
) -> None:
    from rig.config import load_config
    from rig.pipeline import run_pipeline

    motion = load_script("motion_probe")
    readings = motion.read_episodes(multicolour_debug_run, episodes=4, seed=10_000)
    assert [z.shape for z in readings.latents] == [(10, 10)] * 4  # debug: 10 steps; the CC-VAE's z 6 + c 4
    assert [a.shape for a in readings.achieved] == [(10, 4)] * 4  # hand and puck xy
    assert len(motion.measure(readings, [1, 3])) == 3
    oracle = tmp_path / "oracle"
    run_pipeline(load_config("debug", [f"run_dir={oracle}", "vae.kind=state"]), progress=False, report=False)
    with pytest.raises(ValueError, match="sees the true state"):
        motion.read_episodes(oracle, episodes=4, seed=0)


def test_archive_runs_keeps_what_the_report_reads_and_drops_frames_and_checkpoints(
    multicolour_debug_run: Path, tmp_path: Path
) -> None:
    from rig.report import missing_products, read_run

    archive = load_script("archive_runs")
    unfinished = multicolour_debug_run.parent / "unfinished"
    (unfinished / "config.yaml").parent.mkdir()
    (unfinished / "config.yaml").write_text((multicolour_debug_run / "config.yaml").read_text())
    archived = archive.archive(
        [multicolour_debug_run, unfinished], tmp_path / "kept", multicolour_debug_run.parent
    )
    assert archived == [tmp_path / "kept" / "ccrig"]  # the run without eval.json is not archived
    kept = sorted(
        path.relative_to(archived[0]).as_posix() for path in archived[0].rglob("*") if path.is_file()
    )
    assert "eval.json" in kept and "agent/eval_curve.csv" in kept and "baselines/random.json" in kept
    assert not any(name.startswith(("data/", "agent/checkpoints/")) or name.endswith(".pt") for name in kept)
    original, copy = read_run(multicolour_debug_run), read_run(archived[0])
    assert copy.final == original.final and copy.random_baseline == original.random_baseline
    assert copy.curve == original.curve and copy.checkpoint_steps == original.checkpoint_steps
    assert not copy.problems
    # the copy says it is an archive, so the report does not list the images it left out as missing
    marker = json.loads((archived[0] / "archive.json").read_text())
    assert "eval.json" in marker["kept"] and marker["source"] == str(multicolour_debug_run)
    assert copy.archived and not original.archived
    assert any("GIF" in item for item in missing_products(replace(copy, archived=False)))
    assert missing_products(copy) == missing_products(original) == []
    with pytest.raises(SystemExit, match="does not lie under"):
        archive.archive([multicolour_debug_run], tmp_path / "kept", tmp_path)


@pytest.mark.parametrize("section", ["env", "data", "vae", "agent"])
def test_reproduce_results_commands_resolve_to_the_archived_records_configs(section: str) -> None:
    """Each method's config and overrides in reproduce_results.py give the settings its records in
    docs/results were made with, so that changing a default cannot silently change what they reproduce."""
    from rig.config import flat_settings, load_config

    def settings(config: Any) -> dict[str, Any]:
        # flat_settings leaves out settings added later at their neutral values (env.module, ...), so
        # records written before and after such a setting existed read alike.
        return {key: value for key, value in flat_settings(config).items() if key.startswith(section)}

    reproduce = load_script("reproduce_results")
    archive = SCRIPTS.parent / "docs" / "results"
    checked = 0
    for name, (config, overrides) in reproduce.METHODS.items():
        for record in sorted((archive / name).glob("seed*/config.yaml")):
            stored = load_config(str(record))
            resolved = load_config(config, [*overrides, f"seed={stored.seed}"])
            assert settings(resolved) == settings(stored), f"{name}/{record.parent.name}"
            checked += 1
    assert checked >= 40


def test_pretrain_trend_reads_each_budget_of_an_extended_pretraining(tmp_path: Path) -> None:
    from rig.cli import main

    trend = load_script("pretrain_trend")
    multicolour = ["env.id=rig/PushMultiColor-v0", "env.eval_palette=heldout", "vae.kind=cc_vae"]
    common = ["device=cpu", "torch_threads=1", *multicolour]
    runs = [tmp_path / "seed0", tmp_path / "seed1"]
    for seed, run in enumerate(runs):
        args = ["debug", f"run_dir={run}", f"seed={seed}", *common]
        assert main(["collect", *args]) == 0
        assert main(["pretrain", *args, "vae.epochs=1"]) == 0
        assert main(["pretrain", *args, "vae.epochs=2"]) == 0
    points = trend.read_points(runs)
    assert sorted((p.seed, p.epochs) for p in points) == [(0, 1), (0, 2), (1, 1), (1, 2)]
    assert all(0.0 < p.metrics["part_interaction"] < 10.0 for p in points)
    one_epoch = [p for p in points if p.epochs == 1]
    assert one_epoch[0].images == one_epoch[0].train_frames == 160  # debug: 200 frames, a fifth held out
    rows = trend.table(points)[2:]
    assert len(rows) == 2 and "| 1 | 0.00 | 0, 1 |" in rows[0] and "| 2 |" in rows[1]
    trend.plot(points, tmp_path / "trend.png")
    assert (tmp_path / "trend.png").read_bytes().startswith(b"\x89PNG")
    # A pretraining run is archived with each budget's metrics, and reads back alike.
    archived = load_script("archive_runs").archive(runs, tmp_path / "kept", tmp_path)
    assert archived == [tmp_path / "kept" / "seed0", tmp_path / "kept" / "seed1"]
    kept = sorted(path.name for path in (archived[0] / "pretrain").iterdir())
    assert kept == ["metrics.json", "metrics_epochs1.json", "metrics_epochs2.json", "progress.csv"]
    assert trend.read_points(archived) == points

    other = tmp_path / "z3"
    assert main(["collect", "debug", f"run_dir={other}", *common, "vae.z_dim=3"]) == 0
    assert main(["pretrain", "debug", f"run_dir={other}", *common, "vae.z_dim=3"]) == 0
    with pytest.raises(SystemExit, match="differ in vae.z_dim"):
        trend.read_points([*runs, other])


def test_bench_vae_trains_a_cc_vae_on_frames_with_their_contexts() -> None:
    from rig.config import load_config

    bench = load_script("bench_vae")
    vae = load_config("ccrig").vae
    rate = bench.images_per_second(bench.Variant(vae), images=2 * vae.batch_size, device=torch.device("cpu"))
    assert rate > 0
    doubled = bench.Variant(replace(vae, batch_size=2 * vae.batch_size), channels_last=True)
    assert bench.images_per_second(doubled, images=2 * vae.batch_size, device=torch.device("cpu")) > 0
    times = bench.sub_network_times(vae, batch_size=4, repeats=1, device=torch.device("cpu"))
    assert sorted(times) == ["context_decoder", "context_encoder", "decoder", "encoder", "whole loss"]


def test_pretrain_trend_prints_a_docs_table_from_globbed_archived_runs() -> None:
    trend = load_script("pretrain_trend")
    root = Path(__file__).resolve().parent.parent
    text = trend.docs_table(["docs/results/ccrig/seed*"], root)
    rows = text.splitlines()[2:]
    assert len(rows) == 1 and "| 60 | 0.54 | 0, 1, 2, 3, 4 |" in rows[0]
    with pytest.raises(SystemExit, match="no run directory matches"):
        trend.docs_table(["docs/results/nothing*"], root)


def test_rediagnose_recomputes_a_budgets_metrics_as_pretraining_wrote_them(tmp_path: Path) -> None:
    from rig.cli import main

    rediagnose = load_script("rediagnose")
    run = tmp_path / "run"
    args = ["debug", f"run_dir={run}", "device=cpu", "torch_threads=1", "env.id=rig/PushMultiColor-v0"]
    args += ["env.eval_palette=heldout", "vae.kind=cc_vae"]
    assert main(["collect", *args]) == 0
    assert main(["pretrain", *args]) == 0
    path = run / "pretrain" / "metrics_epochs2.json"
    written = json.loads(path.read_text())
    grids = sorted(p.name for p in (run / "pretrain").glob("*.png"))
    stripped = {key: value for key, value in written.items() if key != "heldout_colours"}
    path.write_text(json.dumps(stripped))  # a record from before a measure existed
    assert rediagnose.rediagnose(run, epochs=2) == path
    assert json.loads(path.read_text()) == written
    assert sorted(p.name for p in (run / "pretrain").glob("*.png")) == grids
    with pytest.raises(SystemExit, match="best_epochs3.pt is missing"):
        rediagnose.rediagnose(run, epochs=3)


def test_reward_resolution_pays_the_true_state_one_and_an_underpaid_part_less() -> None:
    resolution = load_script("reward_resolution")
    radii = (0.01, 0.02)
    true_start = np.array([[0.2], [0.1]])
    latent_start = 3.0 * true_start  # 3 latent units per metre over the whole task
    distances = {"start": latent_start, "true_start": true_start}
    for r in radii:
        distances[f"hand_{r:g}"] = np.full((2, 4), 3.0 * r)
        distances[f"object_{r:g}"] = np.full((2, 4), 1.5 * r)  # the object's error paid at half the rate
    distances["object_0.02"][0, 0] = np.nan
    rows = {row["part"]: row for row in resolution.resolution_rows(distances, radii)}
    assert rows["hand"]["pay 1 cm"] == pytest.approx(1.0) and rows["hand"]["pay 2 cm"] == pytest.approx(1.0)
    assert rows["object"]["pay 2 cm"] == pytest.approx(0.5)
    assert rows["object"]["ranked 2 > 1 cm"] == 1.0


def test_curve_course_finds_the_best_point_and_weighs_the_final_loss_by_its_standard_error() -> None:
    curve_course = load_script("curve_course")
    seeds = [{0: 0.09, 5: 0.04, 10: 0.05}, {0: 0.08, 5: 0.03, 10: 0.07, 15: 0.01}]
    result = curve_course.course(seeds, start=0, higher_is_better=False)
    assert result.steps == [0, 5, 10], "only the steps every seed was evaluated at"
    assert result.best == 1 and result.means[1] == pytest.approx(0.035)
    assert result.loss == pytest.approx(0.06 - 0.035)
    # sample std of (0.05, 0.07) is 0.01 * sqrt(2); over sqrt(2) seeds that is a standard error of 0.01
    assert result.errors[-1] == pytest.approx(0.01)
    assert result.loss_in_errors == pytest.approx(2.5)
    success = curve_course.course([{0: 0.2, 5: 0.9, 10: 0.8}], start=5, higher_is_better=True)
    assert (success.steps, success.best, success.loss) == ([5, 10], 0, pytest.approx(0.1))
    assert success.loss_in_errors == float("inf"), "one seed has no spread to weigh a loss by"
    with pytest.raises(ValueError, match="no evaluation step at or after 20"):
        curve_course.course(seeds, start=20, higher_is_better=False)


def test_curve_course_reads_archived_runs_by_glob_and_refuses_a_method_without_runs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    curve_course = load_script("curve_course")
    root = SCRIPTS.parent
    table = curve_course.docs_table(
        ["--method", "oracle", "docs/results/oracle_100k/seed*", "--from", "90000"], root
    )
    assert "| 95,000 | " in table and "oracle (3 seeds)" in table and "| 85,000 |" not in table
    with pytest.raises(SystemExit) as exit_info:
        curve_course.main(["--method", "none", "docs/results/no_such_method/seed*"])
    assert exit_info.value.code == 2
    assert "none: no run directory matches" in capsys.readouterr().err
