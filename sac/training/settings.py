"""The training run's settings: one dataclass per concern, from which the command line is derived.

Every field is one flag of ``examples/franka_reacher.py`` with the seed's name (``--async_mode``,
``--batch_size``, ...), its one-line doc (the ``--help`` text), its unit, and whether ``--resume``
may change it (:data:`MAY_CHANGE`) or must refuse a new value (:data:`FIXED`). Each dataclass checks
its own fields in ``__post_init__`` and raises :class:`SettingError` naming the field; the command
line turns that into ``--field value: what it must be``. Settings that span concerns (an episode
of whole cycles, an image the encoder can take, a replay buffer that fits in memory) are checked
by :meth:`TrainConfig.check` through the library configs they build, so each rule exists once.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from communicators.errors import ConfigError
from communicators.realtime import BACKGROUND_SCHEDULERS
from rtrl_env.reacher.registration import ENV_IDS

FIXED = "fixed"
"""``--resume`` refuses a new value: the run's data or its name depend on it."""
MAY_CHANGE = "may change"
"""``--resume`` takes the new value and records it in the run's args.json."""

TARGET_TYPES = ("reaching", "tracking", "static")
LEARNERS = ("local", "ray")


class SettingError(ConfigError):
    """A training setting has a value it cannot take; ``field`` is its flag's name without ``--``."""


def setting(default: Any, doc: str, unit: str | None = None, on_resume: str = FIXED,
            choices: tuple | None = None) -> Any:
    """A dataclass field that is also a command-line flag.

    Args:
        default: the default value (None: derived at run time, e.g. from the preset).
        doc: one line for ``--help``.
        unit: the unit, shown in ``--help`` (``"s"``, ``"Hz"``, ``"steps"``).
        on_resume: :data:`FIXED` or :data:`MAY_CHANGE`.
        choices: the values allowed, shown in ``--help``.
    """
    return field(default=default, metadata={"doc": doc, "unit": unit, "on_resume": on_resume, "choices": choices})


def _bad(owner: Any, name: str, requirement: str, example: Any = None) -> SettingError:
    return SettingError(type(owner).__name__, name, getattr(owner, name), requirement, example)


def _whole(owner: Any, name: str, low: int, high: int | None = None, example: Any = None, optional: bool = False) -> None:
    value = getattr(owner, name)
    if optional and value is None:
        return
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= low and (high is None or value <= high)
    if not ok:
        span = f">= {low}" if high is None else f"in {low}..{high}"
        raise _bad(owner, name, f"must be a whole number {span}", example)


def _number(owner: Any, name: str, low: float, unit: str, example: Any = None, strict: bool = True,
            optional: bool = False) -> None:
    value = getattr(owner, name)
    if optional and value is None:
        return
    ok = (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
          and (value > low if strict else value >= low))
    if not ok:
        if strict and low == 0:
            what = f"a positive number of {unit}" if unit else "a positive number"
        else:
            what = f"a number of {unit} {'>' if strict else '>='} {low:g}" if unit else f"a number >= {low:g}"
        raise _bad(owner, name, f"must be {what}", example)


def _choice(owner: Any, name: str, choices: tuple) -> None:
    if getattr(owner, name) not in choices:
        raise _bad(owner, name, f"must be one of {', '.join(map(str, choices))}")


