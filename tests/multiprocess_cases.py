"""Cases for tests/multiprocess_test.py: one of two JAX processes.

    python tests/multiprocess_cases.py PROCESS_ID PORT OUT.json DATA_DIR WORKDIR
    python tests/multiprocess_cases.py one OUT.json DATA_DIR WORKDIR

Two local CPU processes (two devices each) join one JAX runtime through a
coordinator on 127.0.0.1 (`jax.distributed.initialize`, CPU collectives by
gloo), build global row-sharded arrays from the half of the rows each holds
(`jax.make_array_from_process_local_data`), and score them; each writes its
results, which must be identical to the other's and to one process's (the
`one` mode: one CPU device). Not a test module itself (nothing runs on
import).
"""

import json
import os
import sys


def sets():
  """The sets every process (and the test) builds, from one seed."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  real = rng.normal(size=(1000, 16)).astype(np.float32)
  fake = (rng.normal(size=(904, 16)) * 1.2 + 0.3).astype(np.float32)
  return real, fake


def tiny_sweep(data_dir: str):
  """A small sweep config on the digits DCGAN, run by both processes and,
  for comparison, by the test on one device."""
  # The repository root, for the configs package (a child process starts
  # with only this script's folder on its path).
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
      __file__))))
  from configs import sweep_dcgan_mnist5k  # pylint: disable=g-import-not-at-top
  config = sweep_dcgan_mnist5k.get_config()
  config.generator = "dcgan_digits"
  config.data_dir = data_dir
  config.num_samples = 320
  config.num_reference = 600
  config.grid_samples = 16
  config.points = "quantize(bits=4)"
  return config


def scores(metrics, real, fake, **kw) -> dict:
  """Every metric of one pair of sets (module functions and a Reference)."""
  ref = metrics.Reference(real, **kw)
  return {
      **metrics.knn_precision_recall(real, fake, **kw),
      **metrics.density_coverage(real, fake, **kw),
      **metrics.frechet_distance(real, fake, **kw),
      **metrics.kernel_distance(real, fake, num_subsets=4, subset_size=200,
                                **kw),
      **{f"lsh_{k}": v for k, v in metrics.lsh_precision_recall(
          real, fake, **kw).items()},
      **{f"reference_{k}": v for k, v in {
          **ref.knn_metrics(fake), **ref.frechet_distance(fake)}.items()},
  }


def main(process_id: int, port: int, out: str, data_dir: str,
         workdir: str) -> None:
  os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
  import jax  # pylint: disable=g-import-not-at-top
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(f"127.0.0.1:{port}", num_processes=2,
                             process_id=process_id,
                             initialization_timeout=120)
  from jax.sharding import NamedSharding  # pylint: disable=g-import-not-at-top
  from jax.sharding import PartitionSpec as P  # pylint: disable=g-import-not-at-top
  from lsh_gan import metrics  # pylint: disable=g-import-not-at-top
  from lsh_gan import pipeline  # pylint: disable=g-import-not-at-top

  assert jax.process_count() == 2 and jax.device_count() == 4
  real, fake = sets()
  rows = NamedSharding(jax.make_mesh((4,), ("data",)), P("data"))
  half = lambda x: x[process_id * len(x) // 2:(process_id + 1) * len(x) // 2]
  global_real = jax.make_array_from_process_local_data(rows, half(real),
                                                       real.shape)
  global_fake = jax.make_array_from_process_local_data(rows, half(fake),
                                                       fake.shape)
  results = {"process_local": scores(metrics, global_real, global_fake)}
  # The tiny sweep in both processes, one workdir: generation, embedding
  # (its real set from the host of each process) and scoring on the four
  # devices; process 0 locks, reads and writes the workdir.
  results["sweep"] = pipeline.run(tiny_sweep(data_dir), workdir)
  with open(out, "w") as f:
    json.dump(results, f)
  jax.distributed.shutdown()


def one_process(out: str, data_dir: str, workdir: str) -> None:
  """The same scores and sweep in one process on one CPU device (numpy
  inputs, no mesh): what the two processes must agree with."""
  import jax  # pylint: disable=g-import-not-at-top
  from lsh_gan import metrics  # pylint: disable=g-import-not-at-top
  from lsh_gan import pipeline  # pylint: disable=g-import-not-at-top
  assert jax.device_count() == 1 and jax.default_backend() == "cpu"
  config = tiny_sweep(data_dir)
  config.mesh.devices = 1
  results = {"scores": scores(metrics, *sets()),
             "rows": pipeline.run(config, workdir)}
  with open(out, "w") as f:
    json.dump(results, f)


if __name__ == "__main__":
  sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
  if sys.argv[1] == "one":
    one_process(*sys.argv[2:5])
  else:
    main(int(sys.argv[1]), int(sys.argv[2]), *sys.argv[3:6])
