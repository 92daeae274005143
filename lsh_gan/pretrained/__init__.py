"""Models trained by this project, with their small checkpoints committed.

Each model lives in `lsh_gan/pretrained/checkpoints/<name>/`: its parameters
as an Orbax checkpoint (`params/`) and `info.json` (dataset, architecture,
its configuration, training steps, the command that reproduces it, and
metrics measured at save time). Nothing is downloaded.

Generators are named `<architecture>_<dataset>` (dcgan_mnist5k,
wgan_gp_mnist5k, dcgan_digits, dcgan_shapes, mlp_gan_ring8, mlp_gan_grid25,
and the conditional pix2pix_edges2digits, which maps outlines to digits),
embedders `embedder_<dataset>` (mnist5k: 288 features, digits: 224, shapes:
352; the shapes one also classifies the 96 modes), and the FID Inception-v3
comes from weights the user provides (`inception_v3`).

  sample_fn, variables = pretrained.generator("dcgan_mnist5k")
  images = sample_fn(variables, jax.random.key(0), 1000)   # (1000, 28, 28, 1)
  images = sample_fn(compress.quantize(4)(variables), jax.random.key(0), 1000)
  embed_fn, params = pretrained.embedder("mnist5k")
  features = embed_fn(params, images)                      # (1000, 128)
"""

from __future__ import annotations

import functools
import json
import os

import jax
import numpy as np

CHECKPOINTS = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                           "checkpoints")


def names() -> tuple[str, ...]:
  """Names of the committed models."""
  if not os.path.isdir(CHECKPOINTS):
    return ()
  # Hidden folders are exports still being written (see `export`).
  return tuple(sorted(n for n in os.listdir(CHECKPOINTS)
                      if not n.startswith(".") and
                      os.path.exists(os.path.join(CHECKPOINTS, n,
                                                  "info.json"))))


class CheckpointError(RuntimeError):
  """A committed checkpoint is missing or unreadable."""


def recreate_command(name: str) -> str:
  """The command that trains `name` again and writes its checkpoint."""
  return (f"python launch.py --config=configs/train_{name}.py "
          f"--workdir=/tmp/{name} --export={name}")


def part_command(name: str, part: str = "discriminator") -> str:
  """The command that trains a committed generator's discriminator (the
  only part besides params) and adds it to its checkpoint."""
  del part
  return (f"python -m lsh_gan.pretrained --train_discriminator={name} "
          f"--workdir=/tmp/discriminator_{name}")


def _check(name: str) -> str:
  if name not in names():
    raise ValueError(f"name={name!r} is not a pre-trained model; valid "
                     f"names: {', '.join(names())}")
  return os.path.join(CHECKPOINTS, name)


def info(name: str) -> dict:
  """dataset, architecture, config, steps, command and metrics of a model.

  Raises:
    ValueError: an unknown name (the valid ones are listed).
    CheckpointError: an unreadable info.json (the message names the file
      and the command that recreates it).
  """
  path = os.path.join(_check(name), "info.json")
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError) as err:
    raise CheckpointError(
        f"{path} cannot be read ({err}); recreate the model with: "
        f"{recreate_command(name)}") from err


@functools.lru_cache(maxsize=None)
def _params(name: str, part: str):
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  from lsh_gan import _logging  # pylint: disable=g-import-not-at-top
  path = os.path.join(_check(name), part)
  if part != "params" and not os.path.exists(path):
    raise CheckpointError(
        f"{name} has no committed {part}; train one for the committed "
        f"generator with: {part_command(name, part)}")
  try:
    with _logging.quiet_orbax():
      checkpointer = ocp.StandardCheckpointer()
      # Onto this process's first device: the checkpoint records the
      # device it was saved from, which another process of a
      # multi-process run does not have.
      here = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
      metadata = checkpointer.metadata(os.path.abspath(path))
      target = jax.tree.map(
          lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype,
                                            sharding=here),
          getattr(metadata, "item_metadata", metadata))
      params = checkpointer.restore(os.path.abspath(path), target)
  except Exception as err:  # pylint: disable=broad-except
    # Orbax raises many types (FileNotFoundError, ValueError, tensorstore
    # errors) for missing or damaged files; all mean the same to a user.
    raise CheckpointError(
        f"{path}: the checkpoint is missing or corrupt ({type(err).__name__}:"
        f" {err}); recreate it with: {info(name).get('command') or recreate_command(name)}"
    ) from err
  return jax.tree.map(np.asarray, params)


