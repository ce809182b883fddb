"""The Franka visual reacher: move the wrist camera until the red target sits in the image centre."""
from __future__ import annotations

import time
from typing import Any

import numpy as np
from gymnasium import spaces

from communicators.errors import EnvError
from communicators.franka_state import DQ, EE_POS, EE_QUAT, Q
from rtrl_env.base_env import RTRLBaseEnv
from rtrl_env.frame_stack import FrameStack
from rtrl_env.homing import HomingController
from rtrl_env.image_reward import image_reward
from communicators.sim.sim_target_communicator import SimTargetCommunicator
from rtrl_env.reacher_communicators import default_camera, default_target, make_robot
from rtrl_env.reacher_config import FrankaVisualReacherConfig
from rtrl_env.reacher_task import ActionScaler, jittered_home, proprioception
from rtrl_env.sim_ground_truth import WristCameraGeometry


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

    An action of the wrong shape, with NaN or inf, or outside [-1, 1] raises ValueError and
    nothing is sent to the arm. The robot communicator's safety filter then enforces the joint
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

    Frames are stacked at the env-step rate: each step adds the newest camera frame.

    ## Rewards

    `reward = r_image * dt`, where r_image in [0, 4] is the seed's image reward
    (rtrl_env/image_reward.py): pixels in a red colour range, weighted by closeness to the image
    centre, summed, scaled and clipped. Scaling by dt (s) makes returns comparable across cycle
    times: the return is in "seconds of target centred". Per step: [0, 4 * dt]; per default
    episode: [0, 16]. `info["reward_image"]` holds r_image.

    ## Starting State

    `reset` moves the arm smoothly (joint-velocity P-control, at most 0.8 rad/s) to the home pose
    (camera 0.42 m above the monitor centre, looking down) plus uniform jitter of +-`home_jitter`
    (0.1 rad) on the moving joints, raising EnvError if it cannot get there within 8 s. Then it
    requests a new target episode (reaching mode: a new random position on the monitor) and waits
    for a camera frame taken after the target moved.

    ## Episode End

    - Termination: never (there is no failure state; safety is enforced by the communicators).
    - Truncation: after `episode_length_s` seconds (4 s = 100 steps at dt 40 ms).
    - A crashed communicator raises EnvError from `step` or `reset`.

    ## Info

    `reward_image` (r_image), `reward` (r_image * dt), `episode_step`, `timing` (cycle timing
    from RTRLBaseEnv), and with the sim backend `target_position` ((3,), m) and
    `camera_axis_distance` (m): the ground-truth distance from the target to the camera's optical
    axis, for evaluation only.

    ## Arguments

    `gymnasium.make("FrankaVisualReacher-v0", **kwargs)` or `FrankaVisualReacher(config, **kwargs)`;
    every keyword is a field of `FrankaVisualReacherConfig` (rtrl_env/reacher_config.py), e.g.
    `backend` ("sim", "ros", "libfranka"), `robot_config`, `dt` (0.04 s),
    `episode_length_s` (4.0), `image_width`/`image_height` (160/120), `camera_fps` (30),
    `frame_stack` (3), `max_joint_velocity` (0.3 rad/s), `home_jitter` (0.1 rad), `reward`,
    `target`, `camera`, `target_communicator`, `extra_sensors`. `render_mode="rgb_array"`
    returns the newest camera frame (H, W, 3).

    ## Version History

    - v0: first version (sim, ROS and libfranka backends; 7-joint and 2-joint variants).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 25}

    def __init__(self, config: FrankaVisualReacherConfig | None = None,
                 render_mode: str | None = None, **overrides: Any) -> None:
        self.config = cfg = FrankaVisualReacherConfig.from_kwargs(config, **overrides)
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode={render_mode!r}; expected None or 'rgb_array'")
        self.render_mode = render_mode
        self._scaler = ActionScaler(cfg.joints, cfg.max_joint_velocity, cfg.env_id)
        self._frames = FrameStack(cfg.frame_stack, cfg.image_height, cfg.image_width)
        self._homing = HomingController(cfg.homing)
        self._home = np.array(cfg.home_pose)
        self._comms = self._make_communicators()
        # Ground truth needs the target's true position: only a simulated target knows it.
        self._geometry = (WristCameraGeometry.from_sim_scene()
                          if isinstance(self._comms["target"], SimTargetCommunicator) else None)
        n = self._scaler.dim
        # q within +-pi rad, dq within +-10 rad/s, previous action within +-1.
        high = np.concatenate([np.full(7, np.pi), np.full(7, 10.0), np.ones(n)]).astype(np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (n,), np.float32)
        obs_spaces = {
            "image": spaces.Box(0, 255, self._frames.shape, np.uint8),
            "proprioception": spaces.Box(-high, high, dtype=np.float32),
        }
        obs_spaces.update({k: s.space for k, s in cfg.extra_sensors.items()})
        self.observation_space = spaces.Dict(obs_spaces)
        self._previous_action = np.zeros(n, np.float32)
        self._episode_step = 0
        self._episode = 0
        self._last_frame: np.ndarray | None = None
        self._fresh_frame_time = -np.inf
        try:
            super().__init__(**self._base_env_args())
        except BaseException:
            for comm in self._comms.values():
                comm.close()
            raise

    # ----- construction -------------------------------------------------------------------

    def _make_communicators(self) -> dict:
        """Robot, target, camera, then extra sensors, each factory seeing those built before."""
        cfg = self.config
        built: dict = {}
        try:
            built["robot"] = make_robot(cfg.backend, cfg.robot_config)
            target = cfg.target_communicator or default_target(cfg.backend, cfg.target)
            built["target"] = target(dict(built))
            camera = cfg.camera or default_camera(cfg.backend, cfg.image_width,
                                                  cfg.image_height, cfg.camera_fps)
            built["camera"] = camera(dict(built))
            for name, sensor in cfg.extra_sensors.items():
                built[name] = sensor.make(dict(built))
        except BaseException:
            for comm in built.values():  # free the shared memory of those already built
                comm.close()
            raise
        return built

    def _base_env_args(self) -> dict[str, Any]:
        windows = {"robot": 1, "target": 1, "camera": 1}
        windows.update({k: s.window_len for k, s in self.config.extra_sensors.items()})
        setups = {name: {"Communicator": _prebuilt, "kwargs": {"communicator": comm},
                         "num_sensor_packets": windows[name],
                         # Actions drive the arm only: any write to the target's actuator starts a
                         # new target episode, so it gets its one request per episode from _reset_.
                         "actuated": name == "robot"}
                  for name, comm in self._comms.items()}
        return dict(communicator_setups=setups, action_dim=self._scaler.dim,
                    observation_dim=None, run_mode=self.config.run_mode, dt=self.config.dt,
                    realtime_priority=self.config.realtime_priority)

    # ----- Gymnasium API ------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Move home (with jitter), request a new target, return the first observation.

        Args:
            seed: seeds the env's np_random (home jitter and the target request).
            options: unused.

        Raises:
            EnvError: the arm could not get home, or the target or camera did not update.
        """
        sensation, base_info = super().reset(seed=seed, options=options)
        sensation = self._sensation_after(sensation, self._fresh_frame_time)
        self._restart_cycle()  # the wait for a frame of the new target is not part of the first cycle
        self._episode_step = 0
        self._previous_action = np.zeros(self._scaler.dim, np.float32)
        self._episode += 1
        obs = self._observation(sensation, self._frames.reset(sensation["frame"]))
        return obs, self._info(sensation, base_info)

    def step(self, action: np.ndarray
             ) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """Send the action, wait for the end of the cycle, return the newest observation.

        Raises:
            ValueError: bad action (shape, NaN/inf, outside [-1, 1]); nothing is sent.
            EnvError: a communicator died.
        """
        action = self._scaler.check(action).astype(np.float32)  # before anything is sent
        sensation, _, _, _, base_info = super().step(action)
        self._episode_step += 1
        self._previous_action = action
        obs = self._observation(sensation, self._frames.push(sensation["frame"]))
        info = self._info(sensation, base_info)
        truncated = self._episode_step >= self.config.episode_steps
        if truncated:
            self._stop_arm()  # do not leave the arm moving until the watchdog fires
        return obs, info["reward"], False, truncated, info

    def render(self) -> np.ndarray | None:
        """The newest camera frame, uint8 (H, W, 3), for render_mode="rgb_array"."""
        if self.render_mode != "rgb_array" or self._last_frame is None:
            return None
        return self._last_frame.copy()

    def close(self) -> None:
        """Stop the arm, then end every communicator process (idempotent)."""
        self._stop_arm()
        super().close()

    # ----- RTRLBaseEnv hooks ----------------------------------------------------------------

    def _compute_sensation_(self, name_to_sensor_window: dict, *args: Any, **kwargs: Any) -> dict:
        """Raw sensation (not yet stacked): newest frame, arm state, target, extra sensors."""
        frames, frame_times, _ = name_to_sensor_window["camera"]
        state, _, _ = name_to_sensor_window["robot"]
        sensation = {"frame": np.array(frames[-1]), "frame_time": float(frame_times[-1]),
                     "state": np.array(state[-1])}
        if "target" in name_to_sensor_window:
            sensation["target"] = np.array(name_to_sensor_window["target"][0][-1])
        for key, sensor in self.config.extra_sensors.items():
            data, times, _ = name_to_sensor_window[key]
            sensation[key] = sensor.observe(data, times)
        return sensation

    def _compute_actuation_(self, action: np.ndarray, timestamp: float, index: int) -> None:
        dq = self._scaler.to_joint_velocity(action)
        self._comms["robot"].actuator_buffer.write(dq)

    def _reset_(self) -> None:
        goal = jittered_home(self.np_random, self.config.joints, self.config.home_jitter,
                             self._home)
        self._homing.run(goal, read_state=self._arm_state, send=self._send_homing_velocity,
                         wait=lambda: time.sleep(self.config.homing.period_s))
        self._request_new_target()

    def _send_homing_velocity(self, dq: np.ndarray) -> None:
        if self._closed:
            # A process died during homing and the env closed them all: the robot's communicator
            # stopped the arm as it closed, and its buffers are gone. Let that EnvError through.
            return
        self._comms["robot"].actuator_buffer.write(dq)

    # ----- helpers --------------------------------------------------------------------------

    def _observation(self, sensation: dict, image: np.ndarray) -> dict[str, np.ndarray]:
        self._last_frame = sensation["frame"]
        state = sensation["state"]
        obs = {"image": image,
               "proprioception": proprioception(state[Q], state[DQ], self._previous_action)}
        for key in self.config.extra_sensors:
            obs[key] = sensation[key]
        return obs

    def _info(self, sensation: dict, base_info: dict) -> dict[str, Any]:
        r_image = image_reward(sensation["frame"], self.config.reward)
        info = dict(base_info)
        info.update(reward_image=r_image, reward=r_image * self.config.dt,
                    episode_step=self._episode_step)
        if self._geometry is not None and "target" in sensation:
            state, target = sensation["state"], sensation["target"]
            info["target_position"] = target.copy()
            info["camera_axis_distance"] = self._geometry.axis_distance(
                state[EE_POS], state[EE_QUAT], target)
        return info

    def _arm_state(self) -> tuple[np.ndarray, np.ndarray]:
        robot = self._comms["robot"]
        self._wait_for(robot, after=-np.inf, timeout=10.0, what="arm state")
        state, _, _ = robot.sensor_buffer.latest()
        return state[Q], state[DQ]

    def _request_new_target(self) -> None:
        """Ask the target for a new episode; wait for its new position and a frame showing it."""
        target, camera = self._comms["target"], self._comms["camera"]
        requested = time.monotonic()
        timeout = self.config.new_target_timeout_s
        if target.actuator_buffer is not None:
            # A number drawn from the seeded np_random: reset(seed=s) gives the same target
            # whenever the target's own config is seeded.
            episode = float(self.np_random.integers(1, 2**31))
            target.actuator_buffer.write(np.array([episode]))
        # 30 ms: the target's actuator and sensor threads (100 Hz) have both ticked since.
        moved = self._wait_for(target, after=requested + 0.03, timeout=timeout,
                               what="target position")
        self._fresh_frame_time = self._wait_for(camera, after=moved, timeout=timeout,
                                                what="frame showing the new target")

    def _sensation_after(self, sensation: dict, frame_time: float) -> dict:
        """The first sensation whose frame is at least as new as `frame_time` (monotonic s).

        In multiprocess mode the polling loop may not yet have turned the frame that shows the
        new target into a sensation when reset reads one; wait for it (a millisecond or so).
        """
        deadline = time.monotonic() + self.config.new_target_timeout_s
        while sensation["frame_time"] < frame_time:
            if time.monotonic() > deadline:
                raise EnvError(f"{self.config.env_id}: no observation with the new target's frame "
                               f"within {self.config.new_target_timeout_s} s of reset")
            time.sleep(0.001)
            sensation = self._sense()[0]
        return sensation

    def _wait_for(self, comm: Any, after: float, timeout: float, what: str) -> float:
        """Wait until comm's sensor buffer has a slot stamped later than `after`; its stamp."""
        buffer, deadline = comm.sensor_buffer, time.monotonic() + timeout
        while True:
            self._raise_if_failed()  # RTRLBaseEnv's: closes everything and raises EnvError
            if buffer.num_writes > 0:
                stamp = float(buffer.latest()[1])
                if stamp > after:
                    return stamp
            if time.monotonic() > deadline:
                raise EnvError(
                    f"{self.config.env_id}: {type(comm).__name__} gave no new {what} within "
                    f"{timeout:.1f} s during reset; is its device delivering at its configured "
                    "rate? (new_target_timeout_s sets the wait for the target and camera)")
            time.sleep(0.002)

    def _stop_arm(self) -> None:
        robot = getattr(self, "_comms", {}).get("robot")
        try:
            if robot is not None and robot.actuator_buffer is not None:
                robot.actuator_buffer.write(np.zeros(7))
        except Exception:  # noqa: BLE001 - closing: the buffer may already be gone
            pass


def _prebuilt(communicator: Any) -> Any:
    """Hands an already built communicator to RTRLBaseEnv's setup table."""
    return communicator