@dataclass
class EnvSettings:
    """The task, its devices and its timing."""

    env: str = setting("FrankaVisualReacher2-v0", "the task: FrankaVisualReacher2-v0 (A1 and A4) or "
                       "FrankaVisualReacher-v0 (all 7 joints)", choices=ENV_IDS)
    backend: str = setting("sim", "robot backend: sim (MuJoCo), ros (ROS 1), ros2 (franka_ros2), libfranka")
    camera_id: int = setting(0, "OpenCV camera index of /dev/videoN (real backends; the sim renders its own)",
                             on_resume=MAY_CHANGE)
    camera: str | None = setting(None, "the wrist camera on real backends as an OpenCV source: a device index, a "
                                 "video file or a stream URL (overrides --camera_id)", on_resume=MAY_CHANGE)
    camera_fps: float | None = setting(None, "the wrist camera's frame rate on real backends: asked of the device, "
                                       "and a step stops the run when no frame came for 3 of its periods + 0.1 s "
                                       "(default: the device's own rate, held to 10 fps)", "frames/s",
                                       on_resume=MAY_CHANGE)
    sensor: list[str] = setting((), "add an extra sensor: MODULE:FACTORY[:ARG], the factory returning an "
                                "ExtraSensor (repeatable), e.g. rtrl_env.reacher.sensors:scene_camera")
    blank_image: bool = setting(False, "feed the agent an all-zero image (the reward still comes from the camera): "
                                "its pixels tell nothing, e.g. to prove a --sensor is learned from")
    robot_ip: str | None = setting(None, "libfranka backend: the robot's FCI address, e.g. 172.16.0.2",
                                   on_resume=MAY_CHANGE)
    joint_states_topic: str | None = setting(None, "ros2 backend: the sensor_msgs/JointState topic (default "
                                             "/joint_states; franka_ros2's franka.launch.py publishes the arm at "
                                             "1 kHz on /franka/joint_states)", on_resume=MAY_CHANGE)
    image_width: int | None = setting(None, "camera image width (default: the preset's)", "pixels")
    image_height: int | None = setting(None, "camera image height (default: the preset's)", "pixels")
    image_history: int | None = setting(None, "stacked frames per observation (default: the preset's)", "frames")
    target_type: str = setting("reaching", "target mode", choices=TARGET_TYPES)
    target_seed: int | None = setting(None, "seed the target positions: episode n gets the same target in every "
                                      "run with this seed and --seed, e.g. to compare an --eval with the scripted "
                                      "expert's (default: unseeded)", on_resume=MAY_CHANGE)
    random_action_repeat: int = setting(1, "repeat each initial random action this many steps", "steps")
    agent_action_repeat: int = setting(1, "repeat each policy action this many steps", "steps")
    episode_length: float = setting(4.0, "episode length, a whole number of --dt cycles", "s")
    dt: float = setting(0.04, "action cycle", "s")
    realtime_priority: int | None = setting(None, "run the action cycle under SCHED_FIFO at this priority "
                                            "(1-99; needs root or CAP_SYS_NICE)", on_resume=MAY_CHANGE)

    def __post_init__(self) -> None:
        _choice(self, "env", ENV_IDS)
        _choice(self, "target_type", TARGET_TYPES)
        _whole(self, "camera_id", 0)
        _whole(self, "target_seed", 0, example=9, optional=True)
        _number(self, "camera_fps", 0, "frames/s", example=30, optional=True)
        self.sensor = list(self.sensor)
        _whole(self, "random_action_repeat", 1, example=1)
        _whole(self, "agent_action_repeat", 1, example=1)
        # dt, episode_length, the image sizes and realtime_priority are the env's own settings:
        # FrankaVisualReacherConfig checks them (TrainConfig.check builds it).
        if self.backend == "libfranka" and not self.robot_ip:
            raise SettingError("EnvSettings", "robot_ip", None, "must be given with --backend libfranka: the "
                               "robot's FCI address", "172.16.0.2")


