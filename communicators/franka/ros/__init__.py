"""ROS 1 backend: talks to a Franka through franka_ros_interface's topics (see topics.py).

Importing this package does not import rospy; the communicator imports it in its child process.
"""
