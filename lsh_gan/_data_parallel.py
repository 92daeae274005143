"""Generation and embedding data-parallel over a mesh, for the pipeline.

On a mesh of D devices (one axis, "data"; every process's devices under
`jax.distributed`), a sweep point's samples are made and embedded where
they will be scored:

  latents     one global (num, latent_dim) normal draw from the point's key,
              sharded by rows (JAX's partitionable threefry gives each row
              the same values as the one-device draw);
  samples     each device applies the generator to its rows (parameters
              replicated), in one call;
  embeddings  each device embeds its samples in fixed batches (the last one
              padded), so the embedder compiles once for any num.

The results stay on the devices, sharded by rows, for the metrics
(`lsh_gan.metrics` takes them as they are). `num` must be a multiple of D:
the pipeline checks it with the config. The real split, which every process
reads from disk, is embedded the same way from the host and returned to the
host of every process.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from lsh_gan.metrics import _sharded

AXIS = "data"


def mesh(devices: int | None) -> Mesh | None:
  """A one-axis mesh of the first `devices` devices (-1 or None: all of
  every process's), or None for one device (the one-device code runs).

  Raises:
    ValueError: more devices than there are, 0 or below -1, or, across
      processes, fewer than all of them.
  """
  available = jax.device_count()
  if devices is None or devices == -1:
    devices = available
  if (not isinstance(devices, int) or isinstance(devices, bool) or
      not 1 <= devices <= available):
    raise ValueError(f"config.mesh.devices={devices!r} must be -1 (all) or "
                     f"a count from 1 to the {available} devices there are")
  if jax.process_count() > 1 and devices != available:
    raise ValueError(f"config.mesh.devices={devices}: a run of "
                     f"{jax.process_count()} processes uses all "
                     f"{available} devices (-1)")
  if devices == 1:
    return None
  return Mesh(np.asarray(jax.devices()[:devices]), (AXIS,))


def is_main() -> bool:
  """Whether this process writes the results (process 0)."""
  return jax.process_index() == 0


@functools.lru_cache(maxsize=None)
def _latents_fn(latent_dim: int, num: int, sharding):
  return jax.jit(
      lambda key: jax.random.normal(key, (num, latent_dim), jnp.float32),
      out_shardings=sharding)


@functools.lru_cache(maxsize=None)
def _apply_fn(apply, mesh_: Mesh):
  return jax.jit(jax.shard_map(apply, mesh=mesh_, in_specs=(P(), P(AXIS)),
                               out_specs=P(AXIS), check_vma=False))


def sample(sample_fn, variables, key, num: int, mesh_: Mesh) -> jax.Array:
  """`sample_fn(variables, key, num)`'s samples, made on the mesh: a global
  array sharded by rows (`sample_fn` from `models.sampler`)."""
  z = _latents_fn(sample_fn.latent_dim, num,
                  NamedSharding(mesh_, P(AXIS)))(key)
  return _apply_fn(sample_fn.apply, mesh_)(variables, z)


def _local_embed(params, x, *, embed_fn, batch: int):
  """One device's rows embedded in fixed batches (the last padded)."""
  rows = x.shape[0]
  count = -(-rows // batch)
  x = jnp.pad(x, ((0, count * batch - rows),) + ((0, 0),) * (x.ndim - 1))
  out = jax.lax.map(lambda chunk: embed_fn(params, chunk),
                    x.reshape((count, batch) + x.shape[1:]))
  return out.reshape((count * batch,) + out.shape[2:])[:rows]


@functools.lru_cache(maxsize=None)
def _embed_fn(embed_fn, batch: int, mesh_: Mesh):
  return jax.jit(jax.shard_map(
      functools.partial(_local_embed, embed_fn=embed_fn, batch=batch),
      mesh=mesh_, in_specs=(P(), P(AXIS)), out_specs=P(AXIS),
      check_vma=False))


def embed(embed_fn, params, samples: jax.Array, batch: int,
          mesh_: Mesh) -> jax.Array:
  """Embeddings of row-sharded samples, sharded alike."""
  return _embed_fn(embed_fn, batch, mesh_)(params, samples)


def embed_host(embed_fn, params, samples: np.ndarray, batch: int,
               mesh_: Mesh) -> np.ndarray:
  """Embeddings of host samples (the same on every process), returned to
  every process's host: the rows are padded to a multiple of the devices,
  each device embeds its share."""
  devices = mesh_.devices.size
  n = samples.shape[0]
  padded = np.concatenate([samples, np.repeat(
      samples[-1:], -n % devices, axis=0)]) if n % devices else samples
  sharding = NamedSharding(mesh_, P(AXIS))
  x = jax.make_array_from_callback(padded.shape, sharding,
                                   lambda index: padded[index])
  return _sharded.host(embed(embed_fn, params, x, batch, mesh_))[:n]


@functools.lru_cache(maxsize=None)
def _prefix_fn(count: int, sharding):
  return jax.jit(lambda x: x[:count], out_shardings=sharding)


def first_rows(x, count: int) -> np.ndarray:
  """The first `count` rows of a row-sharded array on every process's host
  (only they are gathered; every process must call it, as for any
  collective)."""
  if isinstance(x, np.ndarray):
    return x[:count]
  replicated = NamedSharding(x.sharding.mesh, P())
  return np.asarray(_prefix_fn(min(count, x.shape[0]), replicated)(x)
                    .addressable_data(0))


@jax.jit
def _all_finite(x):
  return jnp.all(jnp.isfinite(x))


def all_finite(x) -> bool:
  if isinstance(x, np.ndarray):
    return bool(np.all(np.isfinite(x)))
  return bool(np.asarray(_all_finite(x).addressable_data(0)))


def from_main(mask: np.ndarray) -> np.ndarray:
  """Process 0's boolean mask, on every process."""
  if jax.process_count() == 1:
    return mask
  return np.asarray(multihost_utils.broadcast_one_to_all(
      np.asarray(mask, np.int32))).astype(bool)


def call_on_main(fn):
  """fn()'s JSON-able result, computed by process 0 and sent to every
  process (a ValueError it raises is raised on every process): what a run
  reads from its workdir, read by the one process that holds its lock."""
  if jax.process_count() == 1:
    return fn()
  import json  # pylint: disable=g-import-not-at-top
  payload = b""
  if is_main():
    try:
      payload = json.dumps({"value": fn()}).encode()
    except ValueError as err:
      payload = json.dumps({"error": str(err)}).encode()
  size = int(np.asarray(multihost_utils.broadcast_one_to_all(
      np.int32(len(payload)))))
  data = np.frombuffer(payload, np.uint8) if is_main() else np.zeros(
      size, np.uint8)
  message = json.loads(bytes(np.asarray(
      multihost_utils.broadcast_one_to_all(data), np.uint8)).decode())
  if "error" in message:
    raise ValueError(message["error"])
  return message["value"]
