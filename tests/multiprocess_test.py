"""Two JAX processes (a coordinator on 127.0.0.1, CPU collectives) score
global sharded arrays and get the same numbers as each other and as one
process: counts identically, FID and KID to 1e-6.

The processes run `tests/multiprocess_cases.py`.
"""

import json
import os
import socket
import subprocess
import sys

import pytest

from lsh_gan import metrics

_HERE = os.path.dirname(__file__)
sys.path.insert(0, _HERE)
import multiprocess_cases  # pylint: disable=g-import-not-at-top,wrong-import-position

_CLOSE = ("fid", "kid", "kid_std", "reference_fid")


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
  folder = tmp_path_factory.mktemp("multiprocess")
  port = _free_port()
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  env.pop("XLA_FLAGS", None)
  procs = [subprocess.Popen(
      [sys.executable, os.path.join(_HERE, "multiprocess_cases.py"), str(i),
       str(port), str(folder / f"{i}.json")], env=env,
      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
           for i in range(2)]
  logs = []
  for proc in procs:
    try:
      logs.append(proc.communicate(timeout=600)[0])
    except subprocess.TimeoutExpired:
      for p in procs:
        p.kill()
      raise
  for proc, log in zip(procs, logs):
    assert proc.returncode == 0, log[-4000:]
  out = []
  for i in range(2):
    with open(folder / f"{i}.json") as f:
      out.append(json.load(f))
  return out


@pytest.fixture(scope="module")
def one_process():
  return multiprocess_cases.scores(metrics, *multiprocess_cases.sets())


def test_processes_agree_with_each_other(two_processes):
  assert two_processes[0] == two_processes[1]


@pytest.mark.parametrize("inputs", ["process_local", "host"])
def test_processes_agree_with_one_process(two_processes, one_process, inputs):
  got = two_processes[0][inputs]
  assert set(got) == set(one_process)
  assert 0.1 < one_process["precision"] < 0.9
  for key, value in one_process.items():
    if key in _CLOSE:
      assert got[key] == pytest.approx(value, rel=1e-6), key
    else:
      assert got[key] == value, key
