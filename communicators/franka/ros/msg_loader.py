"""franka_ros_interface's message classes, with or without a catkin workspace.

franka_ros_interface talks in `franka_core_msgs` and `franka_msgs` types, which only exist as Python
classes inside a built catkin workspace. When they are importable we use them. Otherwise we build the
same classes at run time from the `.msg` definitions in `communicators/franka/ros/msg/` with genmsg and
genpy's code generator (Debian's python3-genmsg / python3-genpy), in memory: no files are written.
The generated classes carry the same type names and md5 sums as the originals, so they talk to a
real franka_ros_interface.

Example:
    >>> msgs = load_franka_msgs()                                    # doctest: +SKIP
    >>> msgs.JointCommand._md5sum                                    # doctest: +SKIP
    '766f72e801d6180a86db23dbf2c2a56f'
"""
from __future__ import annotations

import functools
import importlib
import pathlib
import threading
from dataclasses import dataclass
from typing import Any

from communicators.errors import RTRLError

MSG_DIR = pathlib.Path(__file__).parent / "msg"
"""Folder holding <package>/<Type>.msg definitions for the types we may have to generate."""

_SEPARATOR = "\n" + "=" * 80 + "\n"

# The franka types the ROS backend uses, in the order they are generated (dependencies first).
FRANKA_TYPES = (
    "franka_msgs/Errors",
    "franka_msgs/ErrorRecoveryGoal",
    "franka_msgs/ErrorRecoveryActionGoal",
    "franka_core_msgs/JointCommand",
    "franka_core_msgs/EndPointState",
    "franka_core_msgs/RobotState",
)
# genpy's generator keeps module-level state (struct patterns, serial context), so two threads
# generating at once corrupt each other's code; generation is serialised.
_GENERATE_LOCK = threading.Lock()

# Types from standard ROS packages the franka types refer to; taken from the installed classes.
_STANDARD_TYPES = ("std_msgs/Header", "geometry_msgs/WrenchStamped", "actionlib_msgs/GoalID")


class RosUnavailableError(RTRLError):
    """rospy or the ROS message tools cannot be imported."""


@dataclass(frozen=True)
class FrankaMsgs:
    """The message classes the ROS backend needs.

    Attributes:
        RobotState, EndPointState, JointCommand: franka_core_msgs classes.
        Errors, ErrorRecoveryActionGoal: franka_msgs classes.
        generated: True if built from `MSG_DIR` (no catkin workspace), False if imported.
    """

    RobotState: type
    EndPointState: type
    JointCommand: type
    Errors: type
    ErrorRecoveryActionGoal: type
    generated: bool


def _import_genmsg() -> tuple[Any, Any]:
    try:
        import genmsg
        import genmsg.msg_loader
        from genpy.generator import msg_generator
    except ImportError as exc:
        raise RosUnavailableError(
            "genmsg/genpy are not importable, so franka_core_msgs classes cannot be generated; "
            "run scripts/install_ros.sh (Debian python3-genmsg, python3-genpy) "
            f"or source a catkin workspace that has franka_core_msgs ({exc})"
        ) from exc
    return genmsg, msg_generator


def _installed_class(type_name: str) -> type:
    package, name = type_name.split("/")
    try:
        return getattr(importlib.import_module(f"{package}.msg"), name)
    except (ImportError, AttributeError) as exc:
        raise RosUnavailableError(
            f"ROS message {type_name} is not installed; run scripts/install_ros.sh ({exc})"
        ) from exc


def _register_full_text(genmsg: Any, context: Any, type_name: str, full_text: str) -> None:
    """Register a type and every type in its concatenated definition (as rospy ships it)."""
    own_text, *dependencies = full_text.split(_SEPARATOR)
    for block in dependencies:
        header, _, body = block.partition("\n")
        dep_type = header.removeprefix("MSG: ").strip()
        if not context.is_registered(dep_type):
            context.register(dep_type, genmsg.msg_loader.load_msg_from_string(context, body, dep_type))
    if not context.is_registered(type_name):
        spec = genmsg.msg_loader.load_msg_from_string(context, own_text, type_name)
        context.register(type_name, spec)


def _python_name(type_name: str) -> str:
    package, name = type_name.split("/")
    return f"_{package}__{name}"


def generate_classes(definitions: dict[str, str]) -> dict[str, type]:
    """Build genpy message classes from .msg texts, in memory.

    Args:
        definitions: type name ("pkg/Type") -> .msg text. Types they refer to must be either in
            `definitions` or installed ROS message classes (std_msgs, geometry_msgs, ...).

    Returns:
        type name -> message class, with the original `_type`, `_md5sum` and `_full_text`.

    Raises:
        RosUnavailableError: genmsg/genpy or a referenced standard message are missing.
        ValueError: a definition does not parse; the message names the type.
    """
    with _GENERATE_LOCK:
        return _generate_classes(definitions)


