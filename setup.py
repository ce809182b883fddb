"""Installs the real-time RL framework: communicators, rtrl_env and sac."""
from setuptools import find_packages, setup

EXTRAS = {
    # MuJoCo simulation of the arm, cameras and target (the default backend).
    "sim": ["mujoco>=3.3,<5", "gymnasium-robotics==1.4.2"],
    # Real cameras and the target window.
    "camera": ["opencv-python-headless>=4.9"],
    # SAC agent and training script. torch is pinned to the local CPU wheel on purpose:
    # a looser pin pulls a multi-GB CUDA build.
    "sac": ["torch==2.13.0", "tensorboard>=2.16", "tqdm>=4.66"],
    # libfranka backend (FR3, libfranka >= 0.10).
    "libfranka": ["pylibfranka>=0.18"],
    # ROS 1 backend: rospy comes from Debian, see README ("Running on a real Franka").
    "ros": [],
    # ROS 2 backend (franka_ros2 / ros2_control): rclpy, Fast DDS and the messages, as PyPI wheels.
    # Their sensor_msgs/std_msgs shadow ROS 1's Debian packages in a venv that has those too, so
    # `make test` puts them in a venv of their own (scripts/install_ros2.sh); see
    # communicators/franka/ros2/README.md.
    "ros2": ["ros-rclpy==9.1.2", "ros-sensor-msgs==5.5.1", "ros-std-msgs==5.5.1",
             "ros-rmw-fastrtps-cpp==9.3.3"],
    "dev": ["pytest>=8", "pytest-timeout>=2.3", "imageio>=2.34"],
    # The remote learner (--learner ray). Pinned: every machine of a Ray cluster needs the same Ray
    # (and the same Python patch version). Ray does not pull torch, so the CPU pin above holds.
    "ray": ["ray==2.60.0"],
}
# "all" leaves ros2 out: its wheels break ROS 1 (rospy) in the same venv; ask for it by name.
EXTRAS["all"] = sorted({req for name, reqs in EXTRAS.items() if name != "ros2" for req in reqs})

setup(
    name="franka-rtrl",
    version="0.1.0",
    description="Real-time reinforcement learning for a Franka arm with a camera: "
    "communicators, a drift-free action cycle and asynchronous SAC.",
    python_requires=">=3.10",
    packages=find_packages(include=["communicators*", "rtrl_env*", "sac*"]),
    # The ROS backend generates franka_core_msgs classes from these when no catkin workspace has them.
    package_data={"communicators.franka.ros": ["msg/*/*.msg", "README.md"],
                  "communicators.franka.ros2": ["README.md"]},
    install_requires=[
        "numpy>=1.26",
        "gymnasium>=1.0",
        "termcolor>=2.4",
        "matplotlib>=3.8",
    ],
    extras_require=EXTRAS,
    # The training script (examples/franka_reacher.py) as a command; needs the sim and sac extras.
    entry_points={"console_scripts": ["franka-reacher = sac.training.cli:main"]},
)
