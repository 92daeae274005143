r"""lsh_gan launcher: compress a pre-trained GAN over a sweep and score it.

  python launch.py                    # the default experiment (below)
  python launch.py --config=configs/sweep_wgan_gp_mnist5k.py --workdir=DIR
  python launch.py --seeds=3          # mean ± std over 3 seeds of the latents
  python launch.py --config.num_samples=2000 \
      --config.add_points="quantize(bits=5);prune(sparsity=0.3)"

An experiment config (configs/sweep_*.py) names a pre-trained generator and
a sweep of compression points. For each point the launcher compresses the
generator, generates samples from the same latents, embeds them and scores
them against the reference set with every metric (KNN precision/recall,
density/coverage, LSH and LSH+KNN precision/recall, FID, KID); see
`lsh_gan.pipeline`. It writes results.csv, results.json, config.json, plots
and sample grids to the workdir, and prints a summary table. Started again
with the same workdir it computes only the missing points.

The default experiment is configs/sweep_dcgan_mnist5k.py: the committed
DCGAN on mnist5k, 16 sweep points, 5,000 samples each.

A training config (configs/train_*.py) trains that model instead, resuming
from the workdir's last checkpoint; --export writes it to lsh_gan/pretrained:

  python launch.py --config=configs/train_dcgan_mnist5k.py \
      --workdir=/tmp/dcgan_mnist5k --export=dcgan_mnist5k
"""

import difflib
import glob
import importlib.util
import json
import logging as std_logging
import os
import sys
import tempfile

# Before TensorFlow (which TFDS imports) loads: its C++ INFO lines (the
# oneDNN notice, each preceded by "All log messages before
# absl::InitializeLog()") say nothing a user can act on. TensorFlow only
# reads and writes dataset files here, so its oneDNN kernels change no
# number. Set by the application, never by the library; a value the user
# exported wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

from absl import app  # pylint: disable=g-import-not-at-top,wrong-import-position
from absl import flags  # pylint: disable=g-import-not-at-top,wrong-import-position
from absl import logging  # pylint: disable=g-import-not-at-top,wrong-import-position
from ml_collections import config_flags  # pylint: disable=g-import-not-at-top,wrong-import-position

ROOT = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CONFIG = os.path.join(ROOT, "configs", "sweep_dcgan_mnist5k.py")

_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Output folder. Experiments: results, plots and sample "
    "grids (default: <tmp>/lsh_gan/<config name>). Training: checkpoints and "
    "metrics.json (required).")
_SEEDS = flags.DEFINE_integer(
    "seeds", 1, lower_bound=1, help="Experiments: run at this many seeds "
    "(config.seed, +1, ...), each in <workdir>/seed_<s>, and summarise mean "
    "± std over them.")
_EXPORT = flags.DEFINE_string(
    "export", None, "Training only: also write the trained model to "
    "lsh_gan/pretrained under this name.")
_COORDINATOR = flags.DEFINE_string(
    "coordinator_address", None, "Multi-process runs: host:port of process "
    "0's coordinator (jax.distributed.initialize); with --num_processes and "
    "--process_id. Every process runs the same command; process 0 writes.")
_NUM_PROCESSES = flags.DEFINE_integer(
    "num_processes", None, "Multi-process runs: how many processes.",
    lower_bound=1)
_PROCESS_ID = flags.DEFINE_integer(
    "process_id", None, "Multi-process runs: this process's index (0 writes "
    "the results).", lower_bound=0)
_DISTRIBUTED = flags.DEFINE_bool(
    "distributed", False, "Join a multi-process run whose coordinator JAX "
    "finds in the environment (Cloud TPU pod slices, SLURM, Open MPI; "
    "jax.distributed.initialize() without arguments).")


def _config_name() -> str:
  """The config file's name, with its argument if any: results_dcgan_digits
  for --config=configs/results.py:dcgan_digits (however the flag was
  written: `--config=X`, `--config X`, or not at all)."""
  path, _, config_arg = config_flags.get_config_filename(
      flags.FLAGS["config"]).partition(":")
  name = os.path.splitext(os.path.basename(path))[0]
  return f"{name}_{config_arg}" if config_arg else name


def _config_spec(argv) -> str:
  """The --config value in argv (`--config=X` or `--config X`), read
  directly: only to diagnose a config that failed to load."""
  spec = DEFAULT_CONFIG
  for i, arg in enumerate(argv[1:], 1):
    if arg.lstrip("-") == "config" and i + 1 < len(argv):
      spec = argv[i + 1]
    elif arg.startswith(("--config=", "-config=")):
      spec = arg.split("=", 1)[1]
  return spec


