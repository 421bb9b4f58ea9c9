#!/usr/bin/env bash
# Installs rig and everything it needs into the active Python environment:
# Mesa's EGL (headless MuJoCo rendering) when missing, a CPU build of torch on machines without
# an NVIDIA GPU (a GPU user's torch is kept), then rig itself with its test tools (RIG_EXTRAS).
# Safe to run again: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

have_egl() { ldconfig -p 2>/dev/null | grep -q 'libEGL_mesa\|libEGL_nvidia'; }
if [ "$(uname -s)" = Linux ] && ! have_egl; then
  if command -v apt-get >/dev/null; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi
    echo "setup: installing Mesa EGL for headless rendering"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libegl1 libegl-mesa0 libgl1-mesa-dri libgles2 >/dev/null
  else
    echo "setup: no libEGL found and no apt-get; install Mesa's EGL (libEGL_mesa) yourself" >&2
  fi
fi

if ! "$PYTHON" -c 'import torch' 2>/dev/null; then
  if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
    echo "setup: NVIDIA GPU found; installing the default (CUDA) torch build"
    "$PYTHON" -m pip install -q torch
  else
    # A bare 'torch' would pull the multi-GB CUDA build. RIG_TORCH_INDEX can point pip at
    # PyTorch's CPU wheel index (https://download.pytorch.org/whl/cpu) where that is reachable.
    echo "setup: no GPU; installing the CPU build of torch"
    "$PYTHON" -m pip install -q "torch==${RIG_TORCH_VERSION:-2.13.0}" ${RIG_TORCH_INDEX:+--index-url "$RIG_TORCH_INDEX"}
  fi
fi

# RIG_EXTRAS picks optional extras: dev (ruff, mypy, pytest) by default; scripts/test.sh adds ray.
"$PYTHON" -m pip install -q -e ".[${RIG_EXTRAS:-dev}]"
"$PYTHON" -c 'import rig, torch, mujoco, gymnasium, stable_baselines3 as sb3; print(f"setup: rig {rig.__version__}, torch {torch.__version__}, mujoco {mujoco.__version__}, gymnasium {gymnasium.__version__}, stable-baselines3 {sb3.__version__}")'
