"""Durable, atomic file writes and a per-folder lock.

A reader (or a resumed run) never sees half a file: each write goes to a
temporary file with a unique name in the same folder, is flushed and
fsynced, and is renamed over the target with `os.replace` (atomic on POSIX);
the folder is fsynced after the rename, so a crash right after a write keeps
it. Two processes writing the same file never share a temporary file.

`locked(folder)` serialises whole runs on one folder: a second process waits
for the first to finish (it says so once), then sees every row the first one
wrote.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import os
import tempfile
import time
import uuid
from typing import Any, Callable, Iterator, Sequence

LOCK_NAME = ".lsh_gan.lock"


def _fsync_folder(folder: str) -> None:
  try:
    fd = os.open(folder, os.O_RDONLY)
  except OSError:  # not every platform opens folders
    return
  try:
    os.fsync(fd)
  except OSError:
    pass
  finally:
    os.close(fd)


def write_with(path: str, write: Callable[[str], None]) -> str:
  """Calls `write(tmp_path)` on a fresh temporary path beside `path`, then
  renames it over `path` durably; the temporary file is removed on failure.
  Returns `path`."""
  folder = os.path.dirname(os.path.abspath(path))
  base, ext = os.path.splitext(os.path.basename(path))
  # A unique name (the target's extension last, so writers that choose a
  # format by it, like matplotlib, see the right one), created with the
  # permissions a plain open() would give: 0o666 less the umask, or the
  # mode of the file it replaces (mkstemp's 0o600 would lock other users
  # out of shared results).
  try:
    mode = os.stat(path).st_mode & 0o7777
  except OSError:
    mode = None
  while True:
    tmp = os.path.join(folder, f".{base}.{uuid.uuid4().hex[:12]}.tmp{ext}")
    try:
      fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                   0o666 if mode is None else mode)
      break
    except FileExistsError:
      continue
  try:
    if mode is not None:
      os.fchmod(fd, mode)
  finally:
    os.close(fd)
  try:
    write(tmp)
    with open(tmp, "rb+") as f:
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    with contextlib.suppress(OSError):
      os.remove(tmp)
    raise
  _fsync_folder(folder)
  return path


def write_text(path: str, text: str) -> None:
  """Writes `text` to `path` atomically and durably."""

  def write(tmp):
    with open(tmp, "w") as f:
      f.write(text)

  write_with(path, write)


def write_json(path: str, value: Any, **kwargs) -> None:
  """`value` as indented JSON (json.dumps keywords pass through)."""
  write_text(path, json.dumps(value, indent=1, **kwargs))


def write_csv(path: str, rows: Sequence[dict], fieldnames: Sequence[str]):
  """Rows as CSV with a header; keys outside `fieldnames` are left out."""
  buf = io.StringIO()
  writer = csv.DictWriter(buf, fieldnames=list(fieldnames),
                          extrasaction="ignore", lineterminator="\n")
  writer.writeheader()
  writer.writerows(rows)
  write_text(path, buf.getvalue())


def claim(folder: str, filename: str, identity: dict, what: str) -> None:
  """Records in folder/filename the settings of the run that owns
  `folder`, or checks them: a folder of another run (any setting differs)
  is refused with a ValueError naming the settings that differ, so that it
  is never resumed as this one.

  Args:
    what: the run's kind, for the message ("fine-tuning run").
  """
  path = os.path.join(folder, filename)
  identity = json.loads(json.dumps(identity))  # as it reads back
  if os.path.exists(path):
    old = read_json(path, f"the {what}'s settings",
                    "remove the folder to start again")
    if old != identity:
      differ = sorted(k for k in set(old) | set(identity)
                      if old.get(k) != identity.get(k))
      raise ValueError(
          f"workdir={folder!r} holds another {what} (it differs in "
          f"{', '.join(differ)}); use a new folder")
  else:
    write_json(path, identity)


class DamagedFileError(ValueError):
  """A results file that cannot be read as what it should be."""


def read_json(path: str, what: str, remedy: str) -> Any:
  """The JSON value in `path`.

  Raises:
    DamagedFileError: the file is empty, truncated or not JSON; the message
      names the file, says what it should hold (`what`) and what to do
      (`remedy`).
  """
  try:
    with open(path) as f:
      return json.load(f)
  except (ValueError, UnicodeDecodeError) as err:
    raise DamagedFileError(
        f"{path} is damaged: it should hold {what} but is not readable JSON "
        f"({err}); {remedy}") from None


def check_writable(folder: str, what: str) -> None:
  """Creates `folder` if needed and checks that a file can be written there.

  Raises:
    ValueError: naming `what` (e.g. "workdir") and the reason.
  """
  try:
    os.makedirs(folder, exist_ok=True)
    fd, probe = tempfile.mkstemp(prefix=".write_test.", dir=folder)
    os.close(fd)
    os.remove(probe)
  except OSError as err:
    raise ValueError(f"{what}={folder!r} cannot be written: "
                     f"{err.strerror or err}") from None


@contextlib.contextmanager
def locked(folder: str, *, on_wait: Callable[[str], None] | None = None,
           timeout: float | None = None) -> Iterator[None]:
  """Holds an exclusive lock on `folder` (a file in it) for the block.

  Another process (or another `locked` call in this one) that asks for the
  same folder waits until the block ends; `on_wait(message)` is called once
  when it has to wait. The lock goes with the process: a killed run never
  leaves a folder locked.

  Raises:
    TimeoutError: the lock was not had within `timeout` seconds.
  """
  import fcntl  # pylint: disable=g-import-not-at-top  (POSIX only)
  os.makedirs(folder, exist_ok=True)
  path = os.path.join(folder, LOCK_NAME)
  fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
  try:
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
      if err.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
        raise
      holder = os.pread(fd, 200, 0).decode(errors="replace").strip()
      if on_wait is not None:
        on_wait(f"{folder} is in use by another run ({holder or 'unknown'})"
                "; waiting for it to finish")
      deadline = None if timeout is None else time.monotonic() + timeout
      while True:
        try:
          fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
          break
        except OSError:
          if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"{folder} is still in use by another run "
                               f"({holder or 'unknown'}) after {timeout} s"
                               ) from None
          time.sleep(0.2)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()}, since {time.strftime('%H:%M:%S')}"
              .encode(), 0)
    yield
  finally:
    os.close(fd)  # releases the lock
