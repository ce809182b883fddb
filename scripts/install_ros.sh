#!/usr/bin/env bash
# Installs the ROS 1 Python client (rospy, rosmaster, message generators) from Debian and makes it
# importable from the project's virtual environment. Idempotent: safe to run before every test run.
#
# Usage: scripts/install_ros.sh [VENV_DIR]     (default: .venv)
#
# Why Debian: rospy is not on PyPI (the PyPI "genpy" is an unrelated package). Debian bookworm's
# ROS 1 packages run on the system Python 3.11; a .pth file appended to the venv's site-packages
# adds /usr/lib/python3/dist-packages LAST on sys.path, so the venv's own numpy still wins.
set -euo pipefail

VENV_DIR="${1:-.venv}"
PACKAGES=(python3-rospy python3-rosmaster python3-rosgraph python3-roslib python3-genpy
          python3-genmsg python3-std-msgs python3-sensor-msgs python3-geometry-msgs
          python3-actionlib-msgs)

if [ ! -x "${VENV_DIR}/bin/python" ]; then
    echo "install_ros.sh: no virtual environment at '${VENV_DIR}' (expected ${VENV_DIR}/bin/python);" \
         "create it first or pass its path as the first argument" >&2
    exit 2
fi

bash "$(dirname "$0")/apt_install.sh" "${PACKAGES[@]}"

SITE_PACKAGES="$("${VENV_DIR}/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
# "zz-" sorts last among .pth files, so the Debian path is appended after everything else.
PTH_FILE="${SITE_PACKAGES}/zz-debian-ros1.pth"
if [ ! -f "${PTH_FILE}" ] || ! grep -qx "/usr/lib/python3/dist-packages" "${PTH_FILE}"; then
    echo "/usr/lib/python3/dist-packages" > "${PTH_FILE}"
    echo "install_ros.sh: wrote ${PTH_FILE}"
fi

"${VENV_DIR}/bin/python" - <<'PY'
import numpy, rospy, rosmaster, genpy, genmsg, sensor_msgs.msg, std_msgs.msg  # noqa: F401
assert "/usr/lib/python3/dist-packages" not in numpy.__file__, "Debian numpy shadows the venv's numpy"
print(f"install_ros.sh: rospy OK, numpy {numpy.__version__} from the venv")
PY
command -v rosmaster >/dev/null || { echo "install_ros.sh: rosmaster not on PATH" >&2; exit 3; }
