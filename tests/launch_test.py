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
  assert re.search(r"^quantize\(bits=2,axis=-1\) +2 +\d+\.\dx ", out.stdout,
                   re.M)
  table = out.stdout.split("\nResults, plots")[0]  # the path may be long
  assert max(len(line) for line in table.splitlines()) <= 80
  # Progress and the summary only: no TensorFlow, TFDS or JAX INFO lines.
  assert re.match(r"experiment sweep_dcgan_digits, workdir .*\n"
                  r"2 sweep points: 0 done, 2 to compute\n"
                  r"(preparing dataset digits .*\ndataset digits prepared\n)?"
                  r"reference: .*\n\[1/2\] baseline: .*\n"
                  r"\[2/2\] quantize\(bits=2,axis=-1\): .*\n$", out.stderr
                  ), out.stderr
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


def test_launch_py_help_and_bad_configs(tmp_path):
  out = _launch("--help")  # absl prints the help and exits with status 1
  assert "The default experiment is configs/sweep_dcgan_mnist5k.py" in (
      out.stdout)
  assert "--config" in out.stdout and "--workdir" in out.stdout
  bad = _launch("--config.points=quantize(bits=0)", f"--workdir={tmp_path}")
  assert bad.returncode != 0
  assert "config.points: bits=0 must be an integer in 1..16" in bad.stderr
  bad = _launch("--config.generator=nope", f"--workdir={tmp_path}")
  assert "config.generator='nope' is not a pre-trained generator" in (
      bad.stderr)


@pytest.mark.parametrize("args,name", [
    ([], "sweep_dcgan_mnist5k"),
    (["--config=configs/sweep_dcgan_digits.py"], "sweep_dcgan_digits"),
    # A space instead of '=': the name still comes from the flag's value.
    (["--config", "configs/sweep_mlp_gan_ring8.py"], "sweep_mlp_gan_ring8"),
    (["--seeds=3", "--config=configs/results.py:dcgan_digits"],
     "results_dcgan_digits"),
])
def test_default_workdir_names_the_config_and_its_argument(args, name):
  # num_samples=3 is refused by the config check, after the experiment line
  # and before any work.
  out = _launch(*args, "--config.num_samples=3")
  assert out.returncode != 0
  assert out.stderr.startswith(f"experiment {name}, workdir ")
  assert os.path.join("lsh_gan", name) in out.stderr.splitlines()[0]


@pytest.mark.parametrize("args,message", [
    (["--config=configs/does_not_exist.py"],
     "--config=configs/does_not_exist.py: no such config file; configs: "
     "configs/finetune.py, configs/image_to_image.py, configs/results.py, "),
    (["--config.num_sample=10"],
     "--config.num_sample: configs/sweep_dcgan_mnist5k.py has no field "
     "'num_sample'; did you mean --config.num_samples?"),
    (["--config", "configs/sweep_mlp_gan_ring8.py", "--config.nosuchfield=3"],
     "--config.nosuchfield: configs/sweep_mlp_gan_ring8.py has no field "
     "'nosuchfield'; fields: add_points, data_dir, "),
    (["--config=configs/sweep_dcgan_digits.py:foo"],
     "--config=configs/sweep_dcgan_digits.py:foo: the config does not build "
     "(TypeError: get_config() takes 0 positional arguments"),
    (["--config.seed=2.5"], "flag --config.seed=2.5: invalid literal for "
     "int()"),
    (["--seeds=0"], "flag --seeds=0: 0 is not a positive integer"),
    (["--num_processes=2"], "--coordinator_address, --num_processes and "
     "--process_id go together"),
])
def test_bad_flags_get_one_line_and_no_traceback(args, message):
  out = _launch(*args, "--workdir=unused")
  assert out.returncode == 2
  lines = out.stderr.splitlines()
  assert lines[0].startswith(f"launch.py: {message}"), out.stderr
  assert lines[1:] == ["Run python launch.py --help for the flags."]
  assert not os.path.exists(os.path.join(ROOT, "unused"))


def test_a_config_field_that_defaults_to_none_can_be_set_from_the_command_line():
  # data_dir and num_reference are typed placeholders: --config.X=value
  # works, and a bad value is refused by the config check.
  out = _launch("--config=configs/sweep_dcgan_digits.py",
                "--config.num_reference=2", "--workdir=unused")
  assert out.returncode == 1
  assert "config.num_reference=2 must be an integer >= 6" in out.stderr


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
