"""Where ROS 2's Python packages (rclpy, the messages, Fast DDS) are, and how a process imports them.

They come from PyPI wheels (setup.py's "ros2" extra), in one of two places:

1. This interpreter's own environment (`pip install '.[ros2]'` into a venv without ROS 1). The
   wheels' .pth hook set LD_LIBRARY_PATH when Python started; any process can import rclpy.
2. A venv of their own: $RTRL_ROS2_VENV, else `.venv-ros2` at the repository root
   (scripts/install_ros2.sh, which `make test` runs). Needed where the main venv also reaches
   ROS 1's Debian packages: both ship top-level `sensor_msgs`, `std_msgs` and `rosgraph_msgs`, so
   one shadows the other. A process that imports rclpy from there must be *started* with the
   venv's library folders on LD_LIBRARY_PATH (the dynamic loader reads it once, at exec: a
   forked child cannot get it), and puts the venv's site-packages on sys.path ahead of ROS 1's.

The parent process only computes paths here; `activate()` runs in the process that imports rclpy.

Check an installation: `python -m communicators.franka.ros2.ros2_runtime` (imports, no network).
"""
from __future__ import annotations

import importlib.util
import os
import site
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROS2_VENV_ENV = "RTRL_ROS2_VENV"
"""Environment variable naming the ROS 2 venv (overrides the default `.venv-ros2`)."""
DEFAULT_ROS2_VENV = Path(__file__).resolve().parents[3] / ".venv-ros2"
_INSTALL_HINT = ("run scripts/install_ros2.sh (a .venv-ros2 beside the main venv; `make test` does it), "
                 f"or set {ROS2_VENV_ENV}, or `pip install '.[ros2]'` into a venv without ROS 1")


@dataclass(frozen=True)
class Ros2Runtime:
    """The ROS 2 packages one process imports.

    Attributes:
        venv: the separate venv holding them, or None when they are in this interpreter's own
            environment.
    """

    venv: Path | None = None

    @property
    def site_packages(self) -> Path | None:
        """The venv's site-packages (for this interpreter's Python version), or None."""
        if self.venv is None:
            return None
        return self.venv / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"

    @property
    def needs_exec(self) -> bool:
        """True if a process importing rclpy must be exec'd with `environment()` (spawn, not fork)."""
        return self.venv is not None

    def library_dirs(self) -> list[str]:
        """Folders of the wheels' C libraries: <venv>/lib and site-packages/ros_*.libs."""
        if self.venv is None:
            return []
        return [str(self.venv / "lib")] + sorted(str(p) for p in self.site_packages.glob("ros_*.libs"))

    def environment(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """Environment for a new process that imports rclpy: `base` (os.environ) plus the library path."""
        env = dict(os.environ if base is None else base)
        dirs = self.library_dirs()
        if dirs:
            old = [p for p in env.get("LD_LIBRARY_PATH", "").split(os.pathsep) if p and p not in dirs]
            env["LD_LIBRARY_PATH"] = os.pathsep.join(dirs + old)
        return env

    @contextmanager
    def exec_environment(self) -> Iterator[None]:
        """Within the block, processes exec'd from this one (multiprocessing spawn) get `environment()`.

        Sets LD_LIBRARY_PATH in os.environ and puts the old value back afterwards; do not start
        other processes from other threads meanwhile.
        """
        if not self.needs_exec:
            yield
            return
        old = os.environ.get("LD_LIBRARY_PATH")
        os.environ["LD_LIBRARY_PATH"] = self.environment()["LD_LIBRARY_PATH"]
        try:
            yield
        finally:
            if old is None:
                os.environ.pop("LD_LIBRARY_PATH", None)
            else:
                os.environ["LD_LIBRARY_PATH"] = old

    def started_with_libraries(self) -> bool:
        """Whether this process was started with the library folders on LD_LIBRARY_PATH."""
        have = os.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep)
        return all(d in have for d in self.library_dirs())

    def activate(self) -> None:
        """Makes rclpy and the ROS 2 messages importable in this process (call before importing them).

        Raises:
            ImportError: the process was not started with `environment()`; says how to start it.
        """
        if self.venv is None:
            return
        if not self.started_with_libraries():
            raise ImportError(
                f"this process (pid {os.getpid()}) was started without the ROS 2 libraries of "
                f"{self.venv} on LD_LIBRARY_PATH; start it with Ros2Runtime.environment() "
                "(a forked child cannot get them: use the spawn start method)")
        path = str(self.site_packages)
        if path not in sys.path:
            index = _after_site_packages()
            sys.path.insert(index, path)
            _forget_shadowed_modules(self.site_packages, later=sys.path[index + 1:])

    def reexec_if_needed(self) -> None:
        """For a script's main process: exec it again with `environment()` if it lacks the libraries."""
        if self.venv is not None and not self.started_with_libraries():
            os.execve(sys.executable, sys.orig_argv, self.environment())


