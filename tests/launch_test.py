"""The main job as a user runs it, and the README's code examples."""

import json
import os
import re
import subprocess
import sys

import jax
import numpy as np
import pytest

from lsh_gan import compress
from lsh_gan import demo

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_demo_writes_report_and_a_restorable_packed_checkpoint(tmp_path):
  result = demo.run("quantize(bits=2,axis=-1)", num_samples=4,
                    workdir=str(tmp_path))
  with open(tmp_path / "report.json") as f:
    saved = json.load(f)
  assert saved["transform"] == "quantize(bits=2,axis=-1)"
  total = saved["report"]["total"]
  assert total["compression_ratio"] > 8  # 2-bit kernels dominate the 2.3M
  assert 0 < saved["mean_abs_image_change"] == result["mean_abs_image_change"]
  restored = compress.restore(tmp_path / "packed")
  kernel = restored["params"]["Dense_0"]["kernel"]
  assert isinstance(kernel, compress.PackedArray) and kernel.bits == 2
  assert compress.size_bytes(restored) == total["stored_bytes"]


def test_demo_rejects_bad_input():
  with pytest.raises(ValueError, match="unknown transform 'quantise'"):
    demo.run("quantise(4)")
  with pytest.raises(ValueError, match="num_samples=0"):
    demo.run("quantize(4)", num_samples=0)


@pytest.mark.slow
def test_launch_py_runs_from_the_command_line(tmp_path):
  out = subprocess.run(
      [sys.executable, "launch.py", "--transform=prune(0.5)+quantize(bits=3)",
       f"--workdir={tmp_path}"], cwd=ROOT, capture_output=True, text=True,
      timeout=300, check=True)
  assert "transform: prune(sparsity=0.5)+quantize(bits=3)" in out.stdout
  assert re.search(r"^total\s+2,330,945\s", out.stdout, re.M)
  assert (tmp_path / "report.json").exists()
  bad = subprocess.run([sys.executable, "launch.py", "--transform=quantize(0)"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert bad.returncode != 0 and "bits=0 must be an integer" in bad.stderr


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
