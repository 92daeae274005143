"""lsh_gan._files: atomic, durable writes and the workdir lock."""

import os
import threading

import pytest

from lsh_gan import _files


def test_concurrent_writers_of_one_file_never_share_a_temporary_file(
    tmp_path):
  # With one fixed temporary name, one writer's rename takes the other's
  # file away (FileNotFoundError) or publishes a mix of both.
  path = str(tmp_path / "results.json")
  errors = []

  def writer(tag):
    try:
      for i in range(200):
        _files.write_json(path, {"writer": tag, "i": i, "pad": tag * 500})
    except Exception as err:  # pylint: disable=broad-except
      errors.append(err)

  threads = [threading.Thread(target=writer, args=(t,)) for t in "ab"]
  for t in threads:
    t.start()
  for t in threads:
    t.join()
  assert not errors
  value = _files.read_json(path, "x", "y")
  assert value["pad"] == value["writer"] * 500
  assert os.listdir(tmp_path) == ["results.json"]  # no temporary file left


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path):
  path = str(tmp_path / "a.txt")
  _files.write_text(path, "old")

  def failing(tmp):
    with open(tmp, "w") as f:
      f.write("half")
    raise RuntimeError("disk full")

  with pytest.raises(RuntimeError):
    _files.write_with(path, failing)
  assert open(path).read() == "old"
  assert os.listdir(tmp_path) == ["a.txt"]


def test_writes_are_fsynced_before_the_rename(tmp_path, monkeypatch):
  events = []
  real_fsync, real_replace = os.fsync, os.replace
  monkeypatch.setattr(os, "fsync", lambda fd: (events.append("fsync"),
                                               real_fsync(fd))[1])
  monkeypatch.setattr(os, "replace", lambda a, b: (events.append("replace"),
                                                   real_replace(a, b))[1])
  _files.write_text(str(tmp_path / "a.txt"), "x")
  # The file before the rename, its folder after.
  assert events == ["fsync", "replace", "fsync"]


def test_read_json_names_a_damaged_file(tmp_path):
  path = tmp_path / "results.json"
  path.write_text('{"rows": [1, 2')
  with pytest.raises(_files.DamagedFileError,
                     match=f"{path} is damaged: it should hold rows but is "
                     "not readable JSON .*; delete it"):
    _files.read_json(str(path), "rows", "delete it")


def test_a_second_holder_of_a_folder_waits_until_the_first_is_done(tmp_path):
  folder = str(tmp_path)
  waits, order = [], []
  held = threading.Event()

  def first():
    with _files.locked(folder):
      held.set()
      order.append("first in")
      threading.Event().wait(0.5)
      order.append("first out")

  thread = threading.Thread(target=first)
  thread.start()
  held.wait()
  with _files.locked(folder, on_wait=waits.append):
    order.append("second in")
  thread.join()
  assert order == ["first in", "first out", "second in"]
  assert len(waits) == 1 and "in use by another run (pid" in waits[0]
  with _files.locked(folder):  # released: no wait
    pass


def test_a_lock_held_too_long_times_out(tmp_path):
  with _files.locked(str(tmp_path)):
    with pytest.raises(TimeoutError, match="still in use by another run"):
      with _files.locked(str(tmp_path), timeout=0.3):
        pass


def test_check_writable_names_the_location(tmp_path):
  (tmp_path / "f").write_text("")
  with pytest.raises(ValueError, match="grids=.*f/g.* cannot be written"):
    _files.check_writable(str(tmp_path / "f" / "g"), "grids")
  _files.check_writable(str(tmp_path / "new" / "deep"), "x")
  assert os.listdir(tmp_path / "new" / "deep") == []


def test_written_files_get_the_permissions_a_plain_open_gives(tmp_path):
  plain = tmp_path / "plain.txt"
  plain.write_text("x")
  _files.write_text(str(tmp_path / "atomic.txt"), "x")
  mode = lambda p: os.stat(p).st_mode & 0o777
  assert mode(tmp_path / "atomic.txt") == mode(plain)  # 0o666 less umask
  os.chmod(tmp_path / "atomic.txt", 0o640)
  _files.write_text(str(tmp_path / "atomic.txt"), "y")  # a replaced file
  assert mode(tmp_path / "atomic.txt") == 0o640      # keeps its mode
