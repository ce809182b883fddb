#!/usr/bin/env bash
# Installs ROS 2's Python client (rclpy, Fast DDS, sensor_msgs, std_msgs) from PyPI wheels into a
# virtual environment of its own, .venv-ros2, with the versions pinned in setup.py's "ros2" extra.
# Idempotent: it does nothing when those versions are there already.
#
# Why not the main venv: these wheels ship top-level packages named sensor_msgs, std_msgs,
# geometry_msgs and rosgraph_msgs, the same names as ROS 1's Debian packages that the main venv
# reaches through a .pth file (scripts/install_ros.sh). Installed into the main venv they shadow
# ROS 1's, and rospy no longer imports ("cannot import name 'Log' from 'rosgraph_msgs.msg'").
# They also add a .pth hook that re-executes every Python started in that venv to set
# LD_LIBRARY_PATH. The ROS 2 communicator's child process puts .venv-ros2's packages on its own
# sys.path instead (communicators/franka/ros2/ros2_runtime.py); the parent never imports them.
# A venv without ROS 1 can simply `pip install '.[ros2]'`.
#
# Usage: scripts/install_ros2.sh            (from the repository root or anywhere)
# Env:   MAIN_VENV (default .venv), RTRL_ROS2_VENV (default .venv-ros2)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MAIN_VENV="${MAIN_VENV:-$ROOT/.venv}"
ROS2_VENV="${RTRL_ROS2_VENV:-$ROOT/.venv-ros2}"
start=$(date +%s)

if [ ! -x "$MAIN_VENV/bin/python" ]; then
    echo "install_ros2: main venv $MAIN_VENV not found; create it first (make install)" >&2
    exit 1
fi
# The pins live once, in setup.py's EXTRAS["ros2"].
mapfile -t PINS < <("$MAIN_VENV/bin/python" - "$ROOT/setup.py" <<'PY'
import ast, sys
tree = ast.parse(open(sys.argv[1]).read())
extras = next(node.value for node in ast.walk(tree) if isinstance(node, ast.Assign)
              and getattr(node.targets[0], "id", None) == "EXTRAS")
print("\n".join(ast.literal_eval(extras)["ros2"]))
PY
)

# The wheels are built for one Python version: the venv must use the main venv's interpreter.
if [ ! -x "$ROS2_VENV/bin/python" ]; then
    "$MAIN_VENV/bin/python" -m venv "$ROS2_VENV"
    "$ROS2_VENV/bin/pip" install --quiet --upgrade pip
fi
if "$ROS2_VENV/bin/python" - "${PINS[@]}" <<'PY'
import sys
from importlib.metadata import PackageNotFoundError, version
def installed(pin):
    name, _, wanted = pin.partition("==")
    try:
        return version(name) == wanted
    except PackageNotFoundError:
        return False
sys.exit(0 if all(installed(pin) for pin in sys.argv[1:]) else 1)
PY
then
    echo "install_ros2: ${PINS[*]} already in $ROS2_VENV"
else
    "$ROS2_VENV/bin/pip" install --quiet "${PINS[@]}"
fi

# Prove the main venv's interpreter can load them the way the communicator does.
PYTHONPATH="$ROOT" RTRL_ROS2_VENV="$ROS2_VENV" "$MAIN_VENV/bin/python" -m communicators.franka.ros2.ros2_runtime
echo "install_ros2: done in $(( $(date +%s) - start )) s"
