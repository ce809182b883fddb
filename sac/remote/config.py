"""Settings of the remote learner (the address and name checks are in sac/remote/address.py).

:class:`RemoteLearnerConfig` is what the robot side needs (where the cluster is, the learner's
name, the watchdog's budget, the bridge's buffers); :class:`LearnerSpec` is what the learner needs
to build its agent and replay buffer on the other machine. Both check themselves on construction
and name the field in a :class:`~communicators.errors.ConfigError`.
"""
from __future__ import annotations

import hashlib
import ipaddress
import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from communicators.errors import ConfigError
from sac.async_learner import LearnerConfig
from sac.config import AgentConfig
from sac.remote.address import check_name, parse_address

LEARNER_RESOURCE = "rtrl_learner"
"""The custom resource a learner node offers (``ray start --resources='{"rtrl_learner": 1}'``);
each learner asks for :data:`LEARNER_DEMAND` of it, so it is never placed on the robot's computer."""
LEARNER_DEMAND = 0.001
NAMESPACE = "franka-rtrl"
"""The Ray namespace of the learners: runs that name the same learner find it there."""
LEARNER_DIR = "~/.franka-rtrl/learners"
"""Where a learner keeps its checkpoint, on the learner machine (``~`` is that machine's HOME)."""


@dataclass
class RemoteLearnerConfig:
    """How the robot side reaches and watches a learner on a Ray cluster (acting process)."""

    address: str
    """``HOST:PORT`` of the Ray head."""
    learner_name: str
    """The learner actor's name in :data:`NAMESPACE`; runs that give the same name feed one learner."""
    node_ip: str | None = None
    """This machine's address in the cluster (its ``ray start --node-ip-address``); None: Ray finds
    the node running on this machine."""
    learner_dir: str = LEARNER_DIR
    """The learner's checkpoint directory on the learner machine (one sub-directory per learner)."""
    max_restarts: int = 0
    """Ray restarts a learner whose process died at most this many times, from its checkpoint."""
    warn_after_s: float = 3.0
    """The watchdog warns when no new weights came for this long while learning should go on."""
    stop_after_s: float = 30.0
    """The watchdog stops the run (saved) when no new weights came for this long."""
    outbox_capacity: int = 1000
    """Transitions the shared-memory outbox holds for the bridge (40 s at 25 Hz); beyond, new ones
    are dropped and counted, so the action cycle never waits."""
    resend_capacity: int = 5000
    """Transitions the bridge keeps until the learner confirms it stored them, to send again after a
    learner restart; beyond, the oldest are counted lost."""
    send_period_s: float = 0.05
    """The bridge sends what the outbox holds this often, in one batch."""
    snapshot_every_s: float = 60.0
    """The robot side fetches a copy of the learner's full agent state this often (and at every
    save): the last good state, saved if the learner is lost."""
    connect_timeout_s: float = 180.0
    """Connecting, creating the learner and its first weights must take less than this."""
    call_timeout_s: float = 60.0
    """A checkpoint's round trip to the learner must take less than this."""

    def __post_init__(self) -> None:
        parse_address(self.address)
        check_name(self.learner_name)
        if self.node_ip is not None:
            try:
                ipaddress.ip_address(self.node_ip)
            except ValueError:
                raise ConfigError("RemoteLearnerConfig", "ray_node_ip", self.node_ip,
                                  "must be an IP address (this machine's `ray start --node-ip-address`)",
                                  "192.168.1.20") from None
        if isinstance(self.max_restarts, bool) or not isinstance(self.max_restarts, int) or self.max_restarts < 0:
            raise ConfigError("RemoteLearnerConfig", "max_restarts", self.max_restarts, "must be a whole number >= 0")
        for name in ("warn_after_s", "stop_after_s", "send_period_s", "snapshot_every_s", "connect_timeout_s",
                     "call_timeout_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or value <= 0:
                raise ConfigError("RemoteLearnerConfig", name, value, "must be a positive number of seconds")
        if self.stop_after_s <= self.warn_after_s:
            raise ConfigError("RemoteLearnerConfig", "stop_after_s", self.stop_after_s,
                              f"must be longer than the warning's {self.warn_after_s:g} s")
        for name in ("outbox_capacity", "resend_capacity"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError("RemoteLearnerConfig", name, value, "must be a whole number >= 1")


@dataclass
class LearnerSpec:
    """What the learner builds its agent and replay buffer from (sent to the learner machine).

    Two actors may feed one learner only if their :meth:`key` is equal.
    """

    observation: dict[str, tuple]
    """The env's observation space in the compact form of :func:`compact_space`."""
    action_dim: int
    agent_config: AgentConfig
    replay_capacity: int
    """Transitions the learner's replay buffer keeps."""
    learner: LearnerConfig = field(default_factory=LearnerConfig)
    """The update cap, torch threads and device of the updates (``""``: cuda if the learner has one)."""
    seed: int = 0
    extras: tuple[str, ...] = ()
    """Names of the per-transition timing floats stored with each transition (``batch.extras``)."""
    snapshot_every_s: float = 10.0
    """The learner writes its full agent state to its disk this often: what a restart loses at most."""
    orphan_after_s: float = 120.0
    """A learner that no actor contacted for this long saves and exits (its actors died unannounced)."""

    @property
    def observation_space(self) -> Any:
        """The env's observation space (a gymnasium ``Dict``), rebuilt from :attr:`observation`."""
        from gymnasium import spaces

        return spaces.Dict({key: spaces.Box(low, high, shape, np.dtype(dtype))
                            for key, (shape, dtype, low, high) in self.observation.items()})

    def key(self) -> dict[str, Any]:
        """What must be equal for two actors to share the learner."""
        shapes = {key: (tuple(shape), str(dtype)) for key, (shape, dtype, _, _) in self.observation.items()}
        return {"observation": shapes, "action_dim": int(self.action_dim), "agent": self.agent_config.to_dict(),
                "replay_capacity": int(self.replay_capacity), "extras": list(self.extras)}


def compact_space(observation_space: Any) -> dict[str, tuple]:
    """A gymnasium ``Dict`` of ``Box`` spaces as ``{key: (shape, dtype, low, high)}``, with bounds that
    are equal everywhere kept as one number.

    Ray keeps a restartable actor's constructor arguments for its restarts, and loses those large
    enough to live in its object store (ray-project/ray#53727): a (9, 120, 160) image Box's bounds
    alone are 350 KB, one number each here.
    """
    def bound(values: np.ndarray) -> Any:
        flat = np.asarray(values).ravel()
        return flat[0].item() if flat.size and np.all(flat == flat[0]) else np.asarray(values)

    return {key: (tuple(space.shape), str(space.dtype), bound(space.low), bound(space.high))
            for key, space in observation_space.spaces.items()}


def code_fingerprint() -> str:
    """A hash of the learning code (sac/), which must be the same on both machines."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    digest = hashlib.sha256()
    for folder in (root, os.path.join(root, "remote")):
        for name in sorted(os.listdir(folder)):
            if name.endswith(".py"):
                with open(os.path.join(folder, name), "rb") as f:
                    digest.update(name.encode() + b"\0" + f.read())
    return digest.hexdigest()[:16]
