"""Two JAX processes (a coordinator on 127.0.0.1, CPU collectives) score
global sharded arrays and get the same numbers as each other and as one
process: counts identically, FID and KID to 1e-6.

The processes, and a third computing the one-process numbers on one CPU
device, run `tests/multiprocess_cases.py`.
"""

import json
import os
import socket
import subprocess
import sys

import pytest

from lsh_gan import data
from lsh_gan import pipeline

_HERE = os.path.dirname(os.path.abspath(__file__))

_CLOSE = ("fid", "kid", "kid_std", "reference_fid")


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _run_all(commands, env):
  """Runs processes' commands at once, to the end; their output."""
  procs = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
           for command in commands]
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
  return logs


def _processes(folder, data_dir):
  """The two processes' results and, run beside them in a third process on
  one CPU device, the one-process results they must agree with."""
  data.images("digits", "train", data_dir=data_dir)  # built before them
  port = _free_port()
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  env.pop("XLA_FLAGS", None)
  script = os.path.join(_HERE, "multiprocess_cases.py")
  _run_all([[sys.executable, script, str(i), str(port),
             str(folder / f"{i}.json"), data_dir, str(folder / "run")]
            for i in range(2)] +
           [[sys.executable, script, "one", str(folder / "one.json"),
             data_dir, str(folder / "one")]], env)
  out = []
  for i in range(2):
    with open(folder / f"{i}.json") as f:
      out.append(json.load(f))
  with open(folder / "run" / "results.json") as f:
    saved = json.load(f)
  with open(folder / "one.json") as f:
    one = json.load(f)
  return {"processes": out, "saved": saved, "one": one,
          "grids": sorted(os.listdir(folder / "run" / "samples"))}


@pytest.fixture(scope="module")
def two_processes(compute_once, data_dir):
  return compute_once("processes",
                      lambda folder: _processes(folder, data_dir))


@pytest.fixture(scope="module")
def one_process(two_processes):
  return two_processes["one"]


def test_processes_agree_with_each_other(two_processes):
  first, second = two_processes["processes"]
  assert first["process_local"] == second["process_local"]
  # The sweep's rows: the same numbers (their seconds are each process's).
  keep = lambda rows: [{k: r[k] for k in pipeline.METRICS} for r in rows]
  assert keep(first["sweep"]) == keep(second["sweep"])


@pytest.mark.parametrize("inputs", ["process_local"])
def test_processes_agree_with_one_process(two_processes, one_process, inputs):
  got = two_processes["processes"][0][inputs]
  one_process = one_process["scores"]
  assert set(got) == set(one_process)
  assert 0.1 < one_process["precision"] < 0.9
  for key, value in one_process.items():
    if key in _CLOSE:
      assert got[key] == pytest.approx(value, rel=1e-6), key
    elif key.startswith("lsh_"):  # the real mean summed in another order
      assert got[key] == pytest.approx(value, abs=2 / 904), key
    else:
      assert got[key] == value, key


def test_a_sweep_in_two_processes_gives_the_one_process_rows(
    two_processes, one_process):
  one = one_process["rows"]
  saved = two_processes["saved"]
  assert [r["point"] for r in saved["rows"]] == [r["point"] for r in one]
  for rows in ([r for r in saved["rows"]],
               two_processes["processes"][1]["sweep"]):
    for a, b in zip(one, rows):
      for metric in pipeline.METRICS:
        if metric == "fid":
          # A difference of covariance traces of order 1 (the embedding's
          # blocks have unit length): float32 sums in another order move it
          # by about 1e-8, up to 1e-6 of its own small value.
          assert b[metric] == pytest.approx(a[metric], abs=1e-6)
        elif metric.split("_")[0] in ("lsh", "p", "top", "clipped"):
          # The real mean summed elsewhere: distances about it differ in
          # their last bits (a point on an edge may move; P-values move by
          # rounding).
          assert b[metric] == pytest.approx(a[metric], abs=2 / 320), metric
        else:  # the same samples and embeddings: the same counts and KID
          assert b[metric] == a[metric], metric
  # Process 0 wrote the results and the sample grids.
  assert "00_baseline.png" in two_processes["grids"]
