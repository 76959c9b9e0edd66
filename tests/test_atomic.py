import pytest

from metapbt._atomic import write_atomic, write_text_atomic


def test_writes_and_leaves_no_temporary(tmp_path):
    path = write_text_atomic(tmp_path / "sub" / "a.json", "{}")
    assert path.read_text() == "{}"
    assert [p.name for p in path.parent.iterdir()] == ["a.json"]


def test_a_failing_writer_keeps_the_old_file(tmp_path):
    path = write_text_atomic(tmp_path / "a.txt", "old")

    def broken(tmp):
        tmp.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        write_atomic(path, broken)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_a_dead_writers_temporary_is_removed_and_a_live_ones_kept(tmp_path):
    import os
    import subprocess
    import sys

    from metapbt._atomic import remove_dead_temporaries

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    left = tmp_path / f".checkpoint.{dead.pid}.tmp.msgpack"
    live = tmp_path / f".history.{os.getpid()}.tmp.parquet"
    other = tmp_path / ".notes.tmp"  # not a name write_atomic makes
    for path in (left, live, other):
        path.write_text("partial")
    assert remove_dead_temporaries(tmp_path) == [left]
    assert not left.exists() and live.exists() and other.exists()
