"""The files every resumable run keeps: torn last lines, corrupt lines, settings a resume must match, the
folder lock, atomic writes and redacted secrets."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from regenesis.errors import BadInput
from regenesis.redact import register_secret
from regenesis.runfiles import (append_jsonl, atomic_write_text, check_settings, read_jsonl, repair_jsonl, run_lock,
                                write_json)


def test_a_torn_last_line_is_skipped_and_cut_before_the_next_append(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"id": 1}\n{"id": 2}\n{"id": ', encoding="utf-8")
    assert read_jsonl(path) == [{"id": 1}, {"id": 2}]
    assert repair_jsonl(path) == [{"id": 1}, {"id": 2}]
    assert path.read_text(encoding="utf-8") == '{"id": 1}\n{"id": 2}\n'


def test_a_corrupt_line_before_the_end_names_the_file_and_line(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"id": 1}\nnot json\n{"id": 3}\n', encoding="utf-8")
    with pytest.raises(BadInput, match=r"rows.jsonl, line 2: not valid JSON"):
        read_jsonl(path)


def test_a_resume_with_other_settings_is_refused_naming_what_changed(tmp_path):
    check_settings(tmp_path, {"model": "a", "max_tokens": 256})
    check_settings(tmp_path, {"model": "a", "max_tokens": 256})
    with pytest.raises(BadInput, match=r"max_tokens: 256 there, 512 now"):
        check_settings(tmp_path, {"model": "a", "max_tokens": 512})


def test_a_second_run_on_a_locked_folder_is_refused_naming_the_holder(tmp_path):
    with run_lock(tmp_path / "out"):
        with pytest.raises(BadInput, match=rf"out is in use by another regenesis run \(pid {os.getpid()}\)"):
            with run_lock(tmp_path / "out"):
                pass
    with run_lock(tmp_path / "out"):  # released at the end of the first run
        pass


def test_the_lock_of_a_killed_run_is_released_with_its_process(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from regenesis.runfiles import run_lock
        with run_lock({str(tmp_path)!r}):
            print("locked", flush=True)
            time.sleep(60)
        """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(BadInput, match=rf"pid {holder.pid}\)"):
            with run_lock(tmp_path):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with run_lock(tmp_path):
        pass


def test_an_output_path_that_is_a_file_is_bad_input_naming_it(tmp_path):
    path = tmp_path / "results.json"
    path.write_text("{}")
    with pytest.raises(BadInput, match=r"--out .*results.json: is a file"):
        with run_lock(path):
            pass


def test_atomic_write_replaces_the_whole_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "report.json"
    atomic_write_text(path, "old")
    atomic_write_text(path, "new")
    assert path.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_run_files_never_hold_a_registered_or_key_shaped_secret(tmp_path, monkeypatch):
    monkeypatch.setenv("TOGETHER_API_KEY", "tgp-env-secret-value")
    register_secret("my-registered-key-123")
    register_secret("local")  # a placeholder, not a secret: "local/smollm2-135m" stays readable
    message = ("401: Incorrect API key provided: sk-proj-abcdefghijklmnop0123 (also my-registered-key-123, "
               "tgp-env-secret-value) for local/smollm2-135m")
    write_json(tmp_path / "report.json", {"error": message})
    append_jsonl(tmp_path / "problems.jsonl", [{"error": message}])
    check_settings(tmp_path / "run", {"api_base": "http://x/?key=my-registered-key-123"})
    for name in ("report.json", "problems.jsonl", "run/run.json"):
        text = (tmp_path / name).read_text()
        for secret in ("sk-proj-abcdefghijklmnop0123", "my-registered-key-123", "tgp-env-secret-value"):
            assert secret not in text
        assert "[redacted]" in text
    assert "local/smollm2-135m" in (tmp_path / "report.json").read_text()
    assert read_jsonl(tmp_path / "problems.jsonl")[0]["error"].count("[redacted]") == 3
