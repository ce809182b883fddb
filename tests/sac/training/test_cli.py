"""The training command line: every bad flag is one line naming the flag before anything is made,
--help documents every flag, and --resume takes the flags that may change and refuses the others."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
import torch

from sac.training import cli
from sac.training.cli import UsageError, build_parser, parse

pytestmark = pytest.mark.timeout(120)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
SCRIPT = os.path.join(ROOT, "examples", "franka_reacher.py")

BAD = [
    (["--dt", "0"], "--dt 0: must be a positive number of seconds, e.g. --dt 0.04"),
    (["--dt", "abc"], "--dt abc: must be a number"),
    (["--backend", "foo"], "--backend foo: must be one of sim, ros, ros2, libfranka"),
    (["--replay_buffer_capacity", "-5"], "--replay_buffer_capacity -5: must be a whole number >= 1"),
    (["--time_limit", "-5"], "--time_limit -5: must be a number of seconds >= 0"),
    (["--save_model_freq", "0"], "--save_model_freq 0: must be a whole number >= 1"),
    (["--init_step", "-5"], "--init_step -5: must be a whole number >= 0"),
    (["--random_action_repeat", "0"], "--random_action_repeat 0: must be a whole number >= 1"),
    (["--camera_fps", "0"], "--camera_fps 0: must be a positive number of frames/s, e.g. --camera_fps 30"),
    (["--episode_length", "1.01"], "--episode_length 1.01: must be a whole number of cycles of dt=0.04 s, "
                                   "e.g. --episode_length 1.0"),
    (["--image_history", "0"], "--image_history 0: must be a whole number >= 1"),
    (["--image_width", "4"], "--image_width 4: is too small for the cpu preset's encoder"),
    (["--batch_size", "0"], "--batch_size 0: must be a whole number >= 1"),
    (["--discount", "1.5"], "--discount 1.5: must be a number in [0, 1]"),
    (["--learner_threads", "0"], "--learner_threads 0: must be a whole number >= 1"),
    (["--learner_nice", "40"], "--learner_nice 40: must be a whole number in 0..19"),
    (["--learner_scheduler", "fifo"], "--learner_scheduler fifo: must be one of other, batch, idle"),
    (["--realtime_priority", "100"], "--realtime_priority 100: must be None or a whole number in 1..99"),
    (["--target_type", "circle"], "--target_type circle: must be one of reaching, tracking, static"),
    (["--target_seed", "-1"], "--target_seed -1: must be a whole number >= 0, e.g. --target_seed 9"),
    (["--replay_buffer_capacity", "100000000"], "--replay_buffer_capacity 100000000: needs"),
    (["--backend", "libfranka"], "--robot_ip: must be given with --backend libfranka: the robot's FCI address, "
                                 "e.g. --robot_ip 172.16.0.2"),
    (["--backend", "ros2", "--joint_states_topic", "joint states"],
     "--joint_states_topic joint states: is no valid ROS 2 topic name"),
    (["--eval"], "--eval: needs --load_model <checkpoint directory>"),
    (["--load_model", "/no/such/checkpoint"], "--load_model /no/such/checkpoint: has no agent.pt"),
    (["--resume", "/no/such/run"], "--resume /no/such/run: no run there (no args.json)"),
    (["--bogus", "3"], "unrecognized arguments: --bogus 3; see --help"),
]
if not torch.cuda.is_available():
    BAD.append((["--device", "cuda"], "--device cuda: is not available: torch sees no CUDA device here, "
                                      "e.g. --device cpu"))


@pytest.mark.parametrize("argv, message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_a_bad_flag_is_one_line_naming_it_with_exit_code_2_and_nothing_is_created(argv, message, tmp_path, capsys):
    assert cli.main([*argv, "--work_dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(message), err
    assert os.listdir(tmp_path) == [], "a run that cannot start must not create anything"


def test_the_script_itself_prints_the_error_without_a_traceback(tmp_path):
    run = subprocess.run([sys.executable, SCRIPT, "--dt", "0", "--work_dir", str(tmp_path)],
                         capture_output=True, text=True, timeout=100)
    assert run.returncode == 2
    assert run.stderr == "--dt 0: must be a positive number of seconds, e.g. --dt 0.04\n"
    assert "Traceback" not in run.stdout + run.stderr and not os.listdir(tmp_path)


SEED_FLAGS = ["--async_mode", "--dt", "--episode_length", "--image_width", "--image_height", "--image_history",
              "--target_type", "--batch_size", "--init_step", "--env_step", "--max_update_freq",
              "--replay_buffer_capacity", "--critic_lr", "--critic_tau", "--critic_target_update_freq", "--actor_lr",
              "--actor_update_freq", "--encoder_tau", "--discount", "--init_temperature", "--alpha_lr", "--seed",
              "--work_dir", "--save_model_freq", "--load_model", "--device", "--camera_id", "--lock",
              "--random_action_repeat", "--agent_action_repeat", "--save_tb", "--save_model", "--rad_offset"]


def test_help_lists_every_seed_flag_with_its_doc_default_and_unit():
    text = re.sub(r"\s+", " ", build_parser().format_help())
    for flag in SEED_FLAGS:
        assert flag in text, flag
    assert "--dt DT action cycle; unit: s; default: 0.04" in text
    assert "--batch_size BATCH_SIZE minibatch size; unit: transitions; default: the preset's" in text
    assert "--time_limit TIME_LIMIT" in text and "may change on --resume" in text
    assert "143 SIGTERM" in text  # the exit codes are documented


@pytest.fixture
def stored_run(tmp_path):
    """A run directory as a first start leaves it (args.json written, lock released)."""
    config, _ = parse(["--init_step", "50", "--env_step", "100", "--batch_size", "16", "--work_dir", str(tmp_path)])
    run_dir, _ = cli._open_run(config, None)
    run_dir.release()
    return run_dir.path


def test_resume_takes_the_flags_that_may_change_and_keeps_the_others(stored_run):
    config, resume = parse(["--resume", stored_run, "--time_limit", "60", "--env_step", "500", "--learner_threads",
                            "2", "--device", "cpu", "--save_model_freq", "25"])
    assert resume == stored_run
    assert (config.run.time_limit, config.run.env_step, config.learner.learner_threads,
            config.run.save_model_freq) == (60.0, 500, 2, 25)
    assert config.agent.batch_size == 16 and config.run.init_step == 50  # the run's own
    run_dir, _ = cli._open_run(config, resume)
    run_dir.release()
    with open(os.path.join(stored_run, "args.json")) as f:
        recorded = json.load(f)
    assert recorded["time_limit"] == 60.0 and recorded["env_step"] == 500  # the new values are recorded


@pytest.mark.parametrize("argv, message", [
    (["--dt", "0.05"], "--dt 0.05: cannot change on --resume (the run has --dt 0.04)"),
    (["--batch_size", "32"], "--batch_size 32: cannot change on --resume (the run has --batch_size 16)"),
    (["--image_width", "80"], "--image_width 80: cannot change on --resume (the run has --image_width 64)"),
    (["--target_type", "static"], "--target_type static: cannot change on --resume (the run has --target_type reaching)"),
    (["--async_mode"], "--async_mode True: cannot change on --resume (the run has --async_mode False)"),
], ids=["dt", "batch", "image", "target", "mode"])
def test_resume_refuses_a_flag_that_cannot_change_naming_the_stored_and_new_value(stored_run, argv, message):
    with pytest.raises(UsageError, match=re.escape(message)):
        parse(["--resume", stored_run, *argv])


def test_resume_of_a_run_saved_before_a_flag_existed_gives_that_flag_its_default(stored_run):
    path = os.path.join(stored_run, "args.json")
    with open(path) as f:
        stored = json.load(f)
    del stored["learner_restarts"], stored["realtime_priority"]
    with open(path, "w") as f:
        json.dump(stored, f)
    config, _ = parse(["--resume", stored_run])
    assert config.learner.learner_restarts == 0 and config.env.realtime_priority is None


@pytest.mark.parametrize("spec, message", [
    ("nomodule", "--sensor nomodule: must be MODULE:FACTORY or MODULE:FACTORY:ARG"),
    ("no_such_module:factory", "--sensor no_such_module:factory: cannot import module 'no_such_module'"),
    ("rtrl_env.reacher.sensors:nope", "--sensor rtrl_env.reacher.sensors:nope: module 'rtrl_env.reacher.sensors' "
                                      "has no function 'nope'"),
    ("rtrl_env.reacher.sensors:opencv_camera", "--sensor rtrl_env.reacher.sensors:opencv_camera: opencv_camera() "
                                               "raised ValueError: opencv_camera needs a source"),
    ("numpy:zeros:3", "--sensor numpy:zeros:3: zeros('3') raised"),
], ids=["no-factory", "no-module", "no-function", "factory-raises", "not-a-sensor"])
def test_a_bad_sensor_spec_is_named_before_anything_starts(spec, message, tmp_path, capsys):
    assert cli.main(["--sensor", spec, "--work_dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith(message) and not os.listdir(tmp_path)


def test_sensors_from_the_command_line_reach_the_env_config_under_their_keys():
    from sac.training import build

    config, _ = parse(["--sensor", "rtrl_env.reacher.sensors:scene_camera:40x30"])
    assert config.env.sensor == ["rtrl_env.reacher.sensors:scene_camera:40x30"]
    extra = build.reacher_config(config).extra_sensors
    assert list(extra) == ["scene_image"] and extra["scene_image"].space.shape == (3, 30, 40)


def test_blank_image_from_the_command_line_reaches_the_env_config():
    from sac.training import build

    config, _ = parse(["--blank_image", "--sensor", "rtrl_env.reacher.sensors:target_position"])
    reacher = build.reacher_config(config)
    assert reacher.blank_image is True and list(reacher.extra_sensors) == ["target_position"]
    assert build.reacher_config(parse([])[0]).blank_image is False


def test_the_ros2_joint_states_topic_flag_reaches_the_robot_config_and_may_change_on_resume():
    from sac.training import build
    from sac.training.settings import MAY_CHANGE, TrainConfig, setting_fields

    config = build.with_preset(TrainConfig.from_flat(dict(backend="ros2", joint_states_topic="/franka/joint_states")))
    assert build.env_kwargs(config)["robot_config"].joint_states_topic == "/franka/joint_states"
    assert "robot_config" not in build.env_kwargs(build.with_preset(TrainConfig.from_flat(dict(backend="ros2"))))
    (field,) = [f for _, f in setting_fields() if f.name == "joint_states_topic"]
    assert field.metadata["on_resume"] == MAY_CHANGE


def test_the_target_seed_flag_seeds_the_sim_target_and_the_display_target_and_may_change_on_resume(tmp_path):
    from sac.training import build
    from sac.training.settings import MAY_CHANGE, TrainConfig, setting_fields
    from tests.support.video import write_clip

    assert build.env_kwargs(build.with_preset(TrainConfig.from_flat({})))["target"].seed is None
    assert build.env_kwargs(build.with_preset(TrainConfig.from_flat(dict(target_seed=9))))["target"].seed == 9
    clip = write_clip(tmp_path / "clip.avi", n_frames=1, fps=30.0)
    display = build.env_kwargs(build.with_preset(TrainConfig.from_flat(dict(backend="ros", camera=clip,
                                                                            target_seed=9))))["target"]
    assert display.motion.seed == 9
    (field,) = [f for _, f in setting_fields() if f.name == "target_seed"]
    assert field.metadata["on_resume"] == MAY_CHANGE


def test_the_camera_fps_flag_sets_the_real_wrist_cameras_rate_and_its_freshness_period(tmp_path):
    from sac.training import build
    from sac.training.settings import TrainConfig
    from tests.support.video import write_clip

    clip = write_clip(tmp_path / "clip.avi", n_frames=1, fps=30.0)
    for flags, period in ((dict(camera_fps=5.0), 0.2), ({}, 0.1)):  # unset: held to 10 fps
        config = build.with_preset(TrainConfig.from_flat(dict(backend="ros", camera=clip, **flags)))
        camera = build.env_kwargs(config)["camera"]({})
        try:
            assert camera.config.fps == flags.get("camera_fps") and camera.expected_period_s == pytest.approx(period)
        finally:
            camera.close()
