"""The Franka visual reacher: move the wrist camera until the red target sits in the image centre."""
from __future__ import annotations

from typing import Any

import numpy as np

from communicators.communicator import Communicator, close_all
from rtrl_env.base_env import RTRLBaseEnv
from rtrl_env.reacher.config import FrankaVisualReacherConfig
from rtrl_env.reacher.devices import SIM_BACKENDS, default_camera, default_target, make_robot
from rtrl_env.reacher.ground_truth import WristCameraGeometry
from rtrl_env.reacher.task import ReacherTask


class FrankaVisualReacher(RTRLBaseEnv):
    """## Description

    A Franka arm carries a camera on its wrist (eye-in-hand) above a monitor lying under the arm.
    A red target sits on the monitor. The agent moves the joints so that the target appears in
    the centre of the camera image, as in the seed project's visual reacher (after SenseAct's
    UR-Reacher). It learns from pixels: the observation holds the last k camera frames and the
    arm's joint state, and the reward is computed from the image alone, so the same task runs on
    a real arm with a real camera. Everything runs in real time: the arm, the camera and the target
    are separate processes (communicators) with their own clocks, and each `step` lasts `dt`.

    Two registered ids: `FrankaVisualReacher-v0` moves all 7 joints; `FrankaVisualReacher2-v0`
    moves A1 (base yaw) and A4 (elbow) only, the others holding still (the seed's
    "Franka-Reacher-2"; easier to learn on a CPU).

    ## Action Space

    `Box(-1, 1, (n,), float32)`; n = 7, or 2 for FrankaVisualReacher2-v0. Action i is the
    velocity of joint `joints[i]` as a fraction of `max_joint_velocity` (0.3 rad/s by default):

    | Num | Action (7-joint / 2-joint)             | Control min | Control max | Unit          |
    |-----|----------------------------------------|-------------|-------------|---------------|
    | 0   | A1 base yaw velocity / A1              | -1          | 1           | x max rad/s   |
    | 1   | A2 shoulder velocity / A4 elbow        | -1          | 1           | x max rad/s   |
    | 2   | A3 upper-arm rotation velocity         | -1          | 1           | x max rad/s   |
    | 3   | A4 elbow velocity                      | -1          | 1           | x max rad/s   |
    | 4   | A5 forearm rotation velocity           | -1          | 1           | x max rad/s   |
    | 5   | A6 wrist pitch velocity                | -1          | 1           | x max rad/s   |
    | 6   | A7 flange rotation velocity            | -1          | 1           | x max rad/s   |

    Actions are real numbers only: a float or integer array (a torch tensor without grad converts)
    or a list of Python numbers. An action of the wrong shape, with NaN or inf, outside [-1, 1], or
    of another kind (bool, str, bytes, complex or object arrays, a tensor that requires grad)
    raises ValueError naming its dtype and what to pass, and nothing is sent to the arm. The robot communicator's safety filter then enforces the joint
    limits, velocity limits and the workspace box (pushing the arm back inside), and stops the arm
    when commands go stale (100 ms).

    ## Observation Space

    `Dict` with:

    | Key              | Shape          | Dtype   | Content                                           |
    |------------------|----------------|---------|---------------------------------------------------|
    | `image`          | (3k, H, W)     | uint8   | last k wrist-camera frames, oldest first, RGB,    |
    |                  |                |         | channel-first (k=3, H=120, W=160 by default)      |
    | `proprioception` | (14 + n,)      | float32 | q (7, rad, in [-pi, pi]), dq (7, rad/s, in        |
    |                  |                |         | [-10, 10]), previous action (n, in [-1, 1])       |
    | extra sensors    | their space    |         | one key per `extra_sensors` entry                 |

    With `blank_image=True` the `image` key is all zeros (the reward still comes from the camera's
    frames): the pixels no longer say where the target is, so an extra sensor must (e.g.
    `rtrl_env.reacher.sensors.target_position`).

    Frames are stacked at the env-step rate: each step adds the newest camera frame.

    ## Rewards

    `reward = r_image * dt`, where r_image in [0, 4] is the seed's image reward
    (rtrl_env/reacher/image_reward.py): pixels in a red colour range, weighted by closeness to the image
    centre, summed, scaled and clipped. Scaling by dt (s) makes returns comparable across cycle
    times: the return is in "seconds of target centred". Per step: [0, 4 * dt]; per default
    episode: [0, 16]. `info["reward_image"]` holds r_image.

    ## Starting State

    `reset` first waits (up to the longest freshness budget) for every stream to be fresh, then
    moves the arm smoothly (joint-velocity P-control, at most 0.8 rad/s) to the home pose (camera
    0.42 m above the monitor centre, looking down) plus uniform jitter of +-`home_jitter` (0.1 rad)
    on the moving joints, until every joint is within 0.01 rad and slower than 0.05 rad/s. There is
    no deadline: a loaded machine only makes it slower. It raises EnvError when the arm makes no
    progress (the largest joint error does not shrink by 2 mrad for 2 s, `HomingConfig`), naming
    each joint's distance to go and velocity, or when the arm's state goes stale. Then it requests
    a new target episode (reaching mode: a new random position on the monitor) and waits for a
    camera frame taken after the target moved.

    ## Episode End

    - Termination: never (there is no failure state; safety is enforced by the communicators).
    - Truncation: after `episode_length_s` seconds (4 s = 100 steps at dt 40 ms).
    - A crashed communicator raises EnvError from `step` or `reset` (all processes closed).
    - A hung device: every step checks the age of each stream (`robot`, `camera`, `target`, extra
      sensors) against its budget (`freshness`, rtrl_env/freshness.py). By default a stream over
      budget stops the arm (zero velocity), ends the episode and raises EnvError naming the stream,
      its age and its expected period; `reset()` starts again once it is back. Budgets: with real
      arms 3 of the stream's periods + 0.1 s, the arm's state at most 100 ms; with the sim, whose
      devices freeze with their stalled processes, 3 periods + 1 s (a loaded machine stalls
      processes for several hundred ms). `FreshnessConfig(policy="warn")` counts instead.

    ## Info

    `reward_image` (r_image), `reward` (r_image * dt), `episode_step`, `timing` (cycle timing
    from RTRLBaseEnv; `timing["stale"]` maps each stream over its budget this step to its age in s,
    non-empty only under policy "warn"), and with the sim backend `target_position` ((3,), m) and
    `camera_axis_distance` (m): the ground-truth distance from the target to the camera's optical
    axis, for evaluation only.

    ## Arguments

    `gymnasium.make("FrankaVisualReacher-v0", **kwargs)` or `FrankaVisualReacher(config, **kwargs)`;
    every keyword is a field of `FrankaVisualReacherConfig` (rtrl_env/reacher/config.py), e.g.
    `backend` ("sim", "ros", "ros2", "libfranka"), `robot_config`, `dt` (0.04 s),
    `episode_length_s` (4.0), `image_width`/`image_height` (160/120), `camera_fps` (30),
    `frame_stack` (3), `max_joint_velocity` (0.3 rad/s), `home_jitter` (0.1 rad), `reward`,
    `homing`, `freshness` (None: the backend's default budgets), `target`, `camera`,
    `target_communicator`, `extra_sensors`, `blank_image` (False). Every process starts with forkserver (spawn where
    there is none), never fork: create the env under `if __name__ == "__main__":`; a script that
    does not is told so. Factories (`camera`, ...) may be lambdas, but an `ExtraSensor.observe` is
    sent to the polling loop's process and must be a module-level function.
    `render_mode="rgb_array"` returns the newest camera frame (H, W, 3).

    ## Version History

    - v0: first version (sim, ROS and libfranka backends; 7-joint and 2-joint variants). Later in
      v0: stream freshness budgets, strict action types, homing without a fixed deadline, and
      processes started with forkserver instead of fork.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 25}

    def __init__(self, config: FrankaVisualReacherConfig | None = None,
                 render_mode: str | None = None, **overrides: Any) -> None:
        self.config = cfg = FrankaVisualReacherConfig.from_kwargs(config, **overrides)
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode={render_mode!r}; expected None or 'rgb_array'")
        self.render_mode = render_mode
        # Ground truth needs the target's true position: only the simulated target knows it.
        geometry = WristCameraGeometry.from_sim_scene() if cfg.backend in SIM_BACKENDS else None
        task = ReacherTask(cfg, geometry)
        windows = {name: sensor.window_len for name, sensor in cfg.extra_sensors.items()}
        super().__init__(task, _make_communicators(cfg), dt=cfg.dt, windows=windows, run_mode=cfg.run_mode,
                         max_episode_steps=cfg.episode_steps, pacing=cfg.pacing,
                         realtime_priority=cfg.realtime_priority, freshness=cfg.freshness)

    def render(self) -> np.ndarray | None:
        """The newest camera frame, uint8 (H, W, 3), for render_mode="rgb_array"."""
        frame = self.task.last_frame
        if self.render_mode != "rgb_array" or frame is None:
            return None
        return frame.copy()


def _make_communicators(cfg: FrankaVisualReacherConfig) -> dict[str, Communicator]:
    """Robot, target, camera, then extra sensors, each factory seeing those built before."""
    built: dict[str, Communicator] = {}
    try:
        built["robot"] = make_robot(cfg.backend, cfg.robot_config)
        target = cfg.target_communicator or default_target(cfg.backend, cfg.target)
        built["target"] = target(dict(built))
        camera = cfg.camera or default_camera(cfg.backend, cfg.image_width, cfg.image_height, cfg.camera_fps)
        built["camera"] = camera(dict(built))
        for name, sensor in cfg.extra_sensors.items():
            built[name] = sensor.make(dict(built))
    except BaseException:
        close_all(built.values())  # free the shared memory of those already built
        raise
    return built
