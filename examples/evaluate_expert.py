"""Reference returns of the Franka visual reacher: the scripted expert against a random policy.

Runs N episodes of each policy on the simulated reacher (both registered variants by default),
prints a table and writes JSON. The expert's mean return is the reference that learning is
measured against; the random policy's is the floor.

Per policy it reports the return (sum of reward = r_image * dt, in "seconds of target centred";
at most 4 * episode_length_s), the final ground-truth distance between the camera axis and the
target (m), the fraction of steps with that distance under 2 cm, and the cycle timing.

Run:  MUJOCO_GL=egl .venv/bin/python examples/evaluate_expert.py --episodes 20 \\
          --out docs/results/evaluate_expert.json
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

ON_TARGET_M = 0.02


def run_episodes(env, policy: str, episodes: int, seed: int) -> dict:
    """Run `episodes` episodes of "expert" or "random"; return summary statistics."""
    from rtrl_env.reacher.expert import ScriptedExpert

    unwrapped = env.unwrapped
    expert = ScriptedExpert(joints=unwrapped.config.joints,
                            max_joint_velocity=unwrapped.config.max_joint_velocity)
    env.action_space.seed(seed)
    returns, final_dist, on_target, periods = [], [], [], []
    for episode in range(episodes):
        obs, info = env.reset(seed=seed + episode)
        total, near, steps, done = 0.0, 0, 0, False
        while not done:
            action = expert(obs, info) if policy == "expert" else env.action_space.sample()
            obs, reward, terminated, truncated, info = env.step(action)
            total += reward
            steps += 1
            near += info["camera_axis_distance"] < ON_TARGET_M
            period = info.get("timing", {}).get("period")
            if period is not None and np.isfinite(period):  # NaN: first step after a reset
                periods.append(period)
            done = terminated or truncated
        returns.append(total)
        final_dist.append(info["camera_axis_distance"])
        on_target.append(near / steps)
        print(f"  {policy:6s} episode {episode + 1:2d}: return {total:6.3f}  "
              f"final axis distance {100 * final_dist[-1]:5.1f} cm", flush=True)
    out = {
        "episodes": episodes,
        "return_mean": float(np.mean(returns)),
        "return_std": float(np.std(returns)),
        "return_min": float(np.min(returns)),
        "return_max": float(np.max(returns)),
        "final_axis_distance_mean_m": float(np.mean(final_dist)),
        "fraction_of_steps_on_target": float(np.mean(on_target)),
        "returns": [float(r) for r in returns],
    }
    if periods:
        p = 1e3 * np.array(periods)
        out["period_ms"] = {"mean": float(p.mean()), "p99": float(np.percentile(p, 99)),
                            "max": float(p.max())}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", nargs="+",
                        default=["FrankaVisualReacher2-v0", "FrankaVisualReacher-v0"],
                        help="registered env ids to evaluate")
    parser.add_argument("--episodes", type=int, default=20, help="episodes per policy")
    parser.add_argument("--seed", type=int, default=0, help="first reset seed")
    parser.add_argument("--episode-length", type=float, default=4.0,
                        help="episode length in seconds")
    parser.add_argument("--out", default="docs/results/evaluate_expert.json",
                        help="JSON output path")
    args = parser.parse_args()

    import gymnasium

    import rtrl_env  # noqa: F401  (registers the ids)
    from communicators.target.target_motion import TargetConfig

    results = {"date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "envs": {}}
    for env_id in args.env:
        # A seeded target makes episode n's target the same for both policies.
        env = gymnasium.make(env_id, target=TargetConfig(seed=args.seed),
                             episode_length_s=args.episode_length)
        try:
            config = env.unwrapped.config
            print(f"{env_id}: dt {config.dt} s, {config.episode_steps} steps per episode, "
                  f"max joint velocity {config.max_joint_velocity} rad/s", flush=True)
            results["envs"][env_id] = {
                "dt": config.dt, "episode_length_s": config.episode_length_s,
                "max_joint_velocity": config.max_joint_velocity,
                "expert": run_episodes(env, "expert", args.episodes, args.seed),
                "random": run_episodes(env, "random", args.episodes, args.seed),
            }
        finally:
            env.close()
    print(f"\n{'env':26s} {'policy':7s} {'return mean +- std':>20s} {'on target':>10s}")
    for env_id, res in results["envs"].items():
        for policy in ("expert", "random"):
            r = res[policy]
            print(f"{env_id:26s} {policy:7s} {r['return_mean']:9.3f} +- {r['return_std']:6.3f}"
                  f" {100 * r['fraction_of_steps_on_target']:9.1f}%")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