def _config_problem(argv) -> str:
  """Why the config flags failed to load, in one line: a missing file, a
  config that does not build, or an override naming no field (with the
  closest valid one)."""
  spec = _config_spec(argv)
  path, _, config_arg = spec.partition(":")
  if not os.path.isfile(path):
    known = sorted(os.path.relpath(p) for p in glob.glob(
        os.path.join(ROOT, "configs", "*.py"))
                   if not p.endswith("__init__.py"))
    return (f"--config={spec}: no such config file; configs: "
            f"{', '.join(known)}")
  try:
    module_spec = importlib.util.spec_from_file_location("_config", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    config = (module.get_config(config_arg) if config_arg
              else module.get_config())
  except Exception as err:  # pylint: disable=broad-except
    return (f"--config={spec}: the config does not build "
            f"({type(err).__name__}: {err})".replace("\n", " "))
  for arg in argv[1:]:
    if not arg.startswith("--config."):
      continue
    field = arg[len("--config."):].split("=", 1)[0]
    node, walked = config, []
    for part in field.split("."):
      if not hasattr(node, "keys") or part not in node:
        valid = sorted(node.keys()) if hasattr(node, "keys") else []
        close = difflib.get_close_matches(part, valid, n=1)
        hint = (f"did you mean --config.{'.'.join(walked + close)}?" if close
                else f"fields: {', '.join(valid)}")
        return (f"--config.{field}: {os.path.relpath(path)} has no field "
                f"{'.'.join(walked + [part])!r}; {hint}")
      node, walked = node[part], walked + [part]
  return ""


def _parse_flags(argv):
  """absl's parsing, with every flag or config error said in one line."""
  try:
    rest = flags.FLAGS(argv)
    # Loads the config file and applies the overrides (lazily done
    # otherwise, at the first field read).
    _CONFIG.value.to_dict()
    return rest
  except flags.Error as err:
    problem = str(err)
  except Exception:  # pylint: disable=broad-except
    problem = ""  # config_flags raises many types; diagnose it ourselves
  _fail(_config_problem(argv) or problem or "the config flags are invalid")


def _fail(problem: str):
  print(f"launch.py: {problem.splitlines()[0]}", file=sys.stderr)
  print("Run python launch.py --help for the flags.", file=sys.stderr)
  sys.exit(2)


# ml_collections reads the config named in sys.argv as the flag is defined
# (to declare its override flags), so a bad config fails here.
try:
  _CONFIG = config_flags.DEFINE_config_file(
      "config", DEFAULT_CONFIG, "An experiment (configs/sweep_*.py) or training "
      "(configs/train_*.py) config; its fields can be overridden, e.g. "
      "--config.num_samples=2000.")
except Exception:  # pylint: disable=broad-except
  if __name__ != "__main__":
    raise
  _fail(_config_problem(sys.argv) or "the config flags are invalid")


def _quiet_output() -> None:
  """Progress and the summary only: pipeline progress as plain lines on
  stderr, other libraries' INFO logs (the TPU backend probe, TFDS) and
  TFDS's progress bars off. The launcher is the application, so it may set
  these; the library never does."""
  logging.set_verbosity(logging.WARNING)
  handler = std_logging.StreamHandler(sys.stderr)
  handler.setFormatter(std_logging.Formatter("%(message)s"))
  progress = std_logging.getLogger("lsh_gan")
  progress.addHandler(handler)
  progress.setLevel(std_logging.INFO)
  progress.propagate = False
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  tfds.disable_progress_bar()


def _initialize_distributed() -> None:
  """jax.distributed.initialize from the flags, before any JAX work."""
  given = [f.value is not None for f in (_COORDINATOR, _NUM_PROCESSES,
                                         _PROCESS_ID)]
  if any(given) and not all(given):
    _fail("--coordinator_address, --num_processes and --process_id go "
          "together")
  if not (all(given) or _DISTRIBUTED.value):
    return
  import jax  # pylint: disable=g-import-not-at-top
  if all(given):
    if _PROCESS_ID.value >= _NUM_PROCESSES.value:
      _fail(f"--process_id={_PROCESS_ID.value} must be below "
            f"--num_processes={_NUM_PROCESSES.value}")
    jax.distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value,
                               _PROCESS_ID.value)
  else:
    jax.distributed.initialize()


def _kind(config) -> str:
  """What a config describes, from its `kind`: "train" (a model to train,
  configs/train_*.py) or "sweep" (an experiment, configs/sweep_*.py)."""
  kind = config.get("kind")
  if kind not in ("train", "sweep"):
    raise app.UsageError(
        f"config.kind={kind!r} must be 'train' (a model to train, as in "
        "configs/train_*.py) or 'sweep' (an experiment, as in "
        "configs/sweep_*.py)")
  return kind


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  _initialize_distributed()
  config = _CONFIG.value
  command = "python launch.py " + " ".join(sys.argv[1:])
  if _kind(config) == "train":
    from lsh_gan import train  # pylint: disable=g-import-not-at-top
    import jax  # pylint: disable=g-import-not-at-top
    if jax.process_count() > 1:
      raise app.UsageError("training runs in one process; the multi-process "
                           "flags apply to experiments")
    if not _WORKDIR.value:
      raise app.UsageError("--workdir is required with a training config")
    print(json.dumps(train.run(config, _WORKDIR.value, _EXPORT.value,
                               command.strip())))
    return
  if _EXPORT.value:
    raise app.UsageError("--export applies to training configs only")
  _quiet_output()
  from lsh_gan import pipeline  # pylint: disable=g-import-not-at-top
  from lsh_gan import report  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  if jax.process_count() > 1 and not _WORKDIR.value:
    raise app.UsageError("a multi-process run needs --workdir, a folder "
                         "every process sees (the default is each host's "
                         "own temporary folder)")
  workdir = _WORKDIR.value or os.path.join(tempfile.gettempdir(), "lsh_gan",
                                           _config_name())
  print(f"experiment {_config_name()}, workdir {workdir}", file=sys.stderr)
  try:
    if _SEEDS.value > 1:
      table = report.seeds_table(pipeline.run_seeds(config, workdir,
                                                    _SEEDS.value))
    else:
      table = report.summary_table(pipeline.run(config, workdir))
  except ValueError as err:  # a bad config or workdir: say what, no trace
    raise SystemExit(f"launch.py: {err}") from None
  from lsh_gan import _data_parallel  # pylint: disable=g-import-not-at-top
  if _data_parallel.is_main():
    print(table)
    print(f"\nResults, plots and sample grids: {os.path.abspath(workdir)}")


if __name__ == "__main__":
  app.run(main, flags_parser=_parse_flags)
