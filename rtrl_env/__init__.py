"""Real-time environments: ``RTRLBaseEnv`` owns the action cycle and the device processes; a task
says what to read, what to send and what the reward is. The Franka visual reacher is the first
task (``rtrl_env.reacher``); importing this package registers its Gymnasium ids."""

from rtrl_env.base_env import RTRLBaseEnv
from rtrl_env.errors import EnvError
from rtrl_env.freshness import FreshnessConfig
from rtrl_env.timing import TimingReport

# Register FrankaVisualReacher-v0 and FrankaVisualReacher2-v0 with Gymnasium on import.
from rtrl_env.reacher.registration import register_envs as _register_envs

_register_envs()

from rtrl_env.reacher import ExtraSensor, FrankaVisualReacher, FrankaVisualReacherConfig  # noqa: E402

__all__ = ["RTRLBaseEnv", "EnvError", "FreshnessConfig", "TimingReport", "FrankaVisualReacher", "FrankaVisualReacherConfig",
           "ExtraSensor"]
