"""Proof that an extra sensor is learned from: SAC on a reacher whose pixels hide the target.

The task is FrankaVisualReacher2-v0 with ``--blank_image``: the agent's image is all zeros (the
camera still runs and the reward still comes from its frames), so nothing it sees says where the
target is. One run adds the target's position as an extra vector sensor through the public API
(``--sensor rtrl_env.reacher.sensors:target_position``); the other runs without it. Each trains
for ``--minutes`` of wall-clock time with the library's training command
(examples/franka_reacher.py, async learner, cpu preset), one after the other, and its final agent
is then evaluated with the same command (``--eval``, deterministic policy) on the
``--reference_episodes`` seeded targets that the scripted expert and the random policy were
measured on first (``--target_seed``): the same targets for every policy, so the comparison does
not depend on which targets a run happened to draw (the return of one episode depends on its
target: the expert's range from about 4.5 to 13 at 40 x 30).

Writes into ``--out DIR``: ``sensor_learning.json`` (the command; the reference returns; per run
its training and evaluation commands, observation keys, curve (episode, env step, wall time,
return), the mean return of its last 20 training episodes, the minutes until the 20-episode
mean first reached 80 % of the expert's, and its evaluation returns), ``sensor_learning.png``
(both training curves against wall time with the references), and each run's directory
(train.csv, summary.json, console.log, the final checkpoint, the evaluation's run directory).

The claim it tests (issue 13): with the sensor SAC reaches at least 80 % of the expert's return
within 20 minutes on the 2-core development machine (here: its final agent's mean evaluation
return on the reference targets); without it it stays at the random policy's level (its final
agent's mean evaluation return is below random + 20 % of the expert-random gap). Not a test: the
figures depend on the machine and its load; give the runs the machine to themselves.

    MUJOCO_GL=egl .venv/bin/python examples/benchmark_sensor_learning.py --minutes 20 \\
        --out docs/results/sensor_learning

Flags it does not know go to every training and evaluation command unchanged and after its own
(e.g. ``--init_step 500``).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shlex
import subprocess
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from examples.evaluate_expert import run_episodes  # noqa: E402
from sac.checkpoint import latest_checkpoint  # noqa: E402
from sac.config import get_preset  # noqa: E402

ENV_ID = "FrankaVisualReacher2-v0"
SENSOR = "rtrl_env.reacher.sensors:target_position"
RUNS = ("with_sensor", "without_sensor")
LAST = 20
"""Episodes in the final mean and the moving average."""
LEARNED_FRACTION = 0.8
"""The with-sensor run must reach this fraction of the expert's mean return."""
RANDOM_LEVEL_GAP = 0.2
"""The without-sensor run counts as at the random level below random + this x (expert - random)."""
FINAL = f"final_return_mean_last_{LAST}"
REACHED = f"minutes_to_{round(100 * LEARNED_FRACTION)}_percent_of_expert"


def reference_returns(episodes: int, episode_length: float, seed: int, width: int, height: int) -> dict:
    """The scripted expert's and the random policy's returns on the blanked task (seeded targets),
    with the runs' camera image size (the reward is computed from it)."""
    import gymnasium

    import rtrl_env  # noqa: F401  (registers the ids)
    from communicators.target.target_motion import TargetConfig

    env = gymnasium.make(ENV_ID, target=TargetConfig(seed=seed), episode_length_s=episode_length, blank_image=True,
                         image_width=width, image_height=height)
    try:
        return {policy: run_episodes(env, policy, episodes, seed) for policy in ("expert", "random")}
    finally:
        env.close()


def _task_command(name: str, work_dir: str, args: argparse.Namespace) -> list[str]:
    """The training script on the blanked task, as the references measured it (the sensor for "with_sensor")."""
    command = [sys.executable, os.path.join(REPO, "examples", "franka_reacher.py"), "--env", ENV_ID,
               "--blank_image", "--episode_length", f"{args.episode_length:g}", "--seed", str(args.seed),
               "--work_dir", work_dir, "--image_width", str(args.image_width), "--image_height", str(args.image_height)]
    return command + (["--sensor", SENSOR] if name == "with_sensor" else [])


def training_command(name: str, work_dir: str, args: argparse.Namespace, passthrough: list[str]) -> list[str]:
    """The training command of one run (the same for both but the sensor)."""
    # A checkpoint at the end only: saving mid-run would pause acting.
    command = _task_command(name, work_dir, args) + ["--time_limit", f"{args.minutes * 60:g}",
                                                     "--save_model_freq", str(10**9)]
    return command + ([] if args.serial else ["--async_mode"]) + passthrough


