#!/usr/bin/env bash
# Installs what the libfranka backend's end-to-end tests need, offline apart from PyPI:
#   1. pylibfranka (official libfranka bindings, FR3 / libfranka >= 0.10) into the main venv;
#   2. franka-sim (a MuJoCo server speaking the Franka network protocol) into its OWN venv,
#      because it pins numpy 1.26 and mujoco < 3.3 while the main venv has numpy 2 / mujoco 4;
#   3. an offline FR3 MJCF for franka-sim ($FR3_MJCF). franka-sim would otherwise download
#      MuJoCo Menagerie's FR3 through robot_descriptions on first start, which fails offline.
#      franky-sim's wheel ships Menagerie's FR3 (+ Panda hand) with meshes, Apache-2.0; we take
#      only its assets folder (pip download --no-deps, ~19 MB, not its ~690 MB dependency tree)
#      and patch its fr3.xml twice: the meshdir it names ("assets") is wrong (the meshes lie in
#      "meshes"), and the wrist joints 5-7 get an armature (reflected rotor inertia) of 0.2 instead
#      of 0.074 kg m^2. franka-sim servos joint velocity explicitly at 1 kHz with 200 Nm s/rad on
#      those joints, which is unstable on this model's light wrist (dt * gain / inertia = 2.6 on
#      joint 7 > 2): joint 7 then chatters at +-0.08 rad/s when commanded to rest. franka-sim is
#      tuned for Menagerie's fr3v2 model, which it would download at start-up (not offline).
# Idempotent: each step is skipped when its result is already there.
#
# Usage: scripts/install_franka_sim.sh            (from the repository root or anywhere)
# Env:   MAIN_VENV (default .venv), FRANKA_SIM_VENV (default .venv-franka-sim), PYTHON (python3)
# Result: $FRANKA_SIM_VENV/bin/run-franka-sim-server and $FRANKA_SIM_VENV/share/fr3_mjcf/fr3.xml
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MAIN_VENV="${MAIN_VENV:-$ROOT/.venv}"
SIM_VENV="${FRANKA_SIM_VENV:-$ROOT/.venv-franka-sim}"
PYTHON="${PYTHON:-python3}"
FRANKA_SIM_VERSION="1.1.7"
FRANKY_SIM_VERSION="1.0.4"      # only its assets (the FR3 MJCF + meshes) are used
PYLIBFRANKA_SPEC="pylibfranka>=0.18"  # franka-sim speaks server protocol 10: libfranka >= 0.18
MJCF_DIR="$SIM_VENV/share/fr3_mjcf"
MJCF_MARKER="patched by scripts/install_franka_sim.sh v2"
start=$(date +%s)

# 1. pylibfranka in the main venv.
if [ ! -x "$MAIN_VENV/bin/python" ]; then
    echo "install_franka_sim: main venv $MAIN_VENV not found; create it first (make install)" >&2
    exit 1
fi
if "$MAIN_VENV/bin/python" -c "import pylibfranka" 2>/dev/null; then
    echo "install_franka_sim: pylibfranka already in $MAIN_VENV"
else
    "$MAIN_VENV/bin/pip" install --quiet "$PYLIBFRANKA_SPEC"
fi

# 2. franka-sim in its own venv.
if [ -x "$SIM_VENV/bin/run-franka-sim-server" ]; then
    echo "install_franka_sim: franka-sim already in $SIM_VENV"
else
    "$PYTHON" -m venv "$SIM_VENV"
    "$SIM_VENV/bin/pip" install --quiet --upgrade pip
    "$SIM_VENV/bin/pip" install --quiet "franka-sim==$FRANKA_SIM_VERSION"
fi

# 3. The offline FR3 model, extracted from franky-sim's wheel without installing it.
if grep -q "$MJCF_MARKER" "$MJCF_DIR/fr3.xml" 2>/dev/null; then
    echo "install_franka_sim: FR3 model already at $MJCF_DIR/fr3.xml"
else
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    "$SIM_VENV/bin/pip" download --quiet --no-deps "franky-sim==$FRANKY_SIM_VERSION" -d "$tmp"
    "$SIM_VENV/bin/python" - "$tmp"/franky_sim-*.whl "$MJCF_DIR" "$MJCF_MARKER" <<'EOF'
import sys, zipfile, pathlib
wheel, out, marker = sys.argv[1], pathlib.Path(sys.argv[2]), sys.argv[3]
(out / "meshes").mkdir(parents=True, exist_ok=True)
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        rel = name.removeprefix("franky_sim/assets/")
        if rel == name:
            continue
        # MuJoCo reads the OBJ visuals and STL collision meshes; the URDF/DAE files are not needed.
        if rel.startswith("meshes/") and rel.endswith((".obj", ".stl")) or rel in ("NOTICE", "fr3.xml"):
            (out / rel).write_bytes(z.read(name))
    for name in z.namelist():  # the Apache-2.0 licence travels with the files
        if name.endswith("licenses/LICENSE"):
            (out / "LICENSE").write_bytes(z.read(name))
xml = (out / "fr3.xml").read_text()
if xml.count('meshdir="assets"') != 1 or xml.count('armature="0.074"') != 3:
    sys.exit(f"franky-sim's fr3.xml changed: cannot apply the meshdir and wrist-armature patches to {out / 'fr3.xml'}")
xml = xml.replace('meshdir="assets"', 'meshdir="meshes"').replace('armature="0.074"', 'armature="0.2"')
(out / "fr3.xml").write_text(xml.replace("<mujoco", f"<!-- {marker}: meshdir, wrist armature -->\n<mujoco", 1))
EOF
    # Prove the model loads offline with franka-sim's own MuJoCo before calling it installed.
    "$SIM_VENV/bin/python" -c "import mujoco, sys; m = mujoco.MjModel.from_xml_path(sys.argv[1]); print(f'install_franka_sim: FR3 model loads (nq={m.nq})')" "$MJCF_DIR/fr3.xml"
fi

echo "install_franka_sim: done in $(( $(date +%s) - start )) s"
echo "  tests start it on loopback via communicators/franka/libfranka/franka_sim_process.py; by hand (binds 0.0.0.0):"
echo "  FR3_MJCF=$MJCF_DIR/fr3.xml $SIM_VENV/bin/run-franka-sim-server --no-gripper --enforce-comm-constraints --enforce-motion-limits"
