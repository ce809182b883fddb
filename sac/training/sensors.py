"""``--sensor MODULE:FACTORY[:ARG]``: extra sensors plugged into a training run without editing library code.

The factory is imported from ``MODULE`` (the current directory first, then the installed
packages), called with ``ARG`` (one string) if given, and must return an
:class:`~rtrl_env.reacher.devices.ExtraSensor`; its observation key is ``ExtraSensor.name``, or
else the factory's name. A run records its specs in args.json, and ``--resume`` imports them
again. Nothing starts here: the sensor's process starts with the env.
"""
from __future__ import annotations

import importlib
import os
import sys

from rtrl_env.reacher.devices import ExtraSensor
from sac.training.settings import SettingError


def load_sensor(spec: str) -> tuple[str, ExtraSensor]:
    """The observation key and the ExtraSensor that ``spec`` names.

    Raises:
        SettingError: (``field`` "sensor") the spec is malformed, the module or factory is
            missing, or the factory fails or returns something else; the message says which.
    """
    def bad(requirement: str) -> SettingError:
        return SettingError("EnvSettings", "sensor", spec, requirement)

    module_name, _, rest = spec.partition(":")
    factory_name, _, arg = rest.partition(":")
    if not module_name or not factory_name.isidentifier():
        raise bad("must be MODULE:FACTORY or MODULE:FACTORY:ARG, e.g. rtrl_env.reacher.sensors:scene_camera")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # as `python -m` does: the user's own modules are found
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise bad(f"cannot import module {module_name!r} ({err})") from None
    factory = getattr(module, factory_name, None)
    if not callable(factory):
        raise bad(f"module {module_name!r} has no function {factory_name!r}")
    try:
        sensor = factory(arg) if arg else factory()
    except Exception as err:  # noqa: BLE001 - the user's factory: say what it raised
        call = f"{factory_name}({arg!r})" if arg else f"{factory_name}()"
        raise bad(f"{call} raised {type(err).__name__}: {err}") from None
    if not isinstance(sensor, ExtraSensor):
        raise bad(f"{factory_name} returned a {type(sensor).__name__}, not an rtrl_env.reacher.devices.ExtraSensor")
    return sensor.name or factory_name, sensor


def load_sensors(specs: list[str]) -> dict[str, ExtraSensor]:
    """Every ``--sensor``, by observation key.

    Raises:
        SettingError: a bad spec (see :func:`load_sensor`), or two sensors with one key.
    """
    sensors: dict[str, ExtraSensor] = {}
    for spec in specs:
        key, sensor = load_sensor(spec)
        if key in sensors:
            raise SettingError("EnvSettings", "sensor", spec, f"gives observation key {key!r} a second time")
        sensors[key] = sensor
    return sensors