def evaluation_command(name: str, run_dir: str, work_dir: str, args: argparse.Namespace,
                       passthrough: list[str]) -> list[str]:
    """The command that evaluates a run's final agent on the references' seeded targets."""
    checkpoint = latest_checkpoint(os.path.join(run_dir, "model"))
    if checkpoint is None:
        raise RuntimeError(f"the {name} run wrote no checkpoint in {run_dir}/model")
    return _task_command(name, work_dir, args) + ["--eval", "--load_model", checkpoint, "--eval_episodes",
                                                  str(args.reference_episodes), "--target_seed",
                                                  str(args.seed)] + passthrough


def run_command(name: str, command: list[str], work_dir: str) -> str:
    """Runs one training or evaluation command, echoing and logging its output; returns its run directory.

    Raises:
        RuntimeError: the run failed; the message has its exit code and the end of its output.
    """
    os.makedirs(work_dir, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")])),
           "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"), "PYTHONUNBUFFERED": "1"}
    print(f"[{name}] {shlex.join(command)}", flush=True)
    tail: list[str] = []
    with open(os.path.join(work_dir, "console.log"), "w") as log:
        proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
        try:
            for line in proc.stdout:
                log.write(line)
                print(f"[{name}] {line}", end="", flush=True)
                tail = (tail + [line])[-20:]
        finally:
            returncode = proc.wait()
    if returncode != 0:
        raise RuntimeError(f"the {name} run failed (exit {returncode}):\n{''.join(tail)}")
    (run_name,) = os.listdir(os.path.join(work_dir, "results"))
    return os.path.join(work_dir, "results", run_name)


def evaluation_figures(eval_dir: str, expert: float, random_mean: float) -> dict:
    """The evaluation's per-episode returns (its eval.csv) and their mean against the references."""
    with open(os.path.join(eval_dir, "eval.csv")) as f:
        returns = [float(r["episode/return"]) for r in csv.DictReader(f)]
    mean = float(np.mean(returns))
    return {"eval_dir": eval_dir, "returns": returns, "return_mean": mean, **_scores(mean, expert, random_mean)}


def _scores(mean: float | None, expert: float, random_mean: float) -> dict:
    """A mean return as a fraction of the expert's and on the random (0) to expert (1) scale."""
    if mean is None:
        return {"fraction_of_expert": None, "normalised_score": None}
    return {"fraction_of_expert": mean / expert, "normalised_score": (mean - random_mean) / (expert - random_mean)}


def run_figures(run_dir: str, expert: float, random_mean: float) -> dict:
    """A finished run's curve and figures, from its train.csv and summary.json (None: no episode ended)."""
    rows = []
    if os.path.exists(os.path.join(run_dir, "train.csv")):  # written at the first episode's end
        with open(os.path.join(run_dir, "train.csv")) as f:
            rows = list(csv.DictReader(f))
    curve = {"episode": [int(float(r["episode/number"])) for r in rows],
             "env_step": [int(float(r["episode/step"])) for r in rows],
             "wall_time_s": [float(r["episode/wall_time_s"]) for r in rows],
             "return": [float(r["episode/return"]) for r in rows]}
    with open(os.path.join(run_dir, "summary.json")) as f:
        summary = json.load(f)
    returns = np.array(curve["return"])
    final = float(returns[-LAST:].mean()) if returns.size else None
    reached = None
    if returns.size >= LAST:
        means = np.convolve(returns, np.ones(LAST) / LAST, mode="valid")
        above = np.nonzero(means >= LEARNED_FRACTION * expert)[0]
        if above.size:
            reached = curve["wall_time_s"][above[0] + LAST - 1] / 60.0
    return {"run_dir": run_dir, "observation_keys": summary["observation_keys"], "episodes": summary["episodes"],
            "env_steps": summary["env_steps"], "num_updates": summary["num_updates"],
            "updates_per_s": summary["updates_per_s"], "period_p99_ms": summary["period_p99_ms"],
            FINAL: final, **_scores(final, expert, random_mean), REACHED: reached, "curve": curve}


