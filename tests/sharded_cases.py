"""Cases for tests/sharded_test.py, run in a process with 8 CPU devices.

    XLA_FLAGS=--xla_force_host_platform_device_count=8 \
        python tests/sharded_cases.py OUT.json

Each case scores the same sets on one device and on a mesh (sharded inputs,
host inputs with a mesh, several layouts) and writes both results to OUT.json
for the test to compare. Not a test module itself (pytest imports it for
doctests only: nothing runs on import).
"""

import json
import re
import sys


def _sets(rng, n, m, d, scale=1.0):
  import numpy as np  # pylint: disable=g-import-not-at-top
  real = (rng.normal(size=(n, d)) * scale).astype(np.float32)
  fake = ((rng.normal(size=(m, d)) * 1.2 + 0.3) * scale).astype(np.float32)
  return real, fake


def _peers(ref, fake) -> dict:
  """The robust peers of a fake set against a Reference, by column name."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  out = {}
  for prefix, method in (("p", ref.probabilistic_precision_recall),
                         ("top", ref.top_precision_recall),
                         ("clipped", ref.clipped_density_coverage)):
    out.update({f"{prefix}_{k}": v for k, v in method(fake).items()})
  out["realism_median"] = float(np.median(ref.realism_scores(fake)))
  return out


def run() -> dict:
  """Every case's results, by name."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from jax.sharding import Mesh  # pylint: disable=g-import-not-at-top
  from jax.sharding import NamedSharding  # pylint: disable=g-import-not-at-top
  from jax.sharding import PartitionSpec as P  # pylint: disable=g-import-not-at-top

  from lsh_gan import metrics  # pylint: disable=g-import-not-at-top
  from lsh_gan.metrics import _sharded  # pylint: disable=g-import-not-at-top

  assert jax.device_count() == 8, jax.devices()
  out = {}
  rng = np.random.default_rng(0)
  mesh = jax.make_mesh((8,), ("data",))
  rows = NamedSharding(mesh, P("data"))

  def knn_both(real, fake, **kw):
    return {**metrics.knn_precision_recall(real, fake, k=3, **kw),
            **metrics.density_coverage(real, fake, k=5, **kw)}

  # Exact KNN: sharded jax.Arrays; host arrays with n not divisible by 8;
  # a 3-device sub-mesh; a 2-D mesh; arrays laid out by columns and
  # replicated; a scale far outside float32's comfortable range.
  real, fake = _sets(rng, 1000, 904, 16)
  out["knn_rows"] = [knn_both(real, fake),
                     knn_both(jax.device_put(real, rows),
                              jax.device_put(fake, rows))]
  real, fake = _sets(rng, 1003, 611, 16)
  out["knn_host_uneven"] = [knn_both(real, fake),
                            knn_both(real, fake, mesh=mesh)]
  sub = Mesh(np.asarray(jax.devices()[:3]), ("data",))
  real, fake = _sets(rng, 999, 1002, 16)
  out["knn_three_devices"] = [
      knn_both(real, fake),
      knn_both(jax.device_put(real, NamedSharding(sub, P("data"))),
               fake)]
  grid = jax.make_mesh((4, 2), ("a", "b"))
  real, fake = _sets(rng, 1016, 800, 16)
  out["knn_grid_columns_replicated"] = [
      knn_both(real, fake),
      knn_both(jax.device_put(real, NamedSharding(grid, P(("a", "b")))),
               jax.device_put(fake, NamedSharding(grid, P())), mesh=grid),
      knn_both(jax.device_put(real, NamedSharding(mesh, P(None, "data"))),
               fake)]
  real, fake = _sets(rng, 800, 720, 16, scale=1e25)
  out["knn_scale"] = [knn_both(real / 1e25, fake / 1e25),
                      knn_both(jax.device_put(real, rows),
                               jax.device_put(fake, rows))]
  # Identical sets: every point has a twin at distance 0.
  real, _ = _sets(rng, 640, 8, 16)
  out["knn_identical"] = knn_both(jax.device_put(real, rows),
                                  jax.device_put(real, rows))

  # FID and KID, and a Reference on the mesh scoring two fake sets.
  for name, scale in (("unit", 1.0), ("tiny", 1e-30), ("huge", 1e25)):
    real, fake = _sets(rng, 1200, 960, 24, scale)
    kid = dict(num_subsets=7, subset_size=200, batch=3)
    out[f"fid_kid_{name}"] = [
        {**metrics.frechet_distance(real, fake),
         **metrics.kernel_distance(real, fake, **kid)},
        {**metrics.frechet_distance(jax.device_put(real, rows),
                                    jax.device_put(fake, rows)),
         **metrics.kernel_distance(real, fake, mesh=mesh, **kid)}]
  real, fake = _sets(rng, 1200, 960, 24)
  one, sharded = metrics.Reference(real), metrics.Reference(real, mesh=mesh)
  # The same set read from batches, laid out on the mesh from its file.
  batched = metrics.Reference.from_batches(
      (real[i:i + 250] for i in range(0, 1200, 250)), mesh=mesh)
  scored = []
  for ref in (one, sharded, batched):
    fakes = (fake, fake[:500] * 0.8)
    if ref is batched:
      fakes = [ref.fake_from_batches([f[:100], f[100:]]) for f in fakes]
    scored.append([{**ref.knn_metrics(f), **ref.frechet_distance(f),
                    **ref.kernel_distance(f, num_subsets=4,
                                          subset_size=300),
                    **{f"lsh_{k}": v for k, v in
                       ref.lsh_precision_recall(f).items()},
                    **_peers(ref, f)}
                   for f in fakes])
  out["reference"] = scored
  out["reference_computed"] = dict(sharded.computed)

  # LSH-only on the mesh: two clusters against one of them (recall about
  # one half), tiny and huge scales, every coverage rule, a given width.
  lsh = {}
  centres = rng.normal(size=(2, 12)) * 6
  for name, scale in (("unit", 1.0), ("huge", 1e25)):
    real = ((rng.normal(size=(1203, 12)) + centres[rng.integers(0, 2, 1203)])
            * scale).astype(np.float32)
    fake = ((rng.normal(size=(611, 12)) * 0.9 + centres[0])
            * scale).astype(np.float32)
    one, on_mesh = metrics.Reference(real), metrics.Reference(real, mesh=mesh)
    for rule in ("calibrated", "any", "majority"):
      lsh[f"{name} {rule}"] = [
          ref.lsh_precision_recall(fake, coverage=rule, min_count=2)
          for ref in (one, on_mesh)]
    width = one.lsh_width()
    lsh[f"{name} width"] = [[one.lsh_width(), on_mesh.lsh_width()]] + [
        ref.lsh_precision_recall(jax.device_put(fake[:608], rows),
                                 bucket_width=2 * width)
        for ref in (one, on_mesh)]
  # A dense cluster next to points 3e5 times as far out: the width
  # sample's float32 pass cannot settle it, the float64 pass must.
  x = rng.normal(size=(6000, 3)).astype(np.float32)
  x[:5000] *= 1e-2
  x[5000:] *= 3e3 / np.linalg.norm(x[5000:], axis=1, keepdims=True)
  lsh["dense far-out widths"] = [metrics.Reference(x).lsh_width(),
                                 metrics.Reference(x, mesh=mesh).lsh_width()]
  out["lsh"] = lsh

  # LSH + KNN on the mesh: clusters (a few points isolated in their
  # buckets), magnitudes 1 and 1e25, fewer and more fake points than real,
  # sharded arrays and host arrays; a given width; max_candidates = 256,
  # whose chunk does not divide every device's rows (read onto one device).
  lsh_knn = {}
  centres = rng.normal(size=(5, 12)) * 4
  for name, (n, m, scale, fake_scale) in {
      "unit": (2003, 1500, 1.0, 1.0),
      "few fake, huge": (1500, 300, 1e25, 1e25),
      "many fake": (900, 2000, 1.0, 1.0),
      # Computed in the fake set's units (shift 33): the rescaled index.
      "fake 1e25 times larger": (1200, 800, 1.0, 1e25)}.items():
    real = ((centres[rng.integers(0, 5, n)] + rng.normal(size=(n, 12)))
            * scale).astype(np.float32)
    fake = ((centres[rng.integers(0, 3, m)] + 1.1 * rng.normal(size=(m, 12)))
            * fake_scale).astype(np.float32)
    on_mesh = metrics.Reference(real, mesh=mesh)
    fake_set = on_mesh.fake_set(fake)
    # The error estimate (exact radii on the mesh) where the index is
    # rescaled and where it is not; elsewhere skipped, for time.
    errors = dict(error_sample=0) if name in ("few fake, huge",
                                               "many fake") else {}
    one_device = metrics.Reference(real).lsh_knn_precision_recall(fake,
                                                                  **errors)
    with _no_gather(_sharded):
      lsh_knn[name] = [one_device,
                       on_mesh.lsh_knn_precision_recall(fake_set, **errors)]
    # pylint: disable=protected-access
    lsh_knn[name + " gathered"] = (on_mesh._real is not None or
                                   fake_set._values is not None)
    # pylint: enable=protected-access
  real, fake = _sets(rng, 1000, 904, 16)
  with _no_gather(_sharded):  # on the mesh, not read onto one device
    on_rows = metrics.lsh_knn_precision_recall(jax.device_put(real, rows),
                                               jax.device_put(fake, rows),
                                               bucket_width=3.0)
  lsh_knn["rows, given width"] = [
      metrics.lsh_knn_precision_recall(real, fake, bucket_width=3.0), on_rows]
  lsh_knn["256 candidates"] = [
      metrics.lsh_knn_precision_recall(real, fake, max_candidates=256,
                                       error_sample=0),
      metrics.lsh_knn_precision_recall(real, fake, max_candidates=256,
                                       error_sample=0, mesh=mesh)]
  out["lsh_knn"] = lsh_knn
  out["lsh_knn_pieces"] = _lsh_knn_pieces(rng, mesh)

  # Errors: bad values found on the devices, and a bad mesh.
  real, fake = _sets(rng, 1200, 960, 24)
  bad = np.array(real)
  bad[517, 3] = np.nan
  errors = {}
  for name, call in (
      ("nan", lambda: metrics.knn_precision_recall(
          jax.device_put(bad, rows), fake)),
      ("mesh", lambda: metrics.knn_precision_recall(real, fake,
                                                    mesh="all")),
      ("features", lambda: metrics.frechet_distance(
          jax.device_put(real, rows), fake[:, :5]))):
    try:
      call()
      errors[name] = None
    except ValueError as err:
      errors[name] = str(err)
  out["errors"] = errors

  # What one device holds and computes: the k-NN ring on 8 x 2048 rows of
  # 64 features (a 4 MiB set), and the precision of its products.
  spec = lambda shape: jax.ShapeDtypeStruct(shape, jnp.float32,
                                            sharding=rows)
  args = (spec((8 * 2048, 64)), spec((8 * 2048,)))
  radii = _sharded._radii_fn(mesh, 3, 128)  # pylint: disable=protected-access
  stats = radii.lower(*args).compile().memory_analysis()
  cross = _sharded._cross_fn(mesh, 128)  # pylint: disable=protected-access
  cross_args = (args[0], args[1], args[1], args[0], args[1], args[1],
                args[1])
  cross_stats = cross.lower(*cross_args).compile().memory_analysis()
  precisions = set()
  for fn, a in ((radii, args), (cross, cross_args)):
    precisions |= set(re.findall(r"precision=\(?([\w.]+)",
                                 str(jax.make_jaxpr(fn)(*a))))
  out["memory"] = {
      "set_bytes": 8 * 2048 * 64 * 4,
      "radii": [stats.argument_size_in_bytes, stats.temp_size_in_bytes],
      "cross": [cross_stats.argument_size_in_bytes,
                cross_stats.temp_size_in_bytes],
      "precisions": sorted(precisions)}
  return out


