"""Real-time environments: RTRLBaseEnv and the Franka visual reacher built on it."""

from rtrl_env.base_env import RTRLBaseEnv
from rtrl_env.timing import TimingReport

# Register FrankaVisualReacher-v0 and FrankaVisualReacher2-v0 with Gymnasium on import.
from rtrl_env.registration import register_envs as _register_envs

_register_envs()

__all__ = ["RTRLBaseEnv", "TimingReport"]
