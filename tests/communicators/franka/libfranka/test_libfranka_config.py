"""LibfrankaConfig: validated on construction, FR3 safety limits by default."""
import re

import numpy as np
import pytest

from communicators.franka.safety import SafetyFilter
from communicators.franka.libfranka.libfranka_config import (
    FR3_JOINT_POS_MAX,
    FR3_JOINT_POS_MIN,
    LibfrankaConfig,
    fr3_safety_limits,
)

pytestmark = pytest.mark.timeout(10)


@pytest.mark.parametrize("ip", ["", "   ", None], ids=["empty", "blank", "none"])
def test_a_missing_robot_ip_is_rejected_with_an_example(ip):
    with pytest.raises(ValueError, match=re.escape("LibfrankaConfig.robot_ip=")) as info:
        LibfrankaConfig(robot_ip=ip)
    assert "172.16.0.2" in str(info.value)


@pytest.mark.parametrize("name", ["recovery_timeout", "stop_timeout"])
def test_non_positive_timeouts_are_rejected(name):
    with pytest.raises(ValueError, match=re.escape(f"LibfrankaConfig.{name}=0")):
        LibfrankaConfig(robot_ip="172.16.0.2", **{name: 0})


def test_default_safety_limits_lie_inside_the_fr3_joint_ranges():
    limits = LibfrankaConfig(robot_ip="172.16.0.2").safety
    assert np.all(limits.joint_pos_low > FR3_JOINT_POS_MIN)
    assert np.all(limits.joint_pos_high < FR3_JOINT_POS_MAX)


def test_the_fr3_limits_stop_joint_6_before_its_fr3_lower_limit():
    # The Panda's joint 6 goes down to -0.0175 rad, the FR3's only to 0.5445 rad.
    q = np.array([0.0, 0.0, 0.0, -1.57, 0.0, 0.6, 0.785])
    dq = SafetyFilter(fr3_safety_limits()).filter(q, np.array([0, 0, 0, 0, 0, -0.5, 0]))
    assert dq[5] >= 0.0  # at 0.6 rad it is already past the soft limit: no further down