def _generate_classes(definitions: dict[str, str]) -> dict[str, type]:
    genmsg, msg_generator = _import_genmsg()
    context = genmsg.msg_loader.MsgContext.create_default()
    for type_name in _STANDARD_TYPES:
        cls = _installed_class(type_name)
        _register_full_text(genmsg, context, type_name, cls._full_text)
    specs = {}
    for type_name, text in definitions.items():
        try:
            specs[type_name] = genmsg.msg_loader.load_msg_from_string(context, text, type_name)
        except Exception as exc:  # genmsg raises several unrelated exception types
            raise ValueError(f"cannot parse the .msg definition of {type_name}: {exc}") from exc
        context.register(type_name, specs[type_name])

    namespace: dict[str, Any] = {}
    for type_name, spec in specs.items():
        package, name = type_name.split("/")
        code = "\n".join(msg_generator(context, spec, {}))
        # The generated module imports `<package>.msg` for every referenced type. Ours do not exist
        # as packages, so point those references at the classes generated into this namespace.
        for other in specs:
            other_package, other_name = other.split("/")
            code = code.replace(f"import {other_package}.msg\n", "\n")
            code = code.replace(f"{other_package}.msg.{other_name}", _python_name(other))
        code = code.replace(f"class {name}(", f"class {_python_name(type_name)}(")
        code = code.replace(f"super({name},", f"super({_python_name(type_name)},")
        exec(compile(code, f"<generated {type_name}>", "exec"), namespace)  # noqa: S102
    classes = {}
    for type_name in specs:
        cls = namespace[_python_name(type_name)]
        cls.__name__ = cls.__qualname__ = type_name.split("/")[1]
        classes[type_name] = cls
    return classes


def read_definitions(types: tuple[str, ...] = FRANKA_TYPES) -> dict[str, str]:
    """The .msg texts of `types` from `MSG_DIR`, keyed by type name."""
    definitions = {}
    for type_name in types:
        path = MSG_DIR / f"{type_name}.msg"
        if not path.is_file():
            raise FileNotFoundError(f"no message definition for {type_name}: {path} is missing")
        definitions[type_name] = path.read_text()
    return definitions


@functools.lru_cache(maxsize=None)
def load_franka_msgs(prefer_installed: bool = True) -> FrankaMsgs:
    """The franka message classes: installed ones if importable, else generated from `MSG_DIR`.

    Args:
        prefer_installed: False always generates (used by the tests to check the generator).
    """
    if prefer_installed:
        try:
            from franka_core_msgs.msg import EndPointState, JointCommand, RobotState
            from franka_msgs.msg import ErrorRecoveryActionGoal, Errors
            return FrankaMsgs(RobotState, EndPointState, JointCommand, Errors,
                              ErrorRecoveryActionGoal, generated=False)
        except ImportError:
            pass  # no catkin workspace: generate them below
    classes = generate_classes(read_definitions())
    return FrankaMsgs(
        RobotState=classes["franka_core_msgs/RobotState"],
        EndPointState=classes["franka_core_msgs/EndPointState"],
        JointCommand=classes["franka_core_msgs/JointCommand"],
        Errors=classes["franka_msgs/Errors"],
        ErrorRecoveryActionGoal=classes["franka_msgs/ErrorRecoveryActionGoal"],
        generated=True,
    )


def class_from_connection_header(type_name: str, md5sum: str, message_definition: str) -> type:
    """A class for whatever definition a publisher announced (its connection header).

    Lets a subscriber read a topic whose type differs in detail from ours (e.g. franka_msgs/Errors
    grew fields across franka_ros releases, changing RobotState's md5) by decoding with the
    publisher's own definition.

    Raises:
        ValueError: the generated class's md5 differs from the announced one.
    """
    return _class_from_header(type_name, md5sum, message_definition)


@functools.lru_cache(maxsize=16)
def _class_from_header(type_name: str, md5sum: str, message_definition: str) -> type:
    own_text, *dependencies = message_definition.split(_SEPARATOR)
    definitions = {}
    for block in dependencies:
        header, _, body = block.partition("\n")
        dep_type = header.removeprefix("MSG: ").strip()
        # Standard types come from the installed packages; everything else from the header.
        if dep_type.split("/")[0] not in ("std_msgs", "geometry_msgs", "actionlib_msgs"):
            definitions[dep_type] = body
    definitions[type_name] = own_text
    cls = generate_classes(definitions)[type_name]
    if cls._md5sum != md5sum:
        raise ValueError(
            f"{type_name}: generated md5 {cls._md5sum} differs from the publisher's {md5sum}"
        )
    return cls