def params(name: str):
  """The model's parameters (a fresh copy of the restored pytree)."""
  # Always (name, part): the cache keys `_params(name)` and
  # `_params(name, "params")` apart, and a second restore is a collective
  # in a multi-process run, which one process alone would wait on forever.
  return jax.tree.map(np.array, _params(name, "params"))


@functools.lru_cache(maxsize=None)
def _fingerprint(name: str, part: str) -> str:
  import hashlib  # pylint: disable=g-import-not-at-top
  digest = hashlib.sha256()
  leaves = jax.tree_util.tree_flatten_with_path(_params(name, part))[0]
  for path, leaf in leaves:
    leaf = np.ascontiguousarray(leaf)
    digest.update(f"{jax.tree_util.keystr(path)}:{leaf.dtype}:{leaf.shape};"
                  .encode())
    digest.update(leaf.tobytes())
  return digest.hexdigest()[:16]


def fingerprint(name: str, part: str = "params") -> str:
  """16 hex digits of the SHA-256 of a model's parameters (names, dtypes,
  shapes and values), or of another part of it ("discriminator"): results
  computed with a model are kept apart from those of a retrained one of the
  same name.

  Raises:
    CheckpointError: a part the model was committed without.
  """
  _check(name)
  return _fingerprint(name, part)


def generators() -> tuple[str, ...]:
  """Names of the committed generators."""
  return tuple(n for n in names() if not n.startswith("embedder_"))


@functools.lru_cache(maxsize=None)
def _gan_modules(name: str):
  """(generator, discriminator) modules of a committed GAN, from its config."""
  from lsh_gan import models  # pylint: disable=g-import-not-at-top
  return models.build(info(name)["config"])


@functools.lru_cache(maxsize=None)
def _sampler(name: str):
  from lsh_gan import models  # pylint: disable=g-import-not-at-top
  config = info(name)["config"]
  if models.is_conditional(config):
    return models.translator(_gan_modules(name)[0])
  return models.sampler(_gan_modules(name)[0], config["latent_dim"])


def is_conditional(name: str) -> bool:
  """Whether a committed generator is conditional (pix2pix_edges2digits):
  `generator(name)` then gives a translate_fn of condition images."""
  from lsh_gan import models  # pylint: disable=g-import-not-at-top
  return models.is_conditional(info(name)["config"])


def generator(name: str):
  """(sample_fn, variables) of a pre-trained generator.

  `sample_fn(variables, key, num)` returns float32 samples: images (num, H,
  W, C) in [-1, 1], or points (num, 2) for ring8 and grid25. It is jitted
  with `num` static and is a pure function of the variables, so compressed
  variables work: `sample_fn(compress.quantize(4)(variables), key, 1000)`.

  A conditional generator (`is_conditional`: pix2pix_edges2digits) gives
  `(translate_fn, variables)` instead: `translate_fn(variables,
  conditions)` maps condition images (n, H, W, C) in [-1, 1] (the
  `condition` of its dataset, `lsh_gan.data.load`) to float32 images (n,
  H, W, C) in [-1, 1], jitted once per shape, pure in the variables as
  above: `translate_fn(compress.quantize(4)(variables), conditions)`.

  Raises:
    ValueError: a name that is not a pre-trained generator (the valid ones
      are listed).
    CheckpointError: a missing or corrupt checkpoint (the message names the
      file and the command that recreates it).
  """
  if name not in generators():
    raise ValueError(f"name={name!r} is not a pre-trained generator; valid "
                     f"names: {', '.join(generators())}")
  return _sampler(name), params(name)


def discriminator(name: str):
  """(logits_fn, params) of the discriminator trained with a generator.

  `logits_fn(params, samples)` returns one logit (a critic value for a
  WGAN-GP) per sample, as in training (batch norm on the batch's own
  statistics). A conditional generator's (pix2pix) is `logits_fn(params,
  conditions, images)`, one logit per patch, (n, h, w). Fine-tuning
  methods use it as the supervisor (`lsh_gan.finetune`).

  Raises:
    ValueError: a name that is not a pre-trained generator.
    CheckpointError: a generator exported without its discriminator (the
      message gives the command that trains both again).
  """
  if name not in generators():
    raise ValueError(f"name={name!r} is not a pre-trained generator; valid "
                     f"names: {', '.join(generators())}")
  params_ = jax.tree.map(np.array, _params(name, "discriminator"))
  return _critic(name), params_


