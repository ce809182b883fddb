"""Two actors (two real simulated reachers, cpu preset, each in its own process with its own devices
and its own bridge) feed one learner on the Ray cluster, and both act with the same weights.

Each actor process steps its env, gives its transitions to a RayUpdater naming the shared learner,
and records a hash of the policy weights it received for each learner version. The actors start and
stop stepping together (a file barrier), so their stretches of learning overlap.
"""
from __future__ import annotations

import json
import os
import textwrap

import pytest

from tests.support.processes import Script

pytestmark = pytest.mark.timeout(600)

STEPS, INIT = 200, 30
ACTOR = textwrap.dedent("""
    import hashlib, json, os, sys, tempfile, time
    import numpy as np
    from sac.training import build
    from sac.training.settings import TrainConfig
    from sac.training.updaters import transition_extras
    from sac.weights import flatten_state

    address, name, seed, barrier = {address!r}, {name!r}, {seed}, {barrier!r}

    def wait_for_both(stage):
        open(os.path.join(barrier, f"{{stage}}_{{seed}}"), "w").close()
        while len([n for n in os.listdir(barrier) if n.startswith(stage)]) < 2:
            time.sleep(0.05)

    config = build.with_preset(TrainConfig.from_flat(dict(
        async_mode=True, learner="ray", ray_address=address, ray_node_ip="127.0.0.2", ray_learner=name,
        init_step={init}, batch_size=16, replay_buffer_capacity=2000, episode_length=1.0, seed=seed,
        learner_timeout_s=120.0)))
    env = build.make_env(config)
    agent = build.make_agent(config, env)
    updater = build.make_updater(config, agent, env)
    updater.start()
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    seen = {{}}
    wait_for_both("start")
    for step in range(1, {steps} + 1):
        if step <= {init}:
            action = rng.uniform(-1, 1, env.action_space.shape).astype(np.float32)
        else:
            action = agent.act(obs)
        next_obs, reward, terminated, truncated, info = env.step(action)
        extras = transition_extras(info["timing"], list(env.freshness_budgets), updater.acting_updates)
        updater.add(obs, action, reward, next_obs, terminated, extras)
        updater.after_step(step)
        meta = updater.link.meta(updater.weights.pulled_version)
        if meta is not None and meta[0] not in seen:
            seen[meta[0]] = hashlib.sha1(flatten_state(agent.policy_state()).tobytes()).hexdigest()
        obs = env.reset()[0] if terminated or truncated else next_obs
    wait_for_both("stop")
    checkpoint = tempfile.mkdtemp()
    updater.write_checkpoint(checkpoint)
    with open(os.path.join(checkpoint, "learner.json")) as f:
        learner = json.load(f)
    print(json.dumps({{"seen": seen, "learner": learner, "actor": updater.actor_id}}), flush=True)
    updater.close()
    env.close()
""")


def test_two_sim_actors_feed_one_ray_learner_and_get_the_same_weights(cluster, tmp_path):
    barrier = str(tmp_path / "barrier")
    os.makedirs(barrier)
    code = {seed: ACTOR.format(address=cluster.address, name="shared-two-actors", seed=seed, barrier=barrier,
                               init=INIT, steps=STEPS) for seed in (1, 2)}
    with Script(code[1]) as first, Script(code[2]) as second:
        results = [json.loads(script.read_line(timeout_s=400)) for script in (first, second)]
        for script in (first, second):
            assert script.proc.wait(60) == 0
    seen = [{int(version): digest for version, digest in r["seen"].items()} for r in results]
    shared = set(seen[0]) & set(seen[1])
    assert all(len(s) >= 3 for s in seen) and len(shared) >= 3, (sorted(seen[0]), sorted(seen[1]))
    assert all(seen[0][v] == seen[1][v] for v in shared)  # one learner, one set of weights per version
    assert len({seen[0][v] for v in shared}) == len(shared)  # and the weights did change between versions
    actors = [r["actor"] for r in results]
    for r in results:
        stored = r["learner"]["learner_checkpoint"]["next_seq"]
        assert set(stored) == set(actors)  # the learner holds both actors' transitions
        assert stored[r["actor"]] == STEPS  # and every one this actor sent
