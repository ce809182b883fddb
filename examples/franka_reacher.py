"""Train (or evaluate) SAC on the Franka visual reacher, serially or with an asynchronous learner.

    python examples/franka_reacher.py                                # serial, sim, cpu preset
    python examples/franka_reacher.py --async_mode                   # learner in its own process
    python examples/franka_reacher.py --resume results/SACv2_reaching_dt=0.04_bs=64_dim=64*48_9
    python examples/franka_reacher.py --eval --load_model results/<run>/model/step_10000

Serial mode (SACv0) makes one update inline after every env step: the baseline whose updates
stretch the action cycle. Async mode (SACv2; SACv1 with --lock) updates in a learner process
capped at --max_update_freq updates per env step, and the actor takes the newest weights between
steps. The run's directory ``<work_dir>/results/<version>_<target>_dt=<dt>_bs=<batch>_dim=<W>*<H>_<seed>/``
holds args.json, train.csv, tb/ (TensorBoard), model/ (full checkpoints every --save_model_freq
env steps and on Ctrl-C), learning_curve.png, cycle_histogram.png and summary.json (cycle timing
p50/p99/max and overruns, updates/s, env steps/s, mean return of the last 20 episodes).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from rtrl_env.errors import EnvError  # noqa: E402
from examples.franka_reacher_loop import CtrlC, RunState, evaluate, save, summary, train  # noqa: E402
from sac.agent import SACAgent  # noqa: E402
from sac.async_learner import AsyncLearner, LearnerConfig  # noqa: E402
from sac.checkpoint import latest_checkpoint, load_trainer_state  # noqa: E402
from sac.config import get_preset  # noqa: E402
from sac.logger import Logger  # noqa: E402
from sac.plots import plot_cycle_histogram, plot_learning_curve  # noqa: E402
from sac.replay_buffer import SharedReplayBuffer  # noqa: E402

# Flags whose default (None) comes from --preset.
AGENT_FLAGS = ("batch_size", "rad_offset", "critic_lr", "critic_tau", "critic_target_update_freq",
               "actor_lr", "actor_update_freq", "encoder_tau", "discount", "init_temperature", "alpha_lr")
IMAGE_FLAGS = {"image_width": "image_width", "image_height": "image_height", "image_history": "image_history"}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    a = p.add_argument
    # environment
    a("--env", default="FrankaVisualReacher2-v0", help="FrankaVisualReacher2-v0 (2 joints) or FrankaVisualReacher-v0")
    a("--backend", default="sim", help="robot backend: sim, ros or libfranka")
    a("--camera_id", default=0, type=int, help="OpenCV camera index (real backends; the sim renders its own)")
    a("--robot_ip", default=None, help="libfranka backend: the robot's FCI address, e.g. 172.16.0.2")
    a("--image_width", type=int, help="camera image width, pixels (default: the preset's)")
    a("--image_height", type=int, help="camera image height, pixels (default: the preset's)")
    a("--image_history", type=int, help="stacked frames per observation (default: the preset's)")
    a("--target_type", default="reaching", help="target mode: reaching, tracking or static")
    a("--random_action_repeat", default=1, type=int, help="repeat each random action this many steps")
    a("--agent_action_repeat", default=1, type=int, help="repeat each policy action this many steps")
    a("--episode_length", default=4.0, type=float, help="episode length, s")
    a("--dt", default=0.04, type=float, help="action cycle, s")
    a("--realtime_priority", default=None, type=int,
      help="run the action cycle under SCHED_FIFO at this priority (1-99; needs root or CAP_SYS_NICE)")
    # replay buffer
    a("--replay_buffer_capacity", default=100_000, type=int, help="transitions kept")
    a("--rad_offset", type=float, help="random-crop margin per side, fraction of the image")
    # train
    a("--preset", default="cpu", help="network and image preset: cpu or seed")
    a("--init_step", default=1000, type=int, help="initial random-action steps before learning")
    a("--env_step", default=100_000, type=int, help="env steps to train after the initial ones")
    a("--batch_size", type=int, help="minibatch size")
    a("--async_mode", action="store_true", help="update in a learner process (default: serial)")
    a("--max_update_freq", default=10.0, type=float, help="async: at most this many updates per env step")
    a("--learner_threads", default=1, type=int, help="async: torch threads of the learner process")
    a("--learner_nice", default=LearnerConfig.nice, type=int,
      help="async: nice increment of the learner process (higher yields the CPU to the action cycle sooner)")
    a("--learner_restarts", default=0, type=int,
      help="async: restart a failed learner at most this many times, from the last checkpoint's agent "
      "(0: stop the run at the first failure)")
    a("--time_limit", default=0.0, type=float, help="stop after this many wall-clock seconds (0: no limit)")
    # critic / actor / encoder / sac
    a("--critic_lr", type=float, help="critic (and encoder) learning rate")
    a("--critic_tau", type=float, help="target Q networks' Polyak rate")
    a("--critic_target_update_freq", type=int, help="update targets every this many updates")
    a("--actor_lr", type=float, help="actor learning rate")
    a("--actor_update_freq", type=int, help="update the actor every this many updates")
    a("--encoder_tau", type=float, help="target encoder's Polyak rate")
    a("--discount", type=float, help="discount factor")
    a("--init_temperature", type=float, help="initial entropy temperature")
    a("--alpha_lr", type=float, help="temperature learning rate")
    # misc
    a("--seed", default=9, type=int, help="random seed")
    a("--work_dir", default=".", help="results go under <work_dir>/results/")
    a("--save_tb", default=True, action=argparse.BooleanOptionalAction, help="write TensorBoard logs")
    a("--save_model", default=True, action=argparse.BooleanOptionalAction, help="write checkpoints")
    a("--save_model_freq", default=10_000, type=int, help="checkpoint every this many env steps")
    a("--load_model", default=None, help="start from the agent of this checkpoint directory (or agent.pt)")
    a("--device", default="", help="torch device of the updates ('' picks cuda if present, else cpu)")
    a("--lock", action="store_true", help="kept for the seed's run names (SACv1): weights are always "
      "published whole here, so no lock is needed")
    a("--resume", default=None, metavar="DIR", help="continue the run in DIR from its latest checkpoint")
    a("--eval", action="store_true", help="evaluate --load_model deterministically; no learning")
    a("--eval_episodes", default=10, type=int, help="episodes in evaluation mode")
    return p


def resolve(args: argparse.Namespace):
    """Fills preset defaults into ``args``; returns the AgentConfig."""
    preset = get_preset(args.preset)
    for flag, attr in IMAGE_FLAGS.items():
        if getattr(args, flag) is None:
            setattr(args, flag, getattr(preset, attr))
    overrides = {f: getattr(args, f) for f in AGENT_FLAGS if getattr(args, f) is not None}
    config = dataclasses.replace(preset.agent, **overrides)
    for f in AGENT_FLAGS:
        setattr(args, f, getattr(config, f))
    if not args.device:
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    return config


def run_name(args: argparse.Namespace) -> str:
    version = "EVAL" if args.eval else "SACv0" if not args.async_mode else "SACv1" if args.lock else "SACv2"
    return (f"{version}_{args.target_type}_dt={args.dt}_bs={args.batch_size}_"
            f"dim={args.image_width}*{args.image_height}_{args.seed}")


def make_env(args: argparse.Namespace):
    import gymnasium

    import rtrl_env  # noqa: F401  (registers the ids)
    kwargs = dict(backend=args.backend, dt=args.dt, episode_length_s=args.episode_length,
                  image_width=args.image_width, image_height=args.image_height, frame_stack=args.image_history,
                  realtime_priority=args.realtime_priority)
    if args.backend == "sim":
        from communicators.target.target_motion import TargetConfig
        kwargs["target"] = TargetConfig(mode=args.target_type)
    else:
        from communicators.camera.opencv_camera_communicator import (OpenCVCameraCommunicator,
                                                                     OpenCVCameraConfig)
        from communicators.target.target_display_communicator import TargetDisplayConfig
        from communicators.target.target_motion import TargetConfig
        cam = OpenCVCameraConfig(source=args.camera_id, width=args.image_width, height=args.image_height)
        kwargs["camera"] = lambda built: OpenCVCameraCommunicator(cam)
        # The red dot on the monitor moves in normalised screen coordinates.
        kwargs["target"] = TargetDisplayConfig(motion=TargetConfig(mode=args.target_type, low=(0.1, 0.1, 0.0),
                                                                   high=(0.9, 0.9, 0.0), speed=0.2, rate_hz=60.0))
    if args.backend == "libfranka":
        from communicators.franka.libfranka import LibfrankaConfig
        kwargs["robot_config"] = LibfrankaConfig(robot_ip=args.robot_ip)
    return gymnasium.make(args.env, **kwargs).unwrapped


def agent_file(path: str) -> str:
    candidate = os.path.join(path, "agent.pt") if os.path.isdir(path) else path
    if not os.path.isfile(candidate):
        raise SystemExit(f"--load_model {path}: no agent.pt there; give a checkpoint directory "
                         f"(<run>/model/step_<S>) or an agent.pt file")
    return candidate


def save_after_env_error(args, run_dir: str, env, agent, replay, learner, state: RunState, err: EnvError) -> int:
    """A device or the env's loop failed mid-run: the arm is stopped, the learning is intact. Keep it."""
    print(f"the environment failed at step {state.step}: {err}", file=sys.stderr, flush=True)
    try:
        env.close()
    except EnvError as close_err:  # the failed process may fail its close too; the save matters more
        print(f"closing the environment: {close_err}", file=sys.stderr, flush=True)
    if args.save_model:
        path = save(run_dir, agent, replay, learner, state)
        print(f"saved {path} (step {state.step}, episode {state.episode}); continue with --resume {run_dir} "
              f"once the device works again", file=sys.stderr, flush=True)
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    resume_dir = args.resume
    if resume_dir:
        with open(os.path.join(resume_dir, "args.json")) as f:
            saved = json.load(f)
        # Defaults first: a run saved before a flag existed resumes with that flag's default.
        args = argparse.Namespace(**{**vars(parser.parse_args([])), **saved, "resume": resume_dir, "eval": False})
    agent_config = resolve(args)
    run_dir = resume_dir or os.path.join(args.work_dir, "results", run_name(args))
    if args.eval and not args.load_model:
        print("--eval needs --load_model <checkpoint directory>", file=sys.stderr)
        return 2
    if args.backend == "libfranka" and not args.robot_ip:
        print("--backend libfranka needs --robot_ip, the robot's FCI address (e.g. 172.16.0.2)", file=sys.stderr)
        return 2
    if not resume_dir:
        if os.path.exists(run_dir):
            print(f"results directory {run_dir} already exists; continue it with --resume {run_dir}, "
                  f"or pick another --seed or --work_dir, or delete it", file=sys.stderr)
            return 2
        os.makedirs(os.path.join(run_dir, "model"))
        with open(os.path.join(run_dir, "args.json"), "w") as f:
            json.dump(vars(args), f, sort_keys=True, indent=4)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)

    stop = CtrlC()  # from here on, processes we start ignore the terminal's Ctrl-C
    env = replay = learner = None
    logger = Logger(run_dir, use_tb=args.save_tb, append=bool(resume_dir))
    try:
        env = make_env(args)
        space = env.observation_space
        agent = SACAgent(space["image"].shape, space["proprioception"].shape[0], env.action_space.shape[0],
                         agent_config, device=args.device, seed=args.seed)
        if args.eval:
            agent.load_state_dict(torch.load(agent_file(args.load_model), weights_only=False))
            evaluate(args, env, agent, logger, stop)
            return 0
        replay = SharedReplayBuffer(space["image"].shape, space["proprioception"].shape[0],
                                    env.action_space.shape[0], args.replay_buffer_capacity)
        print(f"replay buffer: {replay.capacity} transitions, {replay.frame_capacity} frames of "
              f"3x{args.image_height}x{args.image_width} uint8, {replay.nbytes / 1e9:.2f} GB of shared memory",
              flush=True)
        state = RunState(action_rng=np.random.default_rng(args.seed))
        if resume_dir:
            checkpoint = latest_checkpoint(os.path.join(run_dir, "model"))
            if checkpoint is None:
                print(f"--resume {run_dir}: no complete checkpoint under {run_dir}/model (the run stopped "
                      f"before its first save); delete {run_dir} and start it again", file=sys.stderr)
                return 2
            agent.load_state_dict(torch.load(os.path.join(checkpoint, "agent.pt"), weights_only=False))
            replay.load(os.path.join(checkpoint, "replay.npz"))
            state = RunState.from_dict(load_trainer_state(checkpoint))
            print(f"resumed {checkpoint}: step {state.step}, episode {state.episode}", flush=True)
        elif args.load_model:
            agent.load_state_dict(torch.load(agent_file(args.load_model), weights_only=False))
        if args.async_mode:
            learner = AsyncLearner(agent, replay, LearnerConfig(
                max_update_freq=args.max_update_freq, update_after=args.init_step,
                num_threads=args.learner_threads, nice=args.learner_nice, max_restarts=args.learner_restarts,
                device=args.device)).start()
            learner.wait_ready()
        else:
            torch.set_num_threads(1)  # one core for the loop and its inline updates; the sim has the other
        try:
            train(args, run_dir, env, agent, replay, learner, logger, state, stop)
        except EnvError as err:
            return save_after_env_error(args, run_dir, env, agent, replay, learner, state, err)
        env.close()  # the robot stops before a save that may take a while
        figures = summary(args, state, learner.num_updates if learner is not None else agent.num_updates)
        with open(os.path.join(run_dir, "summary.json"), "w") as f:
            json.dump(figures, f, indent=2)
        if args.save_model:
            path = save(run_dir, agent, replay, learner, state)
            print(f"saved {path} (step {state.step}, episode {state.episode})", flush=True)
        plot_learning_curve(os.path.join(run_dir, "learning_curve.png"), state.episode_end_steps,
                            state.returns, run_name(args))
        plot_cycle_histogram(os.path.join(run_dir, "cycle_histogram.png"), np.array(state.periods),
                             args.dt, run_name(args))
        return 0
    finally:
        if env is not None:
            env.close()
        if learner is not None:
            learner.stop()
        if replay is not None:
            replay.close()
        logger.close()
        stop.restore()


if __name__ == "__main__":
    sys.exit(main())
