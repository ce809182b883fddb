"""From a TrainConfig to the run's parts: the preset's values filled in, every derived setting checked
without starting anything, then the env, the agent and the updater built.

:func:`check` is the one place that checks what spans concerns, by building the library configs
(FrankaVisualReacherConfig, AgentConfig, LearnerConfig) and the observation space, none of which
starts a process or touches a file; their ConfigError names a field that ``FLAG_OF`` maps back to
the flag the user typed.
"""
from __future__ import annotations

import dataclasses
import os
import secrets
from typing import Any

from communicators.errors import ConfigError
from rtrl_env.reacher.config import FrankaVisualReacherConfig
from sac.agent import SACAgent
from sac.async_learner import LearnerConfig
from sac.augment import crop_size
from sac.config import AgentConfig, get_preset
from sac.models import conv_output_size
from sac.replay_buffer import SharedReplayBuffer, replay_bytes
from sac.training.run_dir import run_name
from sac.training.sensors import load_sensors
from sac.training.settings import AGENT_FIELDS, SettingError, TrainConfig
from sac.training.updaters import AsyncUpdater, SerialUpdater, Updater, extra_names

FLAG_OF = {
    # FrankaVisualReacherConfig
    "dt": "dt", "episode_length_s": "episode_length", "image_width": "image_width", "image_height": "image_height",
    "frame_stack": "image_history", "backend": "backend", "realtime_priority": "realtime_priority",
    # LearnerConfig
    "max_update_freq": "max_update_freq", "num_threads": "learner_threads", "nice": "learner_nice",
    "scheduler": "learner_scheduler",
    "max_restarts": "learner_restarts",
    # RemoteLearnerConfig
    "warn_after_s": "learner_warn_s", "stop_after_s": "learner_timeout_s",
    # AgentConfig: the same names as its flags
    **{name: name for name in AGENT_FIELDS},
}
"""Library config field -> the flag that sets it."""


def with_preset(config: TrainConfig) -> TrainConfig:
    """The config with every None image or agent setting replaced by the preset's value, and the
    device resolved (so args.json records what the run really uses)."""
    preset = get_preset(config.agent.preset)
    env = dataclasses.replace(config.env, **{name: getattr(preset, name) for name in
                                             ("image_width", "image_height", "image_history")
                                             if getattr(config.env, name) is None})
    agent = dataclasses.replace(config.agent, **{name: getattr(preset.agent, name) for name in AGENT_FIELDS
                                                 if getattr(config.agent, name) is None})
    if not agent.device and config.learner.learner == "local":  # a remote learner picks its own (remote_spec)
        import torch
        agent = dataclasses.replace(agent, device="cuda" if torch.cuda.is_available() else "cpu")
    learner = config.learner
    if learner.learner == "ray" and learner.ray_learner is None:
        # Named once, when the run is made (args.json keeps it): a new run with the same settings
        # elsewhere must not find this run's learner and its checkpoint.
        name = f"{run_directory_name(dataclasses.replace(config, env=env, agent=agent))}-{secrets.token_hex(3)}"
        learner = dataclasses.replace(learner, ray_learner=name)
    return dataclasses.replace(config, env=env, agent=agent, learner=learner)


def check(config: TrainConfig) -> None:
    """Checks every derived setting; starts nothing and writes nothing.

    Raises:
        ConfigError: ``field`` is a library field (map it with :data:`FLAG_OF`) or a setting name.
    """
    reacher_config(config)
    agent_config(config)
    learner_config(config)
    _check_encoder_input(config)
    if config.learner.learner == "ray":
        _check_remote(config)  # the replay buffer and the device are the learner machine's
    else:
        for name in ("ray_address", "ray_node_ip", "ray_learner"):
            if getattr(config.learner, name) is not None:
                raise SettingError("LearnerSettings", name, getattr(config.learner, name),
                                   "is only used with --learner ray")
        _check_replay_fits(config)
        _check_device(config.agent.device)
    if config.run.load_model:
        agent_file(config.run.load_model)


def run_directory_name(config: TrainConfig) -> str:
    """The seed's run name (mode, target, dt, batch, image size, seed)."""
    learner = config.learner
    version = ("EVAL" if config.run.eval else "SACv0" if not learner.async_mode
               else "SACv1" if learner.lock else "SACv2")
    return run_name(version, config.env.target_type, config.env.dt, config.agent.batch_size,
                    config.env.image_width, config.env.image_height, config.run.seed)


def reacher_config(config: TrainConfig) -> FrankaVisualReacherConfig:
    """The env's config (validated), as ``gymnasium.make`` will build it."""
    import rtrl_env  # noqa: F401  (registers the ids)
    from rtrl_env.reacher.registration import env_joints

    return FrankaVisualReacherConfig.from_kwargs(joints=env_joints(config.env.env), env_id=config.env.env,
                                                 **env_kwargs(config))


