# Register FrankaVisualReacher-v0 and FrankaVisualReacher2-v0 with Gymnasium on import.
from rtrl_env.registration import register_envs as _register_envs

_register_envs()