@functools.lru_cache(maxsize=None)
def _critic(name: str):
  critic = _gan_modules(name)[1]

  @jax.jit
  def logits_fn(params_, *inputs):
    return critic.apply({"params": params_}, *inputs,
                        mutable=["batch_stats"])[0]

  return logits_fn


def embedder(dataset: str):
  """(embed_fn, params) of a dataset's embedding.

  `embed_fn(params, images)` maps (n, H, W, C) images in [-1, 1] to (n, d)
  float32 features of the dataset's classifier: its `embedding` in
  info.json's config ("multilayer" for mnist5k and digits: each layer's
  features, unit-normalised, see `lsh_gan.models.classifier`). info.json's
  "known_truth" holds its scores on the checks of
  `lsh_gan.embedding_checks` (held-out digits, noise, blank and broken GAN
  samples). For
  the 2-D mixtures (ring8, grid25) the embedder is the identity and params is
  None. A dataset whose images are another's (data.SAME_IMAGES: the targets
  of edges2digits are mnist5k digits) has that one's embedder.

  Raises:
    ValueError: for a dataset without a pre-trained embedder (the message
      lists the ones there are).
  """
  from lsh_gan import data  # pylint: disable=g-import-not-at-top
  if dataset in data.MIXTURES:
    return _checked_embed_fn(
        lambda params, points: jax.numpy.asarray(points, jax.numpy.float32),
        dataset, (2,)), None
  name = f"embedder_{data.SAME_IMAGES.get(dataset, dataset)}"
  if name not in names():
    have = [n[len("embedder_"):] for n in names() if n.startswith("embedder_")]
    raise ValueError(f"dataset={dataset!r} has no pre-trained embedder; "
                     f"embedders exist for: {', '.join(have + list(data.MIXTURES))}")
  from lsh_gan import models  # pylint: disable=g-import-not-at-top
  model = models.build(info(name)["config"])
  def embed(params, images):
    return model.apply(params, images, method=model.embed)

  return _checked_embed_fn(jax.jit(embed), dataset,
                           data.sample_shape(dataset)), params(name)


INCEPTION_ENV = "LSH_GAN_INCEPTION_WEIGHTS"
INCEPTION_FILE = "pt_inception-2015-12-05-6726825d.pth"
INCEPTION_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/"
                 "fid_weights/" + INCEPTION_FILE)
INCEPTION_BATCH = 50


def _inception_path(weights: str | None) -> str:
  if weights is None:
    weights = os.environ.get(INCEPTION_ENV)
    if not weights:
      raise ValueError(
          f"weights=None and ${INCEPTION_ENV} is not set: give the path of "
          f"the pytorch-fid Inception weights ({INCEPTION_FILE}, from "
          f"{INCEPTION_URL})")
  weights = os.path.abspath(os.path.expanduser(str(weights)))
  if not os.path.isfile(weights):
    raise ValueError(
        f"weights={weights!r}: no such file. The FID Inception-v3 weights "
        f"are the pytorch-fid release file {INCEPTION_FILE}: download it "
        f"from {INCEPTION_URL} and pass its path (or set ${INCEPTION_ENV})")
  return weights


def inception_v3(weights: str | None = None):
  """(embed_fn, params) of the FID Inception-v3 (pool3, 2,048 features).

  The network of `lsh_gan.models.inception` with the standard FID weights
  (TensorFlow's `inception-2015-12-05`, as ported by `pytorch-fid`), read
  from a file the user provides; nothing is downloaded.

  `embed_fn(params, images)` takes (n, H, W, C) float images in [-1, 1] of
  any size, C = 1 (repeated to RGB) or 3, resizes them to 299 x 299
  (bilinear, as pytorch-fid does) and returns (n, 2048) float32. It is
  jitted: use `embed_all(embed_fn, params, images, batch=INCEPTION_BATCH)`
  for fixed batch shapes.

  Args:
    weights: path of the `pytorch-fid` state dict
      (`pt_inception-2015-12-05-6726825d.pth`, from INCEPTION_URL), in either
      of PyTorch's file formats; None: the path in $LSH_GAN_INCEPTION_WEIGHTS.
      PyTorch is not needed to read it.

  Raises:
    ValueError: no path given and the variable unset, a missing file (the
      message says where to get it), or a file that is not the FID
      Inception's state dict (the message names the keys that do not fit).
  """
  weights = _inception_path(weights)
  stat = os.stat(weights)
  params = _inception_params(weights, stat.st_mtime_ns, stat.st_size)
  return _inception_embed_fn(), jax.tree.map(np.array, params)


