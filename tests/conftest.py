"""Test settings: offline, and a fresh DSPy cache per session so counts of generations are real."""

import os
import tempfile

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ["DSPY_CACHEDIR"] = tempfile.mkdtemp(prefix="regenesis-test-dspy-cache-")
