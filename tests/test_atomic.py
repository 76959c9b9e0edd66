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