@dataclass
class AgentSettings:
    """The network preset and the SAC hyperparameters (None: the preset's value)."""

    preset: str = setting("cpu", "network and image preset: cpu (learns in real time on 2 CPU cores) or seed "
                          "(the seed's architecture, GPU-sized)", choices=("cpu", "seed"))
    batch_size: int | None = setting(None, "minibatch size", "transitions")
    rad_offset: float | None = setting(None, "random-crop margin per side", "fraction of the image")
    critic_lr: float | None = setting(None, "critic (and encoder) learning rate")
    critic_tau: float | None = setting(None, "Polyak rate of the target Q networks")
    critic_target_update_freq: int | None = setting(None, "update the targets every this many updates", "updates")
    actor_lr: float | None = setting(None, "actor learning rate")
    actor_update_freq: int | None = setting(None, "update the actor every this many updates", "updates")
    encoder_tau: float | None = setting(None, "Polyak rate of the target encoder")
    discount: float | None = setting(None, "discount factor per env step")
    init_temperature: float | None = setting(None, "initial entropy temperature")
    alpha_lr: float | None = setting(None, "temperature learning rate")
    replay_buffer_capacity: int = setting(100_000, "transitions the replay buffer keeps", "transitions")
    device: str = setting("", "torch device of the updates: cpu, cuda, cuda:1 ('' picks cuda if present)",
                          on_resume=MAY_CHANGE)

    def __post_init__(self) -> None:
        _choice(self, "preset", ("cpu", "seed"))
        _whole(self, "replay_buffer_capacity", 1, example=100_000)
        # The hyperparameters are checked by AgentConfig (TrainConfig.check), which knows their rules.


# The AgentSettings fields that override an AgentConfig field of the same name.
AGENT_FIELDS = ("batch_size", "rad_offset", "critic_lr", "critic_tau", "critic_target_update_freq", "actor_lr",
                "actor_update_freq", "encoder_tau", "discount", "init_temperature", "alpha_lr")


@dataclass
class LearnerSettings:
    """Serial or asynchronous learning, where the learner runs (here or on a Ray cluster), and its budget."""

    async_mode: bool = setting(False, "update in a learner process beside the action cycle (default: serially, "
                               "one update after every step)")
    lock: bool = setting(False, "the seed's SACv1 (async with a lock on the weights): weights are always published "
                         "whole here, so it only names the run SACv1")
    max_update_freq: float = setting(10.0, "async: at most this many updates per env step", "updates/step",
                                     on_resume=MAY_CHANGE)
    learner_threads: int = setting(2, "async: torch threads of the learner process (under --learner_scheduler idle "
                                   "they take only CPU the action cycle leaves)", "threads", on_resume=MAY_CHANGE)
    learner_scheduler: str = setting("idle", "async: scheduling policy of the learner's threads, so the action "
                                     "cycle preempts them (no privilege needed): idle (SCHED_IDLE: only CPU "
                                     "nothing else wants), batch (SCHED_BATCH) or other (SCHED_OTHER); with "
                                     "--learner ray, of its update thread on the learner machine",
                                     on_resume=MAY_CHANGE, choices=BACKGROUND_SCHEDULERS)
    learner_nice: int = setting(5, "async: nice increment of the learner's threads under batch or other (higher "
                                "yields the CPU to the action cycle sooner)", on_resume=MAY_CHANGE)
    learner_restarts: int = setting(0, "async: restart a failed learner at most this many times from its last "
                                    "snapshot (0: stop the run, saved, at the first failure); ray: Ray's "
                                    "max_restarts of the learner actor", on_resume=MAY_CHANGE)
    learner: str = setting("local", "async: where the learner runs: local (a process beside the action cycle) or "
                           "ray (a Ray actor on another machine, see docs/remote-learner.md)", choices=LEARNERS)
    ray_address: str | None = setting(None, "ray: the Ray head's HOST:PORT (what `ray start --head` prints), e.g. "
                                      "192.168.1.10:6379", on_resume=MAY_CHANGE)
    ray_node_ip: str | None = setting(None, "ray: this machine's address in the Ray cluster (the --node-ip-address "
                                      "of its `ray start`; default: Ray finds this machine's node)",
                                      on_resume=MAY_CHANGE)
    ray_learner: str | None = setting(None, "ray: the learner's name on the cluster; runs given the same name feed "
                                      "one learner (default: the run directory's name and a random suffix, chosen "
                                      "when the run is made)")
    learner_warn_s: float = setting(3.0, "ray: warn when no new weights came from the learner for this long",
                                    "s", on_resume=MAY_CHANGE)
    learner_timeout_s: float = setting(30.0, "ray: stop the run (the arm stopped, saved) when no new weights came "
                                       "from the learner for this long", "s", on_resume=MAY_CHANGE)

    def __post_init__(self) -> None:
        _choice(self, "learner", LEARNERS)
        _number(self, "learner_warn_s", 0, "seconds", 3.0)
        _number(self, "learner_timeout_s", 0, "seconds", 30.0)
        if self.learner_timeout_s <= self.learner_warn_s:
            raise _bad(self, "learner_timeout_s", f"must be longer than --learner_warn_s ({self.learner_warn_s:g} s)")
        # The local learner's fields are checked by LearnerConfig, the Ray address and the learner's
        # name by TrainConfig.check (sac/training/build.py), which also sees --async_mode.


