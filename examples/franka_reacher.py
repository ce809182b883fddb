"""Train (or evaluate) SAC on the Franka visual reacher, serially or with an asynchronous learner.

    python examples/franka_reacher.py                                # serial, sim, cpu preset
    python examples/franka_reacher.py --async_mode                   # learner in its own process
    python examples/franka_reacher.py --resume results/SACv2_reaching_dt=0.04_bs=64_dim=64*48_9
    python examples/franka_reacher.py --eval --load_model results/<run>/model/step_10000
    python examples/franka_reacher.py --help                         # every flag, its unit and default

The training loop, its settings and every way a run ends live in the library (sac/training/);
this script is the command users run, as the seed's franka_train.py was. The same entry point is
installed as the ``franka-reacher`` console script.
"""
import sys

from sac.training import main

if __name__ == "__main__":
    sys.exit(main())
