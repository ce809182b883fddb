"""MuJoCo physics of the Franka arm under joint-velocity control, in the calling process.

No processes and no clocks here: the sim communicator paces it against wall time, the sim camera
uses a second instance only for its kinematics, and any bridge (ROS, network protocol) can drive
one directly.

Example:
    >>> import numpy as np
    >>> physics = FrankaPhysics(FrankaPhysicsConfig())
    >>> physics.set_joint_velocity(np.full(7, 0.1))
    >>> physics.step(250)                  # 0.5 s of simulated time
    >>> bool(np.allclose(physics.state().dq, 0.1, atol=0.01))
    True
"""
from __future__ import annotations

from dataclasses import dataclass, field

import mujoco
import numpy as np

from communicators.franka.kinematics import NUM_JOINTS, READY_POSE
from communicators.franka.safety import PANDA_JOINT_POS_MAX, PANDA_JOINT_POS_MIN
from communicators.franka.state import FrankaState
from communicators.sim.physics import scene


@dataclass
class FrankaPhysicsConfig:
    """How the simulated arm is built.

    Attributes:
        timestep: physics step in seconds; at most 0.002 (>= 500 Hz, the rate the arm's state is
            published at).
        velocity_gain: gain of the joint-velocity servos of joints 1-4, N m s/rad (see
            `scene.build_spec`).
        initial_qpos: joint angles after construction and after `reset()` without arguments,
            shape (7,), rad.
    """

    timestep: float = 0.002
    velocity_gain: float = 400.0
    initial_qpos: np.ndarray = field(default_factory=lambda: READY_POSE.copy())

    def __post_init__(self) -> None:
        if not 0.0 < self.timestep <= 0.002:
            raise ValueError(
                f"FrankaPhysicsConfig.timestep={self.timestep} s must be in (0, 0.002] so the "
                "state can be published at >= 500 Hz; try 0.002 or 0.001"
            )
        if not self.velocity_gain > 0.0:
            raise ValueError(
                f"FrankaPhysicsConfig.velocity_gain={self.velocity_gain} must be positive (N m s/rad)"
            )
        self.initial_qpos = _check_qpos(self.initial_qpos, "FrankaPhysicsConfig.initial_qpos")


def _check_qpos(qpos: np.ndarray, what: str) -> np.ndarray:
    qpos = np.array(qpos, dtype=np.float64)
    if qpos.shape != (NUM_JOINTS,) or not np.all(np.isfinite(qpos)):
        raise ValueError(f"{what} must be 7 finite joint angles in rad, got {qpos!r}")
    if np.any(qpos < PANDA_JOINT_POS_MIN) or np.any(qpos > PANDA_JOINT_POS_MAX):
        raise ValueError(
            f"{what}={qpos} lies outside the Panda's joint limits "
            f"[{PANDA_JOINT_POS_MIN}, {PANDA_JOINT_POS_MAX}] rad"
        )
    return qpos


class FrankaPhysics:
    """The visual-reacher scene (`scene.build_model`) with the arm under joint-velocity control.

    Args:
        config: model settings; None gives the defaults.

    Attributes:
        model: the MjModel. data: the MjData.
    """

    def __init__(self, config: FrankaPhysicsConfig | None = None) -> None:
        self.config = config if config is not None else FrankaPhysicsConfig()
        self.model = scene.build_model(
            timestep=self.config.timestep, velocity_gain=self.config.velocity_gain
        )
        self.data = mujoco.MjData(self.model)
        self._qpos_adr, self._dof_adr, self._act_ids = scene.arm_indices(self.model)
        self._site = self.model.site(scene.EE_SITE).id
        self._target_mocap = self.model.body(scene.TARGET_BODY).mocapid[0]
        self._quat = np.zeros(4)
        self.reset()

    @property
    def timestep(self) -> float:
        """Physics step, s."""
        return float(self.model.opt.timestep)

    @property
    def sim_time(self) -> float:
        """Simulated time since the last reset, s."""
        return float(self.data.time)

    def reset(self, qpos: np.ndarray | None = None) -> None:
        """Put the arm at rest at `qpos` (shape (7,), rad; default `config.initial_qpos`)."""
        qpos = self.config.initial_qpos if qpos is None else _check_qpos(qpos, "reset qpos")
        mujoco.mj_resetDataKeyframe(self.model, self.data, self.model.key("ready").id)
        self.data.qpos[self._qpos_adr] = qpos
        mujoco.mj_forward(self.model, self.data)

    def set_joint_velocity(self, dq: np.ndarray) -> None:
        """Command joint velocities (shape (7,), rad/s), held until the next command.

        No safety filtering happens here; the communicator filters before calling this.
        """
        dq = np.asarray(dq, dtype=np.float64)
        if dq.shape != (NUM_JOINTS,) or not np.all(np.isfinite(dq)):
            raise ValueError(f"joint velocity command must be 7 finite numbers in rad/s, got {dq!r}")
        self.data.ctrl[self._act_ids] = dq

    def step(self, n: int = 1) -> None:
        """Advance the simulation by n physics steps (n * timestep seconds)."""
        mujoco.mj_step(self.model, self.data, nstep=n)

    def set_target_position(self, pos: np.ndarray) -> None:
        """Move the red target's centre to `pos` (shape (3,), m, world = base frame).

        Takes effect (for rendering too) at the next `step` or `set_joint_positions`.
        """
        self.data.mocap_pos[self._target_mocap] = pos

    def set_joint_positions(self, qpos: np.ndarray) -> None:
        """Pose the arm kinematically (no dynamics), e.g. to mirror another process's state.

        Also updates every body pose (and the target's), ready to render.

        Args:
            qpos: joint angles, shape (7,), rad.
        """
        self.data.qpos[self._qpos_adr] = qpos
        mujoco.mj_kinematics(self.model, self.data)
        # mj_kinematics leaves camera poses stale; without this the wrist camera renders from
        # where it was at the last mj_forward, not from the hand (found by the env helper).
        mujoco.mj_camlight(self.model, self.data)

    def joint_positions(self) -> np.ndarray:
        """Current joint angles, shape (7,), rad (a copy; cheaper than `state()`)."""
        return self.data.qpos[self._qpos_adr].copy()

    def state(self) -> FrankaState:
        """The arm's current state (joint angles and velocities, TCP pose)."""
        # mj_step leaves site poses at the start of the step; recompute them for the current qpos.
        mujoco.mj_kinematics(self.model, self.data)
        mujoco.mju_mat2Quat(self._quat, self.data.site_xmat[self._site])
        return FrankaState(
            q=self.data.qpos[self._qpos_adr].copy(),
            dq=self.data.qvel[self._dof_adr].copy(),
            ee_pos=self.data.site_xpos[self._site].copy(),
            ee_quat=self._quat.copy(),
        )