@dataclass
class RunSettings:
    """How long the run lasts, where it writes, and how it starts."""

    init_step: int = setting(1000, "initial random-action steps before learning", "steps")
    env_step: int = setting(100_000, "env steps to train after the initial ones (a resumed run may be given more)",
                            "steps", on_resume=MAY_CHANGE)
    time_limit: float = setting(0.0, "stop (and save) after this many wall-clock seconds of this invocation; "
                                "0: no limit", "s", on_resume=MAY_CHANGE)
    seed: int = setting(9, "random seed (also names the run)")
    work_dir: str = setting(".", "results go under <work_dir>/results/")
    save_tb: bool = setting(True, "write TensorBoard logs", on_resume=MAY_CHANGE)
    save_model: bool = setting(True, "write checkpoints", on_resume=MAY_CHANGE)
    save_model_freq: int = setting(10_000, "checkpoint every this many env steps (and at every stop)", "steps",
                                   on_resume=MAY_CHANGE)
    load_model: str | None = setting(None, "start from the agent of this checkpoint directory (or agent.pt)")
    eval: bool = setting(False, "evaluate --load_model with the deterministic policy; no learning")
    eval_episodes: int = setting(10, "episodes in evaluation mode", "episodes")

    def __post_init__(self) -> None:
        _whole(self, "init_step", 0, example=1000)
        _whole(self, "env_step", 0, example=100_000)
        _number(self, "time_limit", 0, "seconds", 1800, strict=False)
        _whole(self, "seed", 0)
        _whole(self, "save_model_freq", 1, example=10_000)
        _whole(self, "eval_episodes", 1, example=10)
        if self.eval and not self.load_model:
            raise SettingError("RunSettings", "eval", True, "needs --load_model <checkpoint directory> (the "
                               "agent to evaluate)")


@dataclass
class TrainConfig:
    """Everything a training run is started with (what args.json records)."""

    env: EnvSettings = field(default_factory=EnvSettings)
    agent: AgentSettings = field(default_factory=AgentSettings)
    learner: LearnerSettings = field(default_factory=LearnerSettings)
    run: RunSettings = field(default_factory=RunSettings)

    GROUPS = ("env", "agent", "learner", "run")

    def flat(self) -> dict[str, Any]:
        """Every setting by its flag name (the form of args.json)."""
        return {f.name: getattr(getattr(self, g), f.name) for g in self.GROUPS
                for f in dataclasses.fields(getattr(self, g))}

    @classmethod
    def from_flat(cls, values: dict[str, Any]) -> TrainConfig:
        """Builds and checks each group from flag-named values; missing ones take their defaults.

        Raises:
            SettingError: a value is bad (``field`` names the flag).
            TypeError: a name is no setting.
        """
        groups = {g: {} for g in cls.GROUPS}
        owner = {f.name: g for g, c in _GROUP_CLASSES.items() for f in dataclasses.fields(c)}
        for name, value in values.items():
            if name not in owner:
                raise TypeError(f"{name!r} is not a training setting")
            groups[owner[name]][name] = value
        return cls(**{g: _GROUP_CLASSES[g](**v) for g, v in groups.items()})


_GROUP_CLASSES = {"env": EnvSettings, "agent": AgentSettings, "learner": LearnerSettings, "run": RunSettings}


def setting_fields() -> list[tuple[str, dataclasses.Field]]:
    """(group, field) of every setting, in flag order."""
    return [(g, f) for g, c in _GROUP_CLASSES.items() for f in dataclasses.fields(c)]
