"""The public API imports and is what __all__ says."""

import lsh_gan
from lsh_gan import compress


def test_public_names_exist():
  assert lsh_gan.__version__
  for name in compress.__all__:
    assert hasattr(compress, name), name
  assert set(compress.names()) == {"chain", "clip", "identity", "masked",
                                   "prune", "quantize"}


def test_every_public_callable_is_documented():
  for name in compress.__all__:
    doc = getattr(compress, name).__doc__
    assert doc and len(doc.strip()) > 20, name


def test_importing_the_library_changes_no_process_wide_setting():
  # In a fresh interpreter: environment variables, logging filters and
  # handlers (report's figures leave matplotlib's backend alone: see
  # figures_test). The libraries under lsh_gan set
  # variables of their own as they load: they are imported first.
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  code = """
import logging, os, sys
import jax, flax, optax, orbax.checkpoint, tensorflow, tensorflow_datasets
env = dict(os.environ)
def state():
  return [(n, list(l.filters), list(l.handlers)) for n, l in
          [("", logging.getLogger()), ("absl", logging.getLogger("absl"))]]
before = state()
import lsh_gan, lsh_gan.compress, lsh_gan.metrics, lsh_gan.pipeline
import lsh_gan.report, lsh_gan.train, lsh_gan.pretrained, lsh_gan.data._tfds
changed = sorted(k for k in set(env) | set(os.environ)
                 if env.get(k) != os.environ.get(k))
assert not changed, changed
assert state() == before, (before, state())
print("ok")
"""
  out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                       text=True, timeout=300)
  assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
