# Two commands do everything on a fresh Debian/Ubuntu machine with Python >= 3.10:
#   make run    trains the SAC agent on the simulated Franka visual reacher
#   make test   installs what the tests need (ROS 1 from apt, ROS 2 and franka-sim in venvs of their
#               own) and runs them
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

RUN_ARGS ?= --async_mode

.PHONY: run test install install-ros install-ros2 install-franka-sim install-ray benchmark clean

# Debian's python3 needs python3-venv for `-m venv`; MuJoCo's headless EGL rendering needs the
# GL dispatch libraries and Mesa's software EGL/GL drivers (no GPU needed).
SYSTEM_PACKAGES := python3-venv libegl1 libopengl0 libegl-mesa0 libgl1-mesa-dri

$(VENV)/.installed: setup.py
	bash scripts/apt_install.sh $(SYSTEM_PACKAGES)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[sim,camera,sac,dev]'
	touch $@

install: $(VENV)/.installed

install-ros: install
	bash scripts/install_ros.sh $(VENV)

# ROS 2 wheels (setup.py's "ros2" extra) in .venv-ros2: in the main venv they would shadow ROS 1.
install-ros2: install
	MAIN_VENV=$(VENV) bash scripts/install_ros2.sh

install-franka-sim: install
	MAIN_VENV=$(VENV) bash scripts/install_franka_sim.sh

# The remote learner's extra (Ray); the tests start real Ray nodes in a loopback-only namespace.
install-ray: $(VENV)/.installed-ray

$(VENV)/.installed-ray: $(VENV)/.installed setup.py
	$(VENV)/bin/pip install -q -e '.[ray]'
	touch $@

run: install
	$(PY) examples/franka_reacher.py $(RUN_ARGS)

test: install install-ros install-ros2 install-franka-sim install-ray
	$(PY) -m pytest -q

benchmark: install
	$(PY) -m examples.benchmark_cycle --out results/bench_cycle

clean:
	rm -rf $(VENV) .venv-franka-sim .venv-ros2 *.egg-info
