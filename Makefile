# Set-up and the two commands of the README: `make demo` (the main job) and `make test`.
# The environment lives in .venv/. torch: the CPU build torch==2.13.0 where no NVIDIA GPU is present,
# PyPI's CUDA build otherwise; override with `make TORCH_SPEC=...`.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH_SPEC ?= $(shell command -v nvidia-smi >/dev/null 2>&1 && echo "torch>=2.4" || echo "torch==2.13.0")
# llama.cpp compiles from source; a portable AVX2 build (the native build crashed on AVX-512 machines).
# GPU users may set CMAKE_ARGS="-DGGML_CUDA=on".
CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
export CMAKE_ARGS
export CMAKE_BUILD_PARALLEL_LEVEL ?= $(shell nproc 2>/dev/null || echo 2)
export LITELLM_LOCAL_MODEL_COST_MAP := True

.PHONY: install demo test test-all bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install "$(TORCH_SPEC)"
	$(BIN)/pip install -e ".[dev]"
	touch $@

demo: install
	$(BIN)/regenesis experiment examples/quickstart.toml --out runs/quickstart

test: install
	$(BIN)/pytest -q

test-all: install
	$(BIN)/pytest -q -m "slow or not slow"

clean:
	rm -rf $(VENV) runs
