"""A small device and env written against SenseAct 0.1.x's API, ported by changing the imports only.

Written the way SenseAct's own devices and envs are (senseact/devices/*, senseact/envs/*): shared
``multiprocessing.Value`` state, handlers that sleep themselves, a ``_reset_`` that drives the
device through its buffers, ``_compute_sensation_`` returning ``[observation..., reward, done]``.
The only lines changed from SenseAct code are these imports, which were::

    from senseact.communicator import Communicator
    from senseact.rtrl_base_env import RTRLBaseEnv

The servo is simulated (position integrates the commanded velocity): no real servo exists here,
and the thing under test is the SenseAct machinery around it, which is all real.
"""

import time
from multiprocessing import Value

import numpy as np

from communicators.senseact import Communicator
from rtrl_env.senseact import RTRLBaseEnv


class ServoCommunicator(Communicator):
    """A velocity-controlled servo: publishes [position, commanded velocity] every ``dt``."""

    def __init__(self, dt=0.005, buffer_len=10, crash_flag=None):
        self._dt = dt
        self.position = Value('d', 0.0)
        self.velocity = Value('d', 0.0)
        self.actuator_calls = Value('i', 0)
        self.closed = Value('i', 0)
        self.crash_flag = crash_flag if crash_flag is not None else Value('i', 0)
        sensor_args = {'buffer_len': buffer_len, 'array_len': 2, 'array_type': 'd', 'np_array_type': 'd'}
        actuator_args = {'array_len': 1, 'array_type': 'd', 'np_array_type': 'd'}
        super().__init__(use_sensor=True, use_actuator=True, sensor_args=sensor_args, actuator_args=actuator_args)

    def _sensor_handler(self):
        if self.crash_flag.value == 1:
            raise Exception("servo sensor failure on demand")
        self.position.value += self.velocity.value * self._dt
        self.sensor_buffer.write([self.position.value, self.velocity.value])
        time.sleep(self._dt)

    def _actuator_handler(self):
        self.actuator_calls.value += 1
        if self.actuator_buffer.updated():
            command, _, _ = self.actuator_buffer.read_update()
            self.velocity.value = float(command[0][0])
        time.sleep(0.001)

    def _close(self, *args, **kwargs):
        self.velocity.value = 0.0
        self.closed.value = 1


class ServoReacherEnv(RTRLBaseEnv):
    """Move the servo to a target drawn at every reset; observation: positions, target."""

    def __init__(self, obs_history=2, episode_length_step=50, reset_time=0.0, buffer_len=10, **kwargs):
        self.obs_history = obs_history
        self.episode_length_step = episode_length_step
        self.reset_time = reset_time
        self.crash_flag = Value('i', 0)
        self.reset_count = Value('i', 0)
        self._target_ = Value('d', 0.0)
        self.episode_steps = 0
        communicator_setups = {'servo': {'Communicator': ServoCommunicator,
                                         'kwargs': {'buffer_len': buffer_len},
                                         'num_sensor_packets': obs_history}}
        super().__init__(communicator_setups=communicator_setups, action_dim=1,
                         observation_dim=obs_history + 1, **kwargs)
        self.target = 0.0  # a plain attribute: _reset_ sets it, _compute_sensation_ reads it
        self.window_lengths = []  # what _compute_sensation_ was given, in the loop's process

    def _reset_(self):
        self.target = float(self._rand_obj_.uniform(0.2, 0.5))
        self._target_.value = self.target
        # Bring the servo back to 0 through its buffers, as SenseAct envs do.
        servo = self._actuator_comms['servo']
        start = time.time()
        while time.time() - start < 5:
            window, _, _ = self._sensor_comms['servo'].sensor_buffer.read()
            if abs(window[0][0]) < 0.02:
                break
            servo.actuator_buffer.write(-np.clip(5 * window[0][0], -1, 1))
            time.sleep(0.005)
        servo.actuator_buffer.write(0)
        time.sleep(self.reset_time)
        self.reset_count.value += 1

    def _compute_sensation_(self, name, sensor_window, timestamp_window, index_window):
        if self.crash_flag.value == 1:
            raise Exception("compute sensation failure on demand")
        self.window_lengths.append(len(sensor_window))
        positions = np.array([sensor_window[i][0] for i in range(self.obs_history)])
        reward = -abs(self.target - positions[-1])
        done = abs(self.target - positions[-1]) < 0.01
        return np.concatenate((positions, [self.target], [reward], [done]))

    def _compute_actuation_(self, action, timestamp, index):
        self._actuation_packet_['servo'] = np.clip(action, -1, 1)

    def _check_done(self, env_done):
        self.episode_steps += 1
        return bool(env_done) or self.episode_steps >= self.episode_length_step

    def reset(self, blocking=True):
        obs = super().reset(blocking=blocking)
        self.episode_steps = 0
        return obs
