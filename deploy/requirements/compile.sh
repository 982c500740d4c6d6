#!/usr/bin/env bash
# Regenerate the image's lock files (run from the repository root after changing pyproject.toml or
# requirements-nodeps.txt; needs `uv`, e.g. `.venv/bin/pip install uv`). pyproject.toml keeps ranges;
# these files pin every package of the image, with hashes, for Linux x86_64 and Python 3.11.
# torch and the CUDA runtime wheels it pulls (nvidia-*, triton) are left out: the Dockerfile
# installs torch==$TORCH_VERSION from the index of the chosen variant (CPU or CUDA), see its header.
set -euo pipefail
UV="${UV:-.venv/bin/uv}"
exclude=(--no-emit-package torch --no-emit-package triton)
for package in cublas cuda-cupti cuda-nvrtc cuda-runtime cudnn-cu13 cufft cufile curand cusolver cusparse \
               cusparselt-cu13 nccl-cu13 nvjitlink nvshmem-cu13 nvtx; do
  exclude+=(--no-emit-package "nvidia-$package")
done
common=(--generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28 --quiet)
"$UV" pip compile pyproject.toml --extra k8s "${common[@]}" "${exclude[@]}" \
  --custom-compile-command "deploy/requirements/compile.sh" -o deploy/requirements/image.lock.txt
# Data-only packages installed without their (unsatisfiable or heavy) dependencies.
"$UV" pip compile requirements-nodeps.txt --no-deps "${common[@]}" \
  --custom-compile-command "deploy/requirements/compile.sh" -o deploy/requirements/nodeps.lock.txt
# The build backend (pyproject.toml's [build-system]), so the project installs without build isolation.
"$UV" pip compile deploy/requirements/build.in "${common[@]}" \
  --custom-compile-command "deploy/requirements/compile.sh" -o deploy/requirements/build.lock.txt
