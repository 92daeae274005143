"""Shared fixtures: real parameter trees of the kinds users compress.

Workers: under pytest-xdist (`-n 2`) the modules of ONE_WORKER run whole on
one worker each: their tests share expensive work (a module-scoped fixture
such as a trained model or a child process's results, or kernels compiled
once and reused across cases), which each worker would otherwise do again,
or wait idle while the other does it. Every other test is sent on its own.
"""

import flax.linen as nn
from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np
import pytest


def pytest_configure(config):
  """One JAX compilation cache per test run, shared by its xdist workers and
  the processes tests start (launcher runs, notebooks, the multi-device and
  multi-process children), which otherwise compile the same kernels again.
  A fresh folder per run: nothing is reused from another run or machine."""
  import os  # pylint: disable=g-import-not-at-top
  import shutil  # pylint: disable=g-import-not-at-top
  import tempfile  # pylint: disable=g-import-not-at-top
  if hasattr(config, "workerinput") or "JAX_COMPILATION_CACHE_DIR" in os.environ:
    return
  folder = tempfile.mkdtemp(prefix="lsh_gan-jax-cache-")
  os.environ["JAX_COMPILATION_CACHE_DIR"] = folder
  os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0.1"
  # A size limit makes JAX read and write entries under a file lock
  # (filelock, a test dependency); without one, a process may read an entry
  # another is still writing, and warn on its stderr ("Error reading
  # persistent compilation cache entry"), which the launcher tests read.
  os.environ["JAX_COMPILATION_CACHE_MAX_SIZE"] = str(2 ** 40)
  jax.config.update("jax_compilation_cache_dir", folder)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.1)
  jax.config.update("jax_compilation_cache_max_size", 2 ** 40)
  config.add_cleanup(lambda: shutil.rmtree(folder, ignore_errors=True))


ONE_WORKER = frozenset({
    "compress_common_test.py", "compress_storage_test.py", "compress_test.py",
    "data_test.py", "distill_test.py", "embedding_checks_test.py",
    "finetune_test.py", "inception_test.py", "metrics_common_test.py",
    "metrics_known_truth_test.py", "metrics_reference_test.py",
    "multiprocess_test.py", "packing_test.py", "pipeline_finetune_test.py",
    "pipeline_test.py", "pretrained_test.py",
    "sharded_test.py", "train_test.py"})


@pytest.hookimpl(optionalhook=True)  # pytest-xdist's hook: absent without it
def pytest_xdist_make_scheduler(config, log):
  """xdist's default "load" distribution, except that ONE_WORKER's modules
  are each one unit of work (larger units are sent first)."""
  import os  # pylint: disable=g-import-not-at-top
  from xdist.scheduler import LoadScopeScheduling  # pylint: disable=g-import-not-at-top
  if config.getvalue("dist") != "load":
    return None  # another distribution asked for

  class Scheduling(LoadScopeScheduling):

    def _split_scope(self, nodeid):
      path = nodeid.split("::", 1)[0]
      return path if os.path.basename(path) in ONE_WORKER else nodeid
  return Scheduling(config, log)


def computed_once(tmp_path_factory, worker_id: str, name: str, compute):
  """compute(folder)'s JSON-able result, computed once per test run even
  when pytest-xdist spreads a module's tests over several workers (each
  would otherwise run a module-scoped fixture itself): the first worker
  computes it under a lock in the run's shared temporary folder, the others
  read it. Without xdist, simply compute(folder)."""
  import json  # pylint: disable=g-import-not-at-top
  from lsh_gan import _files  # pylint: disable=g-import-not-at-top
  if worker_id == "master":
    return compute(tmp_path_factory.mktemp(name))
  # Under xdist the base temp folder is per worker; its parent is this
  # run's own (pytest-N), shared by the run's workers only.
  folder = tmp_path_factory.getbasetemp().parent / name
  with _files.locked(str(folder)):
    done = folder / "result.json"
    if done.exists():
      with open(done) as f:
        return json.load(f)
    result = compute(folder)
    _files.write_json(str(done), result)
    return result


@pytest.fixture(scope="session")
def compute_once(tmp_path_factory, worker_id):
  """`computed_once` for this run: compute_once(name, compute)."""
  return lambda name, compute: computed_once(tmp_path_factory, worker_id,
                                             name, compute)


@pytest.fixture(scope="session")
def data_dir(compute_once):
  """One TFDS data_dir for the whole run, shared by its workers: each
  offline dataset is built once per run (a build holds a lock per dataset;
  data_test.py builds its own). Tests that read datasets take it."""
  return compute_once("tfds", str)


TINY_GAN = "mlp_gan_tiny"


@pytest.fixture(scope="session")
def tiny_gan(compute_once, data_dir):
  """A checkpoint folder holding a small ring8 GAN (hidden (32, 32),
  latent 4, 150 steps) named TINY_GAN, with its discriminator: trained once
  per test run, for the fine-tuning tests (the committed models are not
  touched)."""
  def compute(folder):
    from lsh_gan import pretrained  # pylint: disable=g-import-not-at-top
    from lsh_gan import train  # pylint: disable=g-import-not-at-top
    from configs import train_mlp_gan_ring8  # pylint: disable=g-import-not-at-top
    config = train_mlp_gan_ring8.get_config()
    config.data_dir = data_dir
    config.hidden = (32, 32)
    config.latent_dim = 4
    config.steps = 150
    config.log_every = 50
    config.checkpoint_every = 150
    config.eval_samples = 500
    with pytest.MonkeyPatch.context() as patch:
      patch.setattr(pretrained, "CHECKPOINTS", str(folder / "models"))
      train.run(config, str(folder / "run"), export=TINY_GAN)
    pretrained._clear_caches()  # pylint: disable=protected-access
    return str(folder / "models")
  return compute_once("tiny_gan", compute)