def env_kwargs(config: TrainConfig) -> dict[str, Any]:
    """Keyword arguments of ``gymnasium.make`` for the run's env."""
    env = config.env
    kwargs: dict[str, Any] = dict(backend=env.backend, dt=env.dt, episode_length_s=env.episode_length,
                                  image_width=env.image_width, image_height=env.image_height,
                                  frame_stack=env.image_history, realtime_priority=env.realtime_priority,
                                  extra_sensors=load_sensors(env.sensor), blank_image=env.blank_image)
    from communicators.target.target_motion import TargetConfig
    if env.backend == "sim":
        kwargs["target"] = TargetConfig(mode=env.target_type, seed=env.target_seed)
        return kwargs
    from communicators.camera.opencv_camera_communicator import OpenCVCameraCommunicator, OpenCVCameraConfig
    from communicators.target.target_display_communicator import TargetDisplayConfig
    source = env.camera if env.camera is not None else env.camera_id
    try:
        camera = OpenCVCameraConfig(source=source, width=env.image_width, height=env.image_height,
                                    fps=env.camera_fps)
    except (ValueError, TypeError, FileNotFoundError) as err:
        flag = "camera" if env.camera is not None else "camera_id"
        raise SettingError("EnvSettings", flag, source, f"is no camera OpenCV can open ({err})") from None
    kwargs["camera"] = _OpenCVCameraFactory(camera)
    # The red dot on the monitor moves in normalised screen coordinates.
    kwargs["target"] = TargetDisplayConfig(motion=TargetConfig(mode=env.target_type, seed=env.target_seed,
                                                               low=(0.1, 0.1, 0.0), high=(0.9, 0.9, 0.0), speed=0.2,
                                                               rate_hz=60.0))
    if env.backend == "libfranka":
        from communicators.franka.libfranka import LibfrankaConfig
        kwargs["robot_config"] = LibfrankaConfig(robot_ip=env.robot_ip)
    if env.backend == "ros2" and env.joint_states_topic is not None:
        kwargs["robot_config"] = _ros2_config(env.joint_states_topic)
    return kwargs


def _ros2_config(joint_states_topic: str) -> Any:
    from communicators.franka.ros2.franka_ros2_config import FrankaROS2Config
    try:
        return FrankaROS2Config(joint_states_topic=joint_states_topic)
    except ValueError as err:
        raise SettingError("EnvSettings", "joint_states_topic", joint_states_topic,
                           f"is no valid ROS 2 topic name ({err})", "/franka/joint_states") from None


@dataclasses.dataclass
class _OpenCVCameraFactory:
    config: Any

    def __call__(self, built: dict) -> Any:
        from communicators.camera.opencv_camera_communicator import OpenCVCameraCommunicator
        return OpenCVCameraCommunicator(self.config)


def agent_config(config: TrainConfig) -> AgentConfig:
    """The preset's AgentConfig with the run's hyperparameters (validated)."""
    preset = get_preset(config.agent.preset)
    return dataclasses.replace(preset.agent, **{name: getattr(config.agent, name) for name in AGENT_FIELDS})


def learner_config(config: TrainConfig) -> LearnerConfig:
    """The learner process's config (validated)."""
    learner = config.learner
    return LearnerConfig(max_update_freq=learner.max_update_freq, update_after=config.run.init_step,
                         num_threads=learner.learner_threads, nice=learner.learner_nice,
                         scheduler=learner.learner_scheduler,
                         max_restarts=learner.learner_restarts, device=config.agent.device)


def agent_file(path: str) -> str:
    """The agent.pt of a checkpoint directory (or the file itself).

    Raises:
        SettingError: no agent.pt there (``field`` "load_model").
    """
    candidate = os.path.join(path, "agent.pt") if os.path.isdir(path) else path
    if not os.path.isfile(candidate):
        raise SettingError("RunSettings", "load_model", path, "has no agent.pt: give a checkpoint directory "
                           "(<run>/model/step_<S>) or an agent.pt file")
    return candidate


def make_env(config: TrainConfig) -> Any:
    """The run's env (the unwrapped FrankaVisualReacher); its processes start at the first reset."""
    import gymnasium

    import rtrl_env  # noqa: F401  (registers the ids)
    return gymnasium.make(config.env.env, **env_kwargs(config)).unwrapped


def make_agent(config: TrainConfig, env: Any) -> SACAgent:
    """The SAC agent for the env's observation space (every key, extra sensors included), seeded; it
    acts on the CPU when the learner is remote."""
    device = "cpu" if config.learner.learner == "ray" else config.agent.device
    return SACAgent(env.observation_space, env.action_space.shape[0], agent_config(config),
                    device=device, seed=config.run.seed)