def plot(path: str, runs: dict, expert: float, random_mean: float, minutes: float) -> None:
    from sac.plots import plot_learning_curves

    curves = {name.replace("_", " "): ([t / 60.0 for t in run["curve"]["wall_time_s"]], run["curve"]["return"])
              for name, run in runs.items()}
    references = {f"scripted expert ({expert:.2f})": expert,
                  f"{round(100 * LEARNED_FRACTION)} % of the expert": LEARNED_FRACTION * expert,
                  f"random policy ({random_mean:.2f})": random_mean}
    plot_learning_curves(path, curves, f"{ENV_ID}, blanked image, {minutes:g} min each: target sensor or not",
                         "wall-clock minutes", references, window=LAST)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=20.0, help="wall-clock minutes of training per run")
    parser.add_argument("--out", default="docs/results/sensor_learning", help="output directory")
    parser.add_argument("--reference_episodes", type=int, default=20,
                        help="episodes of the scripted expert and of the random policy")
    parser.add_argument("--episode_length", type=float, default=4.0, help="episode length, s (runs and references)")
    parser.add_argument("--seed", type=int, default=9, help="training seed; reference targets are seeded with it")
    parser.add_argument("--serial", action="store_true", help="update serially instead of with the async learner")
    cpu = get_preset("cpu")
    parser.add_argument("--image_width", type=int, default=cpu.image_width,
                        help="camera image width of the runs and the references, pixels (default: the cpu preset's)")
    parser.add_argument("--image_height", type=int, default=cpu.image_height,
                        help="camera image height of the runs and the references, pixels (default: the cpu preset's)")
    args, passthrough = parser.parse_known_args()
    if not args.minutes > 0 or args.reference_episodes < 1:
        parser.error(f"--minutes {args.minutes:g} must be > 0 and --reference_episodes "
                     f"{args.reference_episodes} >= 1")
    args.out = os.path.abspath(args.out)
    for name in RUNS:
        if os.path.exists(os.path.join(args.out, name)):
            parser.error(f"--out {args.out} already holds a {name} run; give another --out or delete it")
    os.makedirs(args.out, exist_ok=True)
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    print(f"reference: {args.reference_episodes} episodes each of the scripted expert and the random policy",
          flush=True)
    reference = reference_returns(args.reference_episodes, args.episode_length, args.seed, args.image_width,
                                  args.image_height)
    expert, random_mean = reference["expert"]["return_mean"], reference["random"]["return_mean"]
    runs = {}
    try:
        for name in RUNS:
            work_dir = os.path.join(args.out, name)
            command = training_command(name, work_dir, args, passthrough)
            runs[name] = run_figures(run_command(name, command, work_dir), expert, random_mean)
            runs[name]["command"] = shlex.join(command)
            work_dir = os.path.join(args.out, name, "evaluation")
            command = evaluation_command(name, runs[name]["run_dir"], work_dir, args, passthrough)
            eval_dir = run_command(f"{name} evaluation", command, work_dir)
            runs[name]["evaluation"] = {"command": shlex.join(command),
                                        **evaluation_figures(eval_dir, expert, random_mean)}
    except RuntimeError as err:
        print(err, file=sys.stderr, flush=True)
        return 1

    with_sensor, without = runs["with_sensor"], runs["without_sensor"]
    result = {
        "command": shlex.join([sys.executable, *sys.argv]), "date_utc": started, "env": ENV_ID,
        "minutes_per_run": args.minutes, "episode_length_s": args.episode_length, "sensor": SENSOR,
        "image_width": args.image_width, "image_height": args.image_height,
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor(), "python": platform.python_version()},
        "reference": reference, "expert_return_mean": expert, "random_return_mean": random_mean,
        "runs": runs,
        "criteria": {
            "with_sensor_reaches_80_percent_of_expert": (with_sensor["evaluation"]["return_mean"]
                                                         >= LEARNED_FRACTION * expert),
            "without_sensor_at_random_level": (without["evaluation"]["return_mean"]
                                               < random_mean + RANDOM_LEVEL_GAP * (expert - random_mean)),
            "definitions": f"a run's score = the mean return of its final agent (deterministic policy) on the "
                           f"references' {args.reference_episodes} seeded targets; learned: score >= "
                           f"{LEARNED_FRACTION} x expert mean; random level: score < random mean + "
                           f"{RANDOM_LEVEL_GAP} x (expert mean - random mean)",
        },
    }
    with open(os.path.join(args.out, "sensor_learning.json"), "w") as f:
        json.dump(result, f, indent=2)
    plot(os.path.join(args.out, "sensor_learning.png"), runs, expert, random_mean, args.minutes)

    print(f"\n{'policy / run':16s} {'evaluation':>10s} {'of expert':>10s} {'last 20 training':>17s} "
          f"{'episodes':>9s} {'updates':>8s}")
    print(f"{'scripted expert':16s} {expert:10.3f} {'100 %':>10s}")
    print(f"{'random policy':16s} {random_mean:10.3f} {100 * random_mean / expert:8.0f} %")
    for name, run in runs.items():
        evaluation = run["evaluation"]
        last = "-" if run[FINAL] is None else f"{run[FINAL]:.3f}"
        print(f"{name:16s} {evaluation['return_mean']:10.3f} {100 * evaluation['fraction_of_expert']:8.0f} % "
              f"{last:>17s} {run['episodes']:9d} {run['num_updates']:8d}")
    print(f"criteria: {json.dumps({k: v for k, v in result['criteria'].items() if k != 'definitions'})}")
    print(f"wrote {os.path.join(args.out, 'sensor_learning.json')} and sensor_learning.png")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # the training run got the Ctrl-C too, and saved what it had
        print("stopped by Ctrl-C", file=sys.stderr)
        sys.exit(130)
