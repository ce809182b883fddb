"""The Franka visual reacher: ``RTRLBaseEnv`` + the reacher task + its device set (arm, wrist
camera, target, any extra sensors). ``import rtrl_env`` registers ``FrankaVisualReacher-v0`` and
``FrankaVisualReacher2-v0`` with Gymnasium."""
from rtrl_env.reacher.config import FrankaVisualReacherConfig
from rtrl_env.reacher.devices import ExtraSensor
from rtrl_env.reacher.env import FrankaVisualReacher

__all__ = ["FrankaVisualReacher", "FrankaVisualReacherConfig", "ExtraSensor"]
