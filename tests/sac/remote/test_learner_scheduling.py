"""The remote learner's updates run under the background policy that --learner_scheduler names,
like the local async learner's, while the threads that answer the bridges keep the normal one.

SACLearner is built in this process (the class Ray hosts, without Ray: its scheduling is plain
Linux threads, and a real Ray worker adds nothing to what is checked here)."""
from __future__ import annotations

import os
import threading

import numpy as np
import pytest
from gymnasium import spaces

from sac.agent import SACAgent
from sac.async_learner import LearnerConfig
from sac.checkpoint import state_bytes
from sac.config import get_preset
from sac.remote.config import LearnerSpec, compact_space
from sac.remote.learner import SACLearner
from tests.support.processes import wait_until

pytestmark = [pytest.mark.timeout(120), pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="Linux only")]

SPACE = spaces.Dict({"image": spaces.Box(0, 255, (9, 48, 64), np.uint8),
                     "proprioception": spaces.Box(-np.inf, np.inf, (16,), np.float32)})


@pytest.mark.parametrize(("scheduler", "policy"), [("idle", "SCHED_IDLE"), ("batch", "SCHED_BATCH")])
def test_the_remote_learners_update_thread_takes_the_background_policy_and_its_call_threads_do_not(
        tmp_path, scheduler, policy):
    agent_config = get_preset("cpu").agent
    spec = LearnerSpec(observation=compact_space(SPACE), action_dim=2, agent_config=agent_config,
                       replay_capacity=1000, learner=LearnerConfig(scheduler=scheduler, nice=3))
    caller = os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    learner = SACLearner("scheduling-test", spec, str(tmp_path))
    try:
        learner.seed(state_bytes(SACAgent(SPACE, 2, agent_config).state_dict()))
        updates = learner._thread
        assert updates is not None and updates.is_alive()
        # The thread sets its own policy first thing; it then waits for transitions.
        assert wait_until(lambda: os.sched_getscheduler(updates.native_id) == getattr(os, policy), 2.0)
        if scheduler == "batch":
            assert os.getpriority(os.PRIO_PROCESS, updates.native_id) == caller[1] + 3
        # This thread stands for Ray's call threads: it answered seed() and is unchanged.
        assert (os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, threading.get_native_id())) == caller
    finally:
        learner.shutdown()

