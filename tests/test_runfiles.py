"""The files every resumable run keeps: torn last lines, corrupt lines, and settings a resume must match."""

import pytest

from regenesis.errors import BadInput
from regenesis.runfiles import check_settings, read_jsonl, repair_jsonl


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
