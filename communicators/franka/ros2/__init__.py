"""ROS 2 backend: a Franka under franka_ros2 / ros2_control, through rclpy (see README.md here).

Importing this package imports nothing of ROS 2: rclpy lives in the communicator's child process.
"""
