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

from lsh_gan import data
from lsh_gan import metrics
from lsh_gan import pipeline

_HERE = os.path.dirname(__file__)
sys.path.insert(0, _HERE)
import multiprocess_cases  # pylint: disable=g-import-not-at-top,wrong-import-position
import sharded_cases  # pylint: disable=g-import-not-at-top,wrong-import-position

_LAUNCH = os.path.join(_HERE, "..", "launch.py")
_SWEEP_CONFIG = os.path.join(_HERE, "..", "configs", "sweep_dcgan_mnist5k.py")

_CLOSE = ("fid", "kid", "kid_std", "reference_fid")


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _run_two(commands, env):
  """Runs two processes' commands to the end; their output."""
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


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
  folder = tmp_path_factory.mktemp("multiprocess")
  port = _free_port()
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  env.pop("XLA_FLAGS", None)
  _run_two([[sys.executable, os.path.join(_HERE, "multiprocess_cases.py"),
             str(i), str(port), str(folder / f"{i}.json")]
            for i in range(2)], env)
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


@pytest.fixture(scope="module")
def two_process_sweep(tmp_path_factory):
  """The launcher in two processes (two CPU devices each), one workdir."""
  folder = tmp_path_factory.mktemp("sweep")
  data_dir = str(folder / "tfds")
  data.images("digits", "train", data_dir=data_dir)  # built once, here
  workdir = folder / "run"
  config = sharded_cases.tiny_sweep(data_dir)
  port = _free_port()
  env = {**os.environ, "JAX_PLATFORMS": "cpu",
         "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
  logs = _run_two([[
      sys.executable, _LAUNCH, f"--config={_SWEEP_CONFIG}",
      f"--config.generator={config.generator}",
      f"--config.data_dir={data_dir}",
      f"--config.num_samples={config.num_samples}",
      f"--config.num_reference={config.num_reference}",
      f"--config.grid_samples={config.grid_samples}",
      f"--config.points={config.points}", f"--workdir={workdir}",
      f"--coordinator_address=127.0.0.1:{port}", "--num_processes=2",
      f"--process_id={i}"] for i in range(2)], env)
  with open(workdir / "results.json") as f:
    saved = json.load(f)
  one = pipeline.run(config, str(folder / "one"))
  return logs, saved, one, workdir


def test_a_sweep_in_two_processes_gives_the_one_process_rows(
    two_process_sweep):
  logs, saved, one, workdir = two_process_sweep
  assert [r["point"] for r in saved["rows"]] == [r["point"] for r in one]
  for a, b in zip(one, saved["rows"]):
    for metric in pipeline.METRICS:
      if metric == "fid":
        # A difference of covariance traces of order 1 (the embedding's
        # blocks have unit length): float32 sums in another order move it
        # by about 1e-8, up to 1e-6 of its own small value.
        assert b[metric] == pytest.approx(a[metric], abs=1e-6)
      else:
        assert b[metric] == a[metric], metric
  # Process 0 wrote the results, grids and table; process 1 only computed.
  assert (workdir / "samples" / "00_baseline.png").exists()
  assert "knn_precision" in logs[0] or "KNN" in logs[0]
  assert "Results, plots and sample grids" in logs[0]
  assert "Results, plots and sample grids" not in logs[1]
