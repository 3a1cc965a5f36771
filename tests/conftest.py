"""Test settings: offline, and a fresh DSPy cache per session so counts of generations are real."""

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ["DSPY_CACHEDIR"] = tempfile.mkdtemp(prefix="regenesis-test-dspy-cache-")

# `from tests.fake_server import FakeServer` and `from fake_server import ...` both work.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