class _no_gather:  # pylint: disable=invalid-name
  """Within it, reading a set on the mesh onto one device raises."""

  def __init__(self, sharded):
    self.sharded = sharded

  def __enter__(self):
    self.saved = self.sharded.host_rows

    def refuse(*_):
      raise AssertionError("a set on the mesh was read onto one device")

    self.sharded.host_rows = refuse

  def __exit__(self, *exc):
    self.sharded.host_rows = self.saved


def _lsh_knn_pieces(rng, mesh) -> dict:
  """LSH + KNN's candidate radii and covers on the mesh, element by element
  against the one-device arrays, from the same sorted tables: windows that
  cross the devices' stretches (per as small as the halo allows), the last
  device, few and many queries, M = 128 and 256."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from jax.sharding import NamedSharding  # pylint: disable=g-import-not-at-top
  from jax.sharding import PartitionSpec as P  # pylint: disable=g-import-not-at-top
  from lsh_gan.metrics import _hashing  # pylint: disable=g-import-not-at-top
  from lsh_gan.metrics import _lsh_knn  # pylint: disable=g-import-not-at-top
  from lsh_gan.metrics import _sharded_lsh_knn  # pylint: disable=g-import-not-at-top

  def padded(a, rows):
    return np.concatenate([a, np.zeros((rows - a.shape[0],) + a.shape[1:],
                                       a.dtype)])

  sharded = lambda a: jax.device_put(a, NamedSharding(mesh, P("data")))
  out = {}
  for name, (n, m, d, cand) in {"M 128": (2001, 1500, 16, 128),
                                "few queries": (1500, 200, 8, 128),
                                "M 256": (2003, 2500, 12, 256)}.items():
    centres = rng.normal(size=(5, d)) * 4
    x = (centres[rng.integers(0, 5, n)] + rng.normal(size=(n, d))).astype(
        np.float32)
    y = (centres[rng.integers(0, 3, m)] + 1.1 * rng.normal(size=(m, d))
         ).astype(np.float32)
    family = _hashing.HashFamily.create(d, 4, min(8, d), 0)
    centre = _hashing.mean_rows(jnp.asarray(x))
    real = _lsh_knn.Prepared(jnp.asarray(x), centre, family, cand)
    fake = _lsh_knn.Prepared(jnp.asarray(y), centre, family, cand)
    width = _lsh_knn.fill_width(real, 16, float(np.sqrt(d)))
    index = _lsh_knn.Indexed(real, width, 3)
    chunk = max(128, cand)
    rows, rows_q = (8 * -(-s // 8 // chunk) * chunk for s in (n, m))
    keys = [padded(np.asarray(a)[:n], rows) for a in real.keys(width)]
    tables = _lsh_knn._sort_tables(*keys, n)  # pylint: disable=protected-access
    points = sharded(padded(np.asarray(real.points)[:n], rows))
    radii = _sharded_lsh_knn.candidate_radii_sq(points, tables, n, 3, cand,
                                                mesh)
    want = np.asarray(index.rho2)[:n]
    largest = max(1, int(_lsh_knn._largest_bucket(tables)))  # pylint: disable=protected-access
    window = min(cand, 1 << (largest - 1).bit_length())
    q_keys = [padded(np.asarray(a)[:m], rows_q) for a in fake.keys(width)]
    lo, hi = (np.asarray(a)[:m] for a in _lsh_knn._query_windows(  # pylint: disable=protected-access
        *q_keys, m, tables, n, window=window))
    hits = _sharded_lsh_knn.covered(
        points, padded(radii, rows) - (np.arange(rows) >= n), tables, window,
        cand, sharded(padded(np.asarray(fake.points)[:m], rows_q)), lo, hi,
        m, mesh)
    out[name] = {"per": rows // 8,
                 "radii equal": bool(np.array_equal(radii, want)),
                 "isolated": int((want < 0).sum()),
                 "cover equal": bool(np.array_equal(
                     hits, _lsh_knn.covered(index, fake))),
                 "covered": float(hits.mean())}
  return out


def run_in_child(folder) -> dict:
  """Every case, run in a child process with 8 CPU devices writing in
  `folder` (a pathlib.Path); its results."""
  import os  # pylint: disable=g-import-not-at-top
  import subprocess  # pylint: disable=g-import-not-at-top
  out = folder / "results.json"
  hlo = folder / "hlo"
  env = {**os.environ,
         "XLA_FLAGS": (os.environ.get("XLA_FLAGS", "") +
                       " --xla_force_host_platform_device_count=8"
                       f" --xla_dump_to={hlo} --xla_dump_hlo_as_text"
                       " --xla_dump_hlo_module_re=.*").strip(),
         "JAX_PLATFORMS": "cpu"}
  # Every kernel compiled in the child (no shared cache: its HLO must be
  # dumped, and no other process compiles for 8 devices).
  env.pop("JAX_COMPILATION_CACHE_DIR", None)
  done = subprocess.run(
      [sys.executable, os.path.abspath(__file__), str(out)], env=env, capture_output=True, text=True,
      timeout=900, check=False)
  if done.returncode:
    raise RuntimeError(done.stderr[-4000:])
  with open(out) as f:
    results = json.load(f)
  results["dots"] = float32_dots(hlo)
  return results


def float32_dots(folder) -> dict:
  """The float32 products in the HLO dumped to `folder` (before XLA's
  passes): {"modules": names of modules with one, "default": those with a
  product at default precision (operand_precision not highest)}. On GPU and
  TPU the default multiplies float32 in bfloat16 or TF32."""
  modules, default = set(), set()
  for path in folder.glob("*.before_optimizations.txt"):
    name = path.name.split(".")[1]
    for line in path.read_text().splitlines():
      if not re.search(r"= f32\[[^]]*\]\S* (dot|convolution)\(", line):
        continue
      modules.add(name)
      if "operand_precision={highest,highest}" not in line:
        default.add(name)
  return {"modules": sorted(modules), "default": sorted(default)}


if __name__ == "__main__":
  results = run()
  with open(sys.argv[1], "w") as f:
    json.dump(results, f)