def _after_site_packages() -> int:
    """Index in sys.path just after this venv's own site-packages, before .pth additions
    such as ROS 1's /usr/lib/python3/dist-packages."""
    own = set(site.getsitepackages())
    hits = [i for i, p in enumerate(sys.path) if p in own]
    return hits[-1] + 1 if hits else 0


def _forget_shadowed_modules(site_packages: Path, later: list[str]) -> None:
    """Drops modules imported from a sys.path entry now behind `site_packages` under a name it
    provides too (ROS 1's std_msgs, say): sys.modules would serve them before the new path."""
    later_dirs = tuple(str(Path(p).absolute()) + os.sep for p in later if p)
    provides: dict[str, bool] = {}
    for name in list(sys.modules):
        top = name.partition(".")[0]
        if top not in provides:
            provides[top] = (site_packages / top).is_dir()
        origin = getattr(sys.modules[name], "__file__", None) or ""
        if provides[top] and origin.startswith(later_dirs):
            del sys.modules[name]


def find_ros2_runtime(venv: str | os.PathLike | None = None) -> Ros2Runtime:
    """Finds ROS 2's packages without importing them (safe in the parent process).

    Args:
        venv: a ROS 2 venv to use; None tries $RTRL_ROS2_VENV, then this interpreter's own
            environment, then `.venv-ros2` at the repository root.

    Raises:
        ImportError: none found, or the venv given has no rclpy for this Python; says how to fix.
    """
    if venv is None and os.environ.get(ROS2_VENV_ENV):
        venv = os.environ[ROS2_VENV_ENV]
    if venv is None:
        if importlib.util.find_spec("rclpy") is not None:
            return Ros2Runtime(None)
        if not DEFAULT_ROS2_VENV.exists():
            raise ImportError(f"ROS 2's rclpy is not installed for this Python: {_INSTALL_HINT}")
        venv = DEFAULT_ROS2_VENV
    runtime = Ros2Runtime(Path(venv).absolute())
    if not (runtime.site_packages / "rclpy" / "__init__.py").is_file():
        raise ImportError(
            f"the ROS 2 venv {str(venv)!r} has no rclpy under {runtime.site_packages} (it must be "
            f"built for Python {sys.version_info[0]}.{sys.version_info[1]}, like this interpreter): "
            f"{_INSTALL_HINT}")
    return runtime


def main() -> int:
    """Imports rclpy and the messages the backend uses, as the communicator's child does."""
    runtime = find_ros2_runtime()
    runtime.reexec_if_needed()
    runtime.activate()
    import rclpy  # noqa: F401 - the import is the check
    from sensor_msgs.msg import JointState  # noqa: F401
    from std_msgs.msg import Float64MultiArray  # noqa: F401

    print(f"ros2_runtime: rclpy, sensor_msgs, std_msgs import from {Path(rclpy.__file__).parents[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
