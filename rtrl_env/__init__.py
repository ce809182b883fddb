"""Real-time environments: RTRLBaseEnv and the Franka visual reacher built on it."""

from rtrl_env.base_env import RTRLBaseEnv
from rtrl_env.timing import TimingReport

# Register FrankaVisualReacher-v0 and FrankaVisualReacher2-v0 with Gymnasium on import.
from rtrl_env.registration import register_envs as _register_envs

_register_envs()

from rtrl_env.franka_visual_reacher import FrankaVisualReacher  # noqa: E402
from rtrl_env.reacher_config import FrankaVisualReacherConfig  # noqa: E402

__all__ = ["RTRLBaseEnv", "TimingReport", "FrankaVisualReacher", "FrankaVisualReacherConfig"]