TINY_PIX2PIX = "pix2pix_tiny"


@pytest.fixture(scope="session")
def tiny_pix2pix(compute_once, data_dir):
  """A checkpoint folder holding a small edges2digits pix2pix (a 2-level
  U-Net of width 4, a PatchGAN of width 4, 20 steps) named TINY_PIX2PIX,
  with its discriminator, beside the committed mnist5k embedder its
  outputs are scored in: trained once per test run for the tests of the
  U-Net's compression, which compile in seconds where the committed
  5-level one takes minutes."""
  def compute(folder):
    import os  # pylint: disable=g-import-not-at-top
    from lsh_gan import pretrained  # pylint: disable=g-import-not-at-top
    from lsh_gan import train  # pylint: disable=g-import-not-at-top
    from configs import train_pix2pix_edges2digits  # pylint: disable=g-import-not-at-top
    config = train_pix2pix_edges2digits.get_config()
    config.data_dir = data_dir
    config.width, config.d_width, config.levels = 4, 4, 2
    config.batch_size, config.steps, config.decay_steps = 8, 20, 10
    config.log_every = config.checkpoint_every = 20
    models = folder / "models"
    with pytest.MonkeyPatch.context() as patch:
      patch.setattr(pretrained, "CHECKPOINTS", str(models))
      train.run(config, str(folder / "run"), export=TINY_PIX2PIX)
    os.symlink(os.path.join(pretrained.CHECKPOINTS, "embedder_mnist5k"),
               models / "embedder_mnist5k")
    pretrained._clear_caches()  # pylint: disable=protected-access
    return str(models)
  return compute_once("tiny_pix2pix", compute)


@pytest.fixture
def with_tiny_pix2pix(tiny_pix2pix, monkeypatch):
  """The committed models replaced by `tiny_pix2pix`'s folder for one
  test."""
  from lsh_gan import pretrained  # pylint: disable=g-import-not-at-top
  monkeypatch.setattr(pretrained, "CHECKPOINTS", tiny_pix2pix)
  pretrained._clear_caches()  # pylint: disable=protected-access
  yield
  pretrained._clear_caches()  # pylint: disable=protected-access


def assert_translates(slim, data_dir: str) -> None:
  """A slimmer translator (`lsh_gan.finetune.Distilled` of a pix2pix)
  translates test conditions into finite images of their shape, and its
  MACs are those of the network it runs."""
  from lsh_gan import compress  # pylint: disable=g-import-not-at-top
  from lsh_gan import data  # pylint: disable=g-import-not-at-top
  translate_fn, variables = slim
  conditions = data.load("edges2digits", "test", data_dir=data_dir,
                         limit=8)["condition"]
  out = np.asarray(translate_fn(variables, conditions))
  assert out.shape == conditions.shape and np.all(np.isfinite(out))
  assert slim.macs == compress.macs(translate_fn.jitted, variables,
                                    jnp.zeros((1, *conditions.shape[1:])))


@pytest.fixture
def with_tiny_gan(tiny_gan, monkeypatch):
  """The committed models replaced by `tiny_gan`'s folder for one test."""
  from lsh_gan import pretrained  # pylint: disable=g-import-not-at-top
  monkeypatch.setattr(pretrained, "CHECKPOINTS", tiny_gan)
  pretrained._clear_caches()  # pylint: disable=protected-access
  yield
  pretrained._clear_caches()  # pylint: disable=protected-access


class _LinenNet(nn.Module):
  """Every kernel kind: dense, conv, conv-transpose; batch and layer norm."""

  @nn.compact
  def __call__(self, z):
    x = nn.Dense(4 * 4 * 8, use_bias=False)(z).reshape(z.shape[0], 4, 4, 8)
    x = nn.BatchNorm(use_running_average=True)(x)
    x = nn.ConvTranspose(6, (3, 3), strides=(2, 2))(x)
    x = nn.LayerNorm()(x)
    return nn.Conv(3, (3, 3))(x)


def linen_variables():
  """Linen variables: {"params": ..., "batch_stats": ...}."""
  return _LinenNet().init(jax.random.key(0), jnp.zeros((1, 16)))


class _NNXNet(nnx.Module):

  def __init__(self, rngs):
    self.conv = nnx.Conv(3, 8, (3, 3), rngs=rngs)
    self.norm = nnx.BatchNorm(8, rngs=rngs)
    self.linear = nnx.Linear(8, 4, rngs=rngs)


def nnx_state():
  _, state = nnx.split(_NNXNet(nnx.Rngs(2)))
  return state


def nested_tree():
  """Plain nested containers with mixed dtypes and an integer leaf."""
  rng = np.random.default_rng(3)
  return {
      "layers": [
          {"kernel": rng.normal(size=(12, 20)).astype(np.float32),
           "b": rng.normal(size=(20,)).astype(np.float32)},
          (jnp.asarray(rng.normal(size=(20, 6)), jnp.bfloat16),
           jnp.asarray(rng.normal(size=(6,)), jnp.bfloat16)),
      ],
      "half": jnp.asarray(rng.normal(size=(4, 5, 6)), jnp.float16),
      "step": np.int32(7),
      "table": np.arange(12, dtype=np.int32).reshape(3, 4),
  }


TREES = {
    "linen": linen_variables,
    "nnx_state": nnx_state,
    "nested": nested_tree,
}


_BUILT = {}


@pytest.fixture(params=sorted(TREES))
def tree(request):
  """One instance per kind for the whole session, so that compiled kernels
  are reused across tests (tests must not mutate it; one test checks that)."""
  if request.param not in _BUILT:
    _BUILT[request.param] = TREES[request.param]()
  return _BUILT[request.param]
