# Set-up and the two commands of the README: `make demo` (the main job) and `make test`.
# The environment lives in .venv/. torch: the CPU build torch==2.13.0 where no NVIDIA GPU is present,
# PyPI's CUDA build otherwise; override with `make TORCH_SPEC=...`. Everything else is pinned to the
# versions the tests passed with (requirements/constraints.txt; `make CONSTRAINTS= install` to unpin).

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
CONSTRAINTS ?= requirements/constraints.txt
PIP_CONSTRAINTS := $(if $(CONSTRAINTS),-c $(CONSTRAINTS))
CONVERTER_SOURCE := requirements/llama-cpp-python-source.txt
CONVERTER_DOWNLOAD := $(VENV)/converter-download
# pytest-xdist processes for the suite. Three on 2 cores: much of the suite waits (time-outs, back-off,
# one-thread training), so a third process took 0.90 of two's time and two 0.6 of one's (README, Development).
TEST_WORKERS ?= 3

.PHONY: install converter demo test test-all bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml $(CONSTRAINTS) $(CONVERTER_SOURCE)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install $(PIP_CONSTRAINTS) "$(TORCH_SPEC)"
	$(BIN)/pip install $(PIP_CONSTRAINTS) -e ".[dev]"
	$(MAKE) converter
	touch $@

# llama.cpp's GGUF converter for `regenesis export-gguf`, from the pinned llama-cpp-python source package:
# pip refuses the archive unless its sha256 is the one in $(CONVERTER_SOURCE). Nothing is fetched at run time.
converter:
	rm -rf $(CONVERTER_DOWNLOAD)
	$(BIN)/pip download --quiet --no-deps --no-binary :all: --require-hashes -r $(CONVERTER_SOURCE) \
		-d $(CONVERTER_DOWNLOAD)
	$(BIN)/python -c 'import sys, pathlib, regenesis.finetune.export as e; print(e.install_converter(pathlib.Path(sys.argv[1])))' \
		$(CONVERTER_DOWNLOAD)/llama_cpp_python-*.tar.gz
	rm -rf $(CONVERTER_DOWNLOAD)

demo: install
	$(BIN)/regenesis experiment examples/quickstart.toml --out runs/quickstart

test: install
	$(BIN)/pytest -q -n $(TEST_WORKERS)

test-all: install
	$(BIN)/pytest -q -n $(TEST_WORKERS) -m "slow or not slow"

clean:
	rm -rf $(VENV) runs
