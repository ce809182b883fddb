"""A ROS 2 helper process for the tests, so the test process itself never imports rclpy.

    python ros2_probe.py echo-commands TOPIC     one line per Float64MultiArray: "<sent> v1 .. v7"
    python ros2_probe.py echo-velocities TOPIC   one line per JointState: "<sent> dq1 .. dq7"
                                                 (arm joints 1..7 by name suffix)
    python ros2_probe.py publish-array TOPIC     publishes Float64MultiArray at 100 Hz (a wrong type)

Prints "probe ready" once its subscription or publisher exists, and exits on SIGTERM. <sent> is
when the publisher sent the message (DDS's source timestamp), on time.monotonic(), which every
process on the machine shares: a probe that reads late on a loaded machine still dates it right.
"""
from __future__ import annotations

import signal
import sys
import time


def main() -> int:
    from communicators.franka.ros2.ros2_runtime import find_ros2_runtime

    mode, topic = sys.argv[1], sys.argv[2]
    runtime = find_ros2_runtime()
    runtime.reexec_if_needed()
    runtime.activate()
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from rclpy.signals import SignalHandlerOptions
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Float64MultiArray

    stopped = []
    signal.signal(signal.SIGTERM, lambda *_: stopped.append(True))
    rclpy.init(args=["--ros-args", "--disable-external-lib-logs"],
               signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node("test_probe", enable_rosout=False, start_parameter_services=False)

    def emit(info, values) -> None:  # noqa: ANN001
        sent = info["source_timestamp"] * 1e-9 - (time.time() - time.monotonic())
        print(f"{sent:.6f} " + " ".join(f"{v:.6f}" for v in values), flush=True)

    def on_joint_state(msg, info) -> None:  # noqa: ANN001
        by_joint = {n[-1]: v for n, v in zip(msg.name, msg.velocity) if "finger" not in n}
        emit(info, [by_joint[str(i)] for i in range(1, 8)])

    publisher = None
    if mode == "echo-commands":
        node.create_subscription(Float64MultiArray, topic, lambda m, info: emit(info, m.data),
                                 QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))
    elif mode == "echo-velocities":
        node.create_subscription(JointState, topic, on_joint_state,
                                 QoSProfile(depth=100, reliability=ReliabilityPolicy.BEST_EFFORT))
    elif mode == "publish-array":
        publisher = node.create_publisher(Float64MultiArray, topic, 10)
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    print("probe ready", flush=True)
    seen, next_look = None, 0.0
    while not stopped:
        rclpy.spin_once(node, timeout_sec=0.01)
        if time.monotonic() >= next_look:  # for a failing test's message: what discovery matched
            next_look = time.monotonic() + 0.5
            graph = (node.count_publishers(topic), node.count_subscribers(topic))
            if graph != seen:
                seen = graph
                print(f"graph: {topic} has {graph[0]} publishers, {graph[1]} subscribers", flush=True)
        if publisher is not None:
            publisher.publish(Float64MultiArray(data=[0.0] * 7))
    node.destroy_node()
    rclpy.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
