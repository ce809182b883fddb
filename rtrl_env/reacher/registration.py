"""Register the Franka visual reacher with Gymnasium, so `gymnasium.make` builds it by id.

    ============================  ======================  ========================================
    id                            joints moved            notes
    ============================  ======================  ========================================
    FrankaVisualReacher-v0        A1..A7 (action (7,))    the full arm
    FrankaVisualReacher2-v0       A1, A4 (action (2,))    easier; the seed's "Franka-Reacher-2"
    ============================  ======================  ========================================

Both are `nondeterministic`: they run in real time against processes with their own clocks, so the
same seed does not give bit-identical observations (Gymnasium's checker then skips its
determinism asserts). Episode length is set in seconds by the env, not by a TimeLimit wrapper,
because the number of steps depends on dt. Keyword arguments of `gymnasium.make` are fields of
`FrankaVisualReacherConfig` (e.g. `dt=0.04`, `backend="sim"`).

`register_envs()` runs on `import rtrl_env` and is idempotent.
"""
from __future__ import annotations

import gymnasium

ENTRY_POINT = "rtrl_env.reacher.env:FrankaVisualReacher"
ENV_IDS = ("FrankaVisualReacher-v0", "FrankaVisualReacher2-v0")


def env_joints(env_id: str) -> tuple[int, ...]:
    """The joints the registered id moves.

    Raises:
        ValueError: not one of ENV_IDS.
    """
    from rtrl_env.reacher.joints import ALL_JOINTS, TWO_JOINTS

    if env_id not in ENV_IDS:
        raise ValueError(f"unknown env id {env_id!r}; expected one of {ENV_IDS}")
    return dict(zip(ENV_IDS, (ALL_JOINTS, TWO_JOINTS)))[env_id]


def register_envs() -> None:
    """Register both ids with Gymnasium (a second call changes nothing)."""
    for env_id in ENV_IDS:
        joints = env_joints(env_id)
        if env_id in gymnasium.registry:
            continue
        gymnasium.register(
            id=env_id,
            entry_point=ENTRY_POINT,
            nondeterministic=True,
            # The env truncates by itself after episode_length_s; no TimeLimit wrapper.
            max_episode_steps=None,
            kwargs={"joints": joints, "env_id": env_id},
        )