def remote_config(config: TrainConfig) -> Any:
    """The robot side's settings of a remote learner (``--learner ray``), validated."""
    from sac.remote.config import RemoteLearnerConfig

    learner = config.learner
    return RemoteLearnerConfig(address=learner.ray_address, learner_name=learner.ray_learner,
                               node_ip=learner.ray_node_ip,
                               max_restarts=learner.learner_restarts, warn_after_s=learner.learner_warn_s,
                               stop_after_s=learner.learner_timeout_s)


def remote_spec(config: TrainConfig, env: Any) -> Any:
    """What the remote learner builds its agent and replay buffer from."""
    from sac.remote.config import LearnerSpec, compact_space

    device = config.agent.device
    # Ray shows an actor only the GPU it was given, as cuda:0: "cuda:1" names a GPU of this machine.
    local = dataclasses.replace(learner_config(config), device="cuda" if device.startswith("cuda") else device)
    return LearnerSpec(observation=compact_space(env.observation_space), action_dim=env.action_space.shape[0],
                       agent_config=agent_config(config), replay_capacity=config.agent.replay_buffer_capacity,
                       learner=local, seed=config.run.seed, extras=replay_extras(env))


def replay_extras(env: Any) -> tuple[str, ...]:
    """The per-transition timing stored beside each transition (stream ages, period, weights' updates)."""
    return extra_names(list(env.freshness_budgets))


def make_updater(config: TrainConfig, agent: SACAgent, env: Any) -> Updater:
    """Serial or local asynchronous learning with a shared replay buffer built from the env's space,
    or a remote learner on a Ray cluster (which keeps the replay buffer there)."""
    if config.learner.learner == "ray":
        from sac.remote.updater import RayUpdater

        return RayUpdater(agent, env.observation_space, remote_spec(config, env), remote_config(config))
    replay = SharedReplayBuffer(env.observation_space, env.action_space.shape[0],
                                config.agent.replay_buffer_capacity, extras=replay_extras(env))
    try:
        if config.learner.async_mode:
            return AsyncUpdater(agent, replay, learner_config(config))
        return SerialUpdater(agent, replay, update_after=config.run.init_step)
    except BaseException:
        replay.close()
        raise


def _check_encoder_input(config: TrainConfig) -> None:
    agent = agent_config(config)
    h, w = crop_size(config.env.image_height, config.env.image_width, agent.rad_offset)
    for name, size in (("image_height", h), ("image_width", w)):
        try:
            conv_output_size(size, agent.encoder.kernel_size, agent.encoder.strides)
        except ValueError:
            raise SettingError("EnvSettings", name, getattr(config.env, name),
                               f"is too small for the {config.agent.preset} preset's encoder after the random crop "
                               f"({size} pixels left)") from None


def _check_replay_fits(config: TrainConfig) -> None:
    from rtrl_env.reacher.task import ReacherTask  # the spaces alone: no device is built

    task = ReacherTask(reacher_config(config))
    capacity = config.agent.replay_buffer_capacity
    needed, limit = replay_bytes(task.observation_space, task.action_space.shape[0], capacity)
    if needed > limit:
        fits = max(1, int(capacity * limit / needed))
        raise SettingError("AgentSettings", "replay_buffer_capacity", capacity,
                           f"needs {needed / 1e9:.2f} GB of shared memory and only {limit / 1e9:.2f} GB may be used",
                           fits)


def _check_remote(config: TrainConfig) -> None:
    """--learner ray: asynchronous, Ray installed, a well-formed address where a head answers."""
    from sac.remote.address import check_name, check_reachable, parse_address

    learner = config.learner
    if not learner.async_mode:
        raise SettingError("LearnerSettings", "learner", "ray", "learns asynchronously on the Ray cluster: add "
                           "--async_mode")
    if learner.ray_address is None:
        raise SettingError("LearnerSettings", "ray_address", None, "must be given with --learner ray: the Ray "
                           "head's HOST:PORT", "192.168.1.10:6379")
    try:
        import ray  # noqa: F401
    except ImportError:
        raise SettingError("LearnerSettings", "learner", "ray", "needs Ray, which is not installed here: pip "
                           "install 'franka-rtrl[ray]' (the same Ray version on every machine)") from None
    parse_address(learner.ray_address)
    if learner.ray_learner is not None:
        check_name(learner.ray_learner)
    remote_config(config)  # the node address and the watchdog's budget
    check_reachable(learner.ray_address)


def _check_device(device: str) -> None:
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise SettingError("AgentSettings", "device", device, "is not a torch device (cpu, cuda, cuda:1)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SettingError("AgentSettings", "device", device, "is not available: torch sees no CUDA device here",
                           "cpu")


__all__ = ["FLAG_OF", "ConfigError", "check", "env_kwargs", "make_agent", "make_env", "make_updater",
           "run_directory_name", "with_preset"]
