"""Add new sensors to the Franka visual reacher without editing library code, and train with them.

Two sensors join the wrist camera here, each with its own key in the observation:

1. `scene_image`: a second camera, the sim's fixed "scene" camera, a sensor the library ships
   (`rtrl_env.reacher.sensors:scene_camera`, here at 80x60). Observation: uint8 (3, H, W),
   channel-first.
2. `wrist_range`: a sensor written in this file, `WristRangeSensor`, a simulated time-of-flight
   range finder on the wrist. It is a Communicator subclass with its own process: it reads the
   arm's state buffer, measures the distance (m) along the camera axis to the monitor surface,
   adds noise as a real sensor would, and publishes float64 (1,) at 100 Hz. Observation: float32
   (3,) = the mean, min and max of its last 5 readings (a window the env hands to `observe`).
   `wrist_range()` is its factory, so `--sensor new_sensor_example:wrist_range` plugs it into
   any training run.

A real force/torque sensor or a second USB camera is added the same way: a Communicator that
fills a sensor buffer, and an `ExtraSensor` saying how its window becomes an observation
(README.md, "Plugging in a new sensor", walks through one).

Run:  MUJOCO_GL=egl .venv/bin/python examples/new_sensor_example.py --steps 50
      (steps the env with random actions and prints what the sensors observed)
Train: MUJOCO_GL=egl .venv/bin/python examples/new_sensor_example.py --train --time_limit 60 --work_dir DIR
      (SAC learns from all four keys: `--train` adds both sensors as `--sensor` entries and hands
      every other flag to the training command of examples/franka_reacher.py; see its --help)
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np
from gymnasium import spaces

from communicators.communicator import Communicator
from communicators.franka.state import EE_POS, EE_QUAT, STATE_DIM
from communicators.shared_buffer import SharedBuffer
from rtrl_env.reacher.devices import ExtraSensor
from rtrl_env.reacher.env import FrankaVisualReacher
from rtrl_env.reacher.ground_truth import WristCameraGeometry
from rtrl_env.reacher.sensors import scene_camera

SURFACE_Z = 0.0  # the monitor's top surface in the sim scene, m


class WristRangeSensor(Communicator):
    """Simulated range finder on the wrist: distance (m) along the camera axis to the surface.

    sensor_buffer slot: float64 (1,), metres (inf when the axis points away from the surface);
    timestamp = the arm state's timestamp the reading was computed from.

    Args:
        robot_state_buffer: the arm communicator's sensor buffer (communicators/franka/state.py).
        rate_hz: readings per second.
        noise_std: standard deviation of the Gaussian range noise, m.
    """

    def __init__(self, robot_state_buffer: SharedBuffer, rate_hz: float = 100.0,
                 noise_std: float = 0.002) -> None:
        if tuple(robot_state_buffer.shape) != (STATE_DIM,):
            raise ValueError(f"WristRangeSensor needs the arm's state buffer ({STATE_DIM},), "
                             f"got shape {robot_state_buffer.shape}")
        self.robot_state_buffer = robot_state_buffer
        self.noise_std = float(noise_std)
        # The camera geometry is plain numbers: read it here, pickled into the child.
        self.geometry = WristCameraGeometry.from_sim_scene()
        super().__init__(sensor_args={"shape": (1,), "dtype": np.float64, "buffer_len": 8},
                         actuator_args=None, use_sensor=True, use_actuator=False,
                         sensor_rate_hz=rate_hz, actuator_rate_hz=None, actuator_timeout=None)

    def open_device(self) -> None:
        self._rng = np.random.default_rng()  # seeded in the child, not copied from the parent

    def close_device(self) -> None:
        pass

    def read_sensor(self) -> None:
        if self.robot_state_buffer.num_writes == 0:
            return  # the arm has not published yet
        state, stamp, _ = self.robot_state_buffer.latest()
        origin, direction = self.geometry.axis(state[EE_POS], state[EE_QUAT])
        distance = np.inf
        if direction[2] < -1e-6:  # pointing down at the surface
            distance = (SURFACE_Z - origin[2]) / direction[2] + self._rng.normal(0, self.noise_std)
        self.sensor_buffer.write(np.array([distance]), timestamp=stamp)


def range_summary(data: np.ndarray, timestamps: np.ndarray) -> np.ndarray:
    """Observation of the range sensor: float32 (3,) = mean, min, max of the window (m)."""
    readings = np.clip(data[:, 0], 0.0, 5.0)
    return np.array([readings.mean(), readings.min(), readings.max()], dtype=np.float32)


def wrist_range() -> ExtraSensor:
    """The wrist range finder as an extra sensor, key ``wrist_range`` (a ``--sensor`` factory)."""
    return ExtraSensor(
        make=lambda built: WristRangeSensor(built["robot"].sensor_buffer),
        space=spaces.Box(0.0, 5.0, (3,), np.float32),
        # A module-level function: the polling loop's process (forkserver) receives it pickled.
        observe=range_summary,
        window_len=5,
        name="wrist_range",
    )


# What --train plugs in. This file's directory is on sys.path whenever a script in examples/ runs
# (this one, or examples/franka_reacher.py --resume), so "new_sensor_example" imports there.
SENSORS = ("rtrl_env.reacher.sensors:scene_camera:80x60", "new_sensor_example:wrist_range")


def make_env(**env_kwargs) -> FrankaVisualReacher:
    """The 2-joint reacher with the scene camera and the wrist range finder added."""
    extra = {sensor.name: sensor for sensor in (scene_camera("80x60"), wrist_range())}
    return FrankaVisualReacher(joints=(0, 3), extra_sensors=extra, **env_kwargs)


def train(flags: list[str]) -> int:
    """Trains SAC with both sensors: the library's training command with ``--sensor`` for each.

    Args:
        flags: any flags of examples/franka_reacher.py (``--time_limit``, ``--work_dir``, ...).

    Returns:
        The training command's exit code.
    """
    from sac.training import main as train_main  # torch loads only for a run

    return train_main([arg for spec in SENSORS for arg in ("--sensor", spec)] + flags)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--train" in argv:  # everything else is the training command's
        return train([arg for arg in argv if arg != "--train"])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50, help="env steps to run with random actions")
    parser.add_argument("--seed", type=int, default=0, help="reset seed")
    parser.add_argument("--train", action="store_true",
                        help="train SAC with the sensors instead; every other flag goes to the training command "
                             "(python examples/franka_reacher.py --help lists them)")
    args = parser.parse_args(argv)
    env = make_env()
    try:
        obs, _ = env.reset(seed=args.seed)
        ranges = []
        for _ in range(args.steps):
            obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
            assert obs in env.observation_space
            ranges.append(float(obs["wrist_range"][0]))
            if terminated or truncated:
                obs, _ = env.reset()
        summary = {
            "observation_keys": sorted(obs),
            "scene_image_shape": list(obs["scene_image"].shape),
            "scene_image_mean": float(obs["scene_image"].mean()),
            "wrist_range_m": {"first": ranges[0], "last": ranges[-1],
                              "min": min(ranges), "max": max(ranges)},
        }
        print(json.dumps(summary, indent=2))
    finally:
        env.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
