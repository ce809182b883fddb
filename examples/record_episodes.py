"""See what the wrist camera sees: a contact sheet (PNG) and an animation (GIF) of two episodes.

Runs one episode of the scripted expert and one of a random policy on the simulated reacher,
keeps the newest wrist-camera frame of every step (the last 3 channels of the stacked `image`
observation, transposed back to height x width x RGB), and writes:

- <out>/<name>_contact_sheet.png: every `--every`-th frame, the expert's row above the random
  policy's, each tile labelled with its time, reward and ground-truth camera-axis distance;
- <out>/<name>.gif: both episodes side by side at camera resolution, every second env step
  (played in real time).

Run:  MUJOCO_GL=egl .venv/bin/python examples/record_episodes.py --out docs/img
"""
from __future__ import annotations

import argparse
import json
import os

import cv2
import imageio.v2 as imageio
import numpy as np

SCALE = 2  # contact-sheet tiles are drawn at twice the camera resolution: legible labels
GIF_EVERY = 2


def newest_frame(obs: dict) -> np.ndarray:
    """The newest camera frame of the stacked observation: uint8 (H, W, 3)."""
    return obs["image"][-3:].transpose(1, 2, 0)  # (3, H, W) -> (H, W, 3)


def record(env, policy: str, seed: int) -> list[dict]:
    """One episode; per step the frame, reward, camera-axis distance and time (s)."""
    from rtrl_env.reacher.expert import ScriptedExpert

    config = env.unwrapped.config
    expert = ScriptedExpert(joints=config.joints, max_joint_velocity=config.max_joint_velocity)
    env.action_space.seed(seed)
    obs, info = env.reset(seed=seed)
    steps = [{"frame": newest_frame(obs), "reward": 0.0, "t": 0.0,
              "distance": info["camera_axis_distance"]}]
    done = False
    while not done:
        action = expert(obs, info) if policy == "expert" else env.action_space.sample()
        obs, reward, terminated, truncated, info = env.step(action)
        steps.append({"frame": newest_frame(obs), "reward": float(reward),
                      "t": len(steps) * config.dt, "distance": info["camera_axis_distance"]})
        done = terminated or truncated
    return steps


def tile(step: dict, label: str, scale: int = SCALE) -> np.ndarray:
    """A frame scaled up, labelled with the time and the camera-axis distance to the target."""
    img = cv2.resize(step["frame"], None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    text = f"{label} t={step['t']:.2f}s d={100 * step['distance']:.1f}cm"
    cv2.putText(img, text, (3, 7 * scale), cv2.FONT_HERSHEY_SIMPLEX, 0.2 * scale,
                (255, 255, 255), 1, cv2.LINE_AA)
    # Crosshair at the image centre: where the reward wants the target.
    h, w = img.shape[:2]
    cv2.drawMarker(img, (w // 2, h // 2), (0, 255, 0), cv2.MARKER_CROSS, 12, 1)
    return img


def contact_sheet(rows: dict[str, list[dict]], every: int) -> np.ndarray:
    """Grid: one row per policy, every `every`-th step as columns, 2 px gaps."""
    lines = []
    for name, steps in rows.items():
        tiles = [tile(s, name) for s in steps[::every]]
        lines.append(np.concatenate([np.pad(t, ((2, 2), (2, 2), (0, 0))) for t in tiles], axis=1))
    width = max(line.shape[1] for line in lines)
    lines = [np.pad(line, ((0, 0), (0, width - line.shape[1]), (0, 0))) for line in lines]
    return np.concatenate(lines, axis=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="FrankaVisualReacher2-v0", help="registered env id")
    parser.add_argument("--seed", type=int, default=4,
                        help="reset seed, same for both policies; with the target seeded 0 as in "
                             "evaluate_expert.py, episode n of that script uses seed n")
    parser.add_argument("--every", type=int, default=20, help="contact sheet: every n-th step")
    parser.add_argument("--episode-length", type=float, default=4.0,
                        help="episode length in seconds")
    parser.add_argument("--out", default="docs/img", help="output folder")
    args = parser.parse_args()

    import gymnasium

    import rtrl_env  # noqa: F401  (registers the ids)
    from communicators.target.target_motion import TargetConfig

    env = gymnasium.make(args.env, target=TargetConfig(seed=0),
                         episode_length_s=args.episode_length)
    try:
        rows = {"expert": record(env, "expert", args.seed),
                "random": record(env, "random", args.seed)}
        dt = env.unwrapped.config.dt
    finally:
        env.close()

    os.makedirs(args.out, exist_ok=True)
    name = args.env.replace("-", "_")
    sheet_path = os.path.join(args.out, f"{name}_contact_sheet.png")
    cv2.imwrite(sheet_path, cv2.cvtColor(contact_sheet(rows, args.every), cv2.COLOR_RGB2BGR))
    gif_path = os.path.join(args.out, f"{name}.gif")
    n = min(len(r) for r in rows.values())
    # Camera resolution and every second step keep the GIF small enough for a README.
    frames = [np.concatenate([tile(rows["expert"][i], "expert", scale=1),
                              tile(rows["random"][i], "random", scale=1)], axis=1)
              for i in range(0, n, GIF_EVERY)]
    imageio.mimsave(gif_path, frames, duration=GIF_EVERY * dt, loop=0)
    summary = {name: {"return": sum(s["reward"] for s in steps), "steps": len(steps) - 1,
                      "final_axis_distance_m": steps[-1]["distance"]}
               for name, steps in rows.items()}
    summary.update(contact_sheet=sheet_path, gif=gif_path)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