def inception_fingerprint(weights: str | None = None) -> str:
  """16 hex digits of the SHA-256 of the Inception weights file (resolved
  as `inception_v3` does; the same errors)."""
  path = _inception_path(weights)
  stat = os.stat(path)
  return _file_digest(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=8)
def _file_digest(path: str, mtime_ns: int, size: int) -> str:
  import hashlib  # pylint: disable=g-import-not-at-top
  del mtime_ns, size  # cache key only
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 22), b""):
      digest.update(block)
  return digest.hexdigest()[:16]


@functools.lru_cache(maxsize=None)
def _inception_embed_fn():
  from lsh_gan.models import inception  # pylint: disable=g-import-not-at-top
  # The resize is compiled per image size, the network once per batch size.
  network = jax.jit(inception.InceptionV3(resize_input=False).apply)
  to_input = jax.jit(inception.to_input)

  def embed_fn(params, images):
    shape = tuple(getattr(images, "shape", np.shape(images)))
    if len(shape) != 4 or shape[-1] not in (1, 3) or min(shape[1:3]) < 1:
      raise ValueError(
          f"images: the Inception-v3 embedder takes (n, H, W, 1 or 3) "
          f"arrays, got shape {shape}")
    return network(params, to_input(images))

  return embed_fn


@functools.lru_cache(maxsize=4)
def _inception_params(path: str, mtime_ns: int, size: int):
  """The converted state dict; cached on the file's path, modification
  time and size, so a replaced file is read again."""
  del mtime_ns, size  # cache key only
  from lsh_gan import _pth  # pylint: disable=g-import-not-at-top
  from lsh_gan.models import inception  # pylint: disable=g-import-not-at-top
  state = _pth.load(path)
  if not isinstance(state, dict):
    raise ValueError(f"weights={path!r} holds a {type(state).__name__}, not "
                     "a state dict")
  shapes = jax.eval_shape(inception.InceptionV3().init, jax.random.key(0),
                          jax.ShapeDtypeStruct((1, 75, 75, 3), np.float32))
  # Flax leaf (collection, module path..., name) <- PyTorch key.
  torch_name = {("params", "kernel"): "weight", ("params", "scale"): "weight",
                ("params", "bias"): "bias", ("batch_stats", "mean"):
                "running_mean", ("batch_stats", "var"): "running_var"}
  used, problems = set(), []

  def convert(path_keys, leaf):
    names = [k.key for k in path_keys]
    key = ".".join(names[1:-1] + [torch_name[names[0], names[-1]]])
    used.add(key)
    if key not in state:
      problems.append(f"{key} missing")
      return None
    value = np.asarray(state[key], np.float32)
    want = leaf.shape
    if names[-1] == "kernel":  # PyTorch (out, in, kh, kw), Flax (kh, kw, in, out)
      want = (want[3], want[2], want[0], want[1])
    if value.shape != want:
      problems.append(f"{key} has shape {value.shape}, the FID Inception "
                      f"needs {want}")
      return None
    return value.transpose(2, 3, 1, 0) if names[-1] == "kernel" else value

  params = jax.tree_util.tree_map_with_path(convert, shapes)
  unused = [k for k in state if k not in used and not k.endswith(
      "num_batches_tracked") and not k.startswith(("fc.", "AuxLogits."))]
  problems += [f"{k} is not a parameter of the FID Inception" for k in unused]
  if problems:
    raise ValueError(
        f"weights={path!r} is not the pytorch-fid Inception-v3 state dict "
        f"({INCEPTION_FILE}): {'; '.join(problems[:8])}"
        f"{' ...' if len(problems) > 8 else ''} ({len(problems)} problems)")
  return params


def _checked_embed_fn(embed_fn, dataset: str, sample_shape: tuple):
  """embed_fn behind a shape check: a batch of another size would otherwise
  fail deep inside Flax with a parameter-shape error."""

  def checked(params, samples):
    shape = tuple(getattr(samples, "shape", np.shape(samples)))
    if len(shape) != len(sample_shape) + 1 or shape[1:] != sample_shape:
      raise ValueError(
          f"samples: the {dataset} embedder takes (n, "
          f"{', '.join(map(str, sample_shape))}) arrays, got shape {shape}")
    return embed_fn(params, samples)

  return checked


