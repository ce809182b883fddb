"""The learner on another machine: a supervised Ray actor, with the robot side's action cycle untouched.

Reading order, along the data: outbox (transitions from the acting process, in shared memory) ->
bridge (the robot side's only Ray driver, in its own process) -> learner (the Ray actor: agent,
replay buffer, its replay journal and checkpoint on its own disk) -> weights back through the
shared versioned weights (sac/weights.py) -> updater (:class:`~sac.remote.updater.RayUpdater`, the
third Updater, in the acting process; it never imports Ray) with the watchdog. config and address
hold the settings and their checks, link the status and messages between acting process and
bridge, local_cluster a two-node cluster on loopback for tests, benchmarks and trying it out.
docs/remote-learner.md is the guide: which machine runs what, the ``ray start`` commands, ports,
the version lock and token authentication.
"""
