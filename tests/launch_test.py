"""launch.py as a user runs it, and the README's code examples."""

import csv
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _launch(*args, timeout=600):
  return subprocess.run([sys.executable, "launch.py", *args], cwd=ROOT,
                        capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_launch_py_runs_an_experiment_and_resumes_it(tmp_path):
  args = ["--config=configs/sweep_dcgan_digits.py", f"--workdir={tmp_path}",
          "--config.num_samples=200", "--config.grid_samples=0",
          "--config.points=quantize(bits=2,axis=-1)"]
  out = _launch(*args)
  assert out.returncode == 0, out.stderr[-3000:]
  assert re.search(r"^\| quantize\(bits=2,axis=-1\) \| 2 \| ", out.stdout,
                   re.M)
  assert f"Results, plots and sample grids: {tmp_path}" in out.stdout
  rows = list(csv.DictReader(open(tmp_path / "results.csv")))
  assert [r["point"] for r in rows] == ["baseline", "quantize(bits=2,axis=-1)"]
  again = _launch(*args)
  assert again.returncode == 0 and "2 sweep points: 2 done, 0 to compute" in (
      again.stderr)
  bad = _launch("--config=configs/sweep_dcgan_digits.py",
                f"--workdir={tmp_path}", "--config.num_samples=300")
  assert bad.returncode != 0
  assert "holds results of a different experiment" in bad.stderr


def test_launch_py_help_and_bad_configs():
  out = _launch("--help")  # absl prints the help and exits with status 1
  assert "The default experiment is configs/sweep_dcgan_mnist5k.py" in (
      out.stdout)
  assert "--config" in out.stdout and "--workdir" in out.stdout
  bad = _launch("--config.points=quantize(bits=0)", "--workdir=/tmp/x_bad")
  assert bad.returncode != 0
  assert "config.points: bits=0 must be an integer in 1..16" in bad.stderr
  bad = _launch("--config.generator=nope", "--workdir=/tmp/x_bad")
  assert "config.generator='nope' is not a pre-trained generator" in (
      bad.stderr)


def test_default_workdir_names_the_config_and_its_argument(monkeypatch):
  sys.path.insert(0, ROOT)
  import launch  # pylint: disable=g-import-not-at-top
  for argv, name in (([], "sweep_dcgan_mnist5k"),
                     (["--config=configs/sweep_dcgan_digits.py"],
                      "sweep_dcgan_digits"),
                     (["--seeds=3", "--config=configs/results.py:dcgan_digits"],
                      "results_dcgan_digits")):
    monkeypatch.setattr(sys, "argv", ["launch.py", *argv])
    assert launch._config_name() == name  # pylint: disable=protected-access


def _readme_python_blocks():
  with open(os.path.join(ROOT, "README.md")) as f:
    return re.findall(r"```python\n(.*?)```", f.read(), re.S)


def test_readme_python_examples_run():
  blocks = _readme_python_blocks()
  assert blocks
  for code in blocks:
    exec(compile(code, "README.md", "exec"), {"__name__": "readme"})  # pylint: disable=exec-used


def test_readme_starts_with_the_two_commands_and_ci_runs_the_test_one():
  with open(os.path.join(ROOT, "README.md")) as f:
    lines = f.read().splitlines()
  assert lines[2] == "```bash"
  main_cmd, test_cmd = (l.split("#")[0].strip() for l in lines[3:5])
  assert lines[5] == "```"
  assert main_cmd.endswith("python launch.py")
  with open(os.path.join(ROOT, ".ci", "run")) as f:
    assert test_cmd in f.read().splitlines()