def embed_all(embed_fn, params, samples, batch: int = 500) -> np.ndarray:
  """`embed_fn(params, .)` over any number of samples, in fixed-size
  batches (the last one padded), so every count reuses one compiled
  embedder; returns (n, d) float32 numpy."""
  samples = np.asarray(samples, np.float32)
  out = []
  for start in range(0, samples.shape[0], batch):
    chunk = samples[start:start + batch]
    pad = batch - chunk.shape[0]
    if pad:
      chunk = np.concatenate([chunk, np.repeat(chunk[-1:], pad, 0)])
    out.append(np.asarray(embed_fn(params, chunk))[:batch - pad])
  return np.concatenate(out)


def export(name: str, params_tree, metadata: dict,
           directory: str | None = None, parts: dict | None = None) -> str:
  """Writes a model's parameters, info.json and any further `parts` (name
  -> tree, e.g. a GAN's "discriminator") under directory/name (default:
  `CHECKPOINTS`)."""
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  import shutil  # pylint: disable=g-import-not-at-top
  import tempfile  # pylint: disable=g-import-not-at-top
  from lsh_gan import _files  # pylint: disable=g-import-not-at-top
  from lsh_gan import _logging  # pylint: disable=g-import-not-at-top
  directory = os.path.abspath(CHECKPOINTS if directory is None else directory)
  path = os.path.join(directory, name)
  os.makedirs(directory, exist_ok=True)
  # Written whole in a temporary folder, then swapped in: a failed export
  # leaves the previous model as it was.
  staging = tempfile.mkdtemp(prefix=f".{name}.", dir=directory)
  try:
    with _logging.quiet_orbax():
      checkpointer = ocp.StandardCheckpointer()
      checkpointer.save(os.path.join(staging, "params"), params_tree)
      checkpointer.wait_until_finished()
      for part, tree in (parts or {}).items():
        checkpointer.save(os.path.join(staging, part), tree)
        checkpointer.wait_until_finished()
    _files.write_json(os.path.join(staging, "info.json"), metadata,
                      sort_keys=True)
    os.chmod(staging, 0o755)
    old = None
    if os.path.exists(path):
      old = tempfile.mkdtemp(prefix=f".{name}.old.", dir=directory)
      os.replace(path, os.path.join(old, name))
    os.replace(staging, path)
  except BaseException:
    shutil.rmtree(staging, ignore_errors=True)
    raise
  if old is not None:
    shutil.rmtree(old, ignore_errors=True)
  _clear_caches()
  return path


def add_part(name: str, part: str, tree, metadata: dict,
             directory: str | None = None) -> str:
  """Adds (or replaces) one further part of a committed model, e.g. the
  "discriminator" of a generator, and merges `metadata` into its
  info.json; its params are left as they are (its fingerprint with them).
  Written in a temporary folder, then swapped in."""
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  import shutil  # pylint: disable=g-import-not-at-top
  import tempfile  # pylint: disable=g-import-not-at-top
  from lsh_gan import _files  # pylint: disable=g-import-not-at-top
  from lsh_gan import _logging  # pylint: disable=g-import-not-at-top
  if part in ("params", "info.json") or not part.isidentifier():
    raise ValueError(f"part={part!r} must be a name other than params")
  folder = os.path.join(
      os.path.abspath(CHECKPOINTS if directory is None else directory), name)
  if not os.path.exists(os.path.join(folder, "info.json")):
    raise ValueError(f"name={name!r} is not a model in {os.path.dirname(folder)}")
  with open(os.path.join(folder, "info.json")) as f:
    merged = {**json.load(f), **metadata}
  staging = tempfile.mkdtemp(prefix=f".{part}.", dir=folder)
  try:
    with _logging.quiet_orbax():
      checkpointer = ocp.StandardCheckpointer()
      checkpointer.save(os.path.join(staging, part), tree)
      checkpointer.wait_until_finished()
    os.chmod(os.path.join(staging, part), 0o755)
    path = os.path.join(folder, part)
    if os.path.exists(path):
      os.replace(path, os.path.join(staging, "old"))
    os.replace(os.path.join(staging, part), path)
    _files.write_json(os.path.join(folder, "info.json"), merged,
                      sort_keys=True)
  finally:
    shutil.rmtree(staging, ignore_errors=True)
  _clear_caches()
  return path


def _clear_caches():
  _params.cache_clear()
  _fingerprint.cache_clear()
  _sampler.cache_clear()
  _critic.cache_clear()
  _gan_modules.cache_clear()
