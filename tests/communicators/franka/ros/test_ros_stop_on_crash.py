"""The arm stops when the program driving it is interrupted (Ctrl-C) or killed outright.

A separate Python program drives the simulated arm through FrankaROSCommunicator; the test then
sends it SIGINT or SIGKILL and watches the bridge's joint_states from a helper process.
"""
from __future__ import annotations

import multiprocessing
import os
import signal
import textwrap
import time

import pytest
from ros_test_helpers import requires_ros, ros_env_for, running_bridge

from tests.support.processes import Script, pid_alive, wait_until

pytestmark = [requires_ros, pytest.mark.timeout(120)]

DRIVER = textwrap.dedent("""
    import sys, time
    import numpy as np
    from communicators.franka.ros.franka_ros_communicator import FrankaROSCommunicator, FrankaROSConfig
    comm = FrankaROSCommunicator(FrankaROSConfig(master_uri=sys.argv[1], ros_ip="127.0.0.1",
                                                 transport="rospy", state_timeout=1.0))  # loaded test machine
    comm.start()
    try:
        while comm.sensor_buffer.num_writes == 0:
            comm.raise_if_failed()
            time.sleep(0.02)
        print("driving", comm.pid, flush=True)
        while True:
            comm.actuator_buffer.write(np.array([0, 0, 0, 0, 0, 0, 0.3]))
            time.sleep(0.02)
    finally:
        comm.close()
""")


def _record_joint7_velocity(ros_env: dict, moving, stop, queue) -> None:  # noqa: ANN001
    # A helper process, so the test process never becomes a ROS node. `moving` is set once the arm
    # is seen moving: the subscription may connect well after the driver's first state.
    os.environ.update(ros_env)
    import rospy
    from sensor_msgs.msg import JointState

    from communicators.franka.ros import topics as T

    samples = []

    def on_state(m) -> None:  # noqa: ANN001
        samples.append((time.monotonic(), m.velocity[6]))
        if m.velocity[6] > 0.2:
            moving.set()

    rospy.init_node("velocity_recorder", anonymous=True, disable_signals=True)
    rospy.Subscriber(T.FrankaTopics().joint_states, JointState, on_state)
    stop.wait(60)
    rospy.signal_shutdown("done")
    queue.put(samples[::5])


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "killed"])
def test_arm_stops_when_the_driving_program_ends_abruptly(ros_master, sig):
    fork = multiprocessing.get_context("fork")
    queue, moving, stop = fork.Queue(), fork.Event(), fork.Event()
    try:
        with running_bridge(ros_master, "--rate-hz", "500"), Script(DRIVER, ros_master.uri) as driver:
            line = driver.read_line(timeout_s=30)
            assert line.startswith("driving"), line
            comm_pid = int(line.split()[1])
            recorder = fork.Process(target=_record_joint7_velocity,
                                    args=(ros_env_for(ros_master), moving, stop, queue))
            recorder.start()
            assert moving.wait(30), "the recorder saw no moving arm within 30 s"
            time.sleep(1.0)
            t_signal = time.monotonic()
            driver.proc.send_signal(sig)
            driver.wait(timeout_s=15)
            assert wait_until(lambda: not pid_alive(comm_pid), 5.0), "communicator process outlived its parent"
            time.sleep(max(0.0, t_signal + 2.5 - time.monotonic()))
            stop.set()
            samples = queue.get(timeout=30)
            recorder.join(10)
    finally:
        stop.set()  # the recorder ends however the test does
    before = [v for t, v in samples if t_signal - 0.5 < t < t_signal]
    after = [v for t, v in samples if t > t_signal + 1.5]
    assert before and min(before) > 0.2, "the arm was not moving before the signal"
    assert after and max(abs(v) for v in after) < 0.01, "the arm kept moving after the signal"
