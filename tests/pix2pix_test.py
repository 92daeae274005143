"""pix2pix (lsh_gan.models.pix2pix, train.train_pix2pix) and the paired
metrics (lsh_gan.metrics.paired): shapes, training that resumes bit for
bit, and fidelity checked against scikit-image and by hand on real digits."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lsh_gan import data
from lsh_gan import models
from lsh_gan import pipeline
from lsh_gan import pretrained
from lsh_gan import train
from lsh_gan.metrics import paired
from lsh_gan.models import pix2pix

import conftest


@pytest.fixture(scope="module")
def pairs(data_dir):
  return data.load("edges2digits", "test", data_dir=data_dir, limit=300)


def test_unet_keeps_the_image_size_and_each_output_sees_its_own_input():
  generator = pix2pix.UNetGenerator(width=4, levels=5)
  x = jax.random.uniform(jax.random.key(0), (3, 28, 28, 1), minval=-1,
                         maxval=1)
  variables = jax.jit(generator.init)(jax.random.key(1), x)
  apply = jax.jit(generator.apply)
  out = apply(variables, x)
  assert out.shape == (3, 28, 28, 1)
  assert float(jnp.abs(out).max()) <= 1.0
  # Inference mode: an image's output does not depend on its batch.
  np.testing.assert_allclose(apply(variables, x[:1]), out[:1], rtol=1e-5,
                             atol=1e-6)
  # A side that needs no padding; the bottleneck is 1x1 (5 levels from
  # 32), and every level is sown.
  x32 = jax.ShapeDtypeStruct((3, 32, 32, 1), jnp.float32)
  assert jax.eval_shape(generator.apply, variables, x32).shape == x32.shape
  _, state = jax.eval_shape(functools.partial(
      generator.apply, mutable=["intermediates"]), variables, x32)
  sides = [f.shape[1] for f in state["intermediates"]["features"]]
  assert sides == [16, 8, 4, 2, 1, 2, 4, 8, 16]
  # Slimmer channels keep the parameter names.
  slim = pix2pix.UNetGenerator(width=4, levels=5, channels=(2, 3, 4, 5, 6))
  slim_vars = jax.eval_shape(slim.init, jax.random.key(1), x)
  assert jax.tree.structure(slim_vars) == jax.tree.structure(variables)
  assert slim_vars["params"]["Conv_1"]["kernel"].shape == (4, 4, 2, 3)
  # The skip connection: the last decoder level sees 2 x its output width.
  assert slim_vars["params"]["ConvTranspose_4"]["kernel"].shape == (
      4, 4, 4, 1)
  with pytest.raises(ValueError, match="5 positive channel counts"):
    jax.eval_shape(pix2pix.UNetGenerator(channels=(2, 3)).init,
                   jax.random.key(0), x)
  with pytest.raises(ValueError, match="square"):
    jax.eval_shape(generator.init, jax.random.key(0),
                   jnp.zeros((1, 28, 32, 1)))


def test_patch_discriminator_gives_a_logit_per_patch():
  d = pix2pix.PatchDiscriminator(width=4, n_layers=2)
  x = jnp.zeros((2, 28, 28, 1))
  params = d.init(jax.random.key(0), x, x)
  logits, _ = d.apply(params, x, x, mutable=["batch_stats"])
  assert logits.shape == (2, 5, 5)
  # The condition is an input: the first convolution sees two channels.
  assert params["params"]["Conv_0"]["kernel"].shape == (4, 4, 2, 4)
  with pytest.raises(ValueError, match="one size"):
    d.init(jax.random.key(0), x, jnp.zeros((2, 14, 14, 1)))


def test_registry_builds_pix2pix_and_the_translator_checks_its_input():
  config = {"architecture": "pix2pix", "dataset": "edges2digits",
            "width": 4, "d_width": 8, "levels": 2}
  generator, discriminator = models.build(config)
  assert models.is_conditional(config) and models.is_gan(config)
  assert generator.width == 4 and discriminator.width == 8
  translate = models.translator(generator)
  assert models.translator(generator) is translate  # built once
  x = jnp.zeros((2, 28, 28, 1))
  out = translate(generator.init(jax.random.key(0), x), x)
  assert out.shape == (2, 28, 28, 1) and out.dtype == jnp.float32
  with pytest.raises(ValueError, match="conditions of shape"):
    translate({}, jnp.zeros((28, 28, 1)))
  with pytest.raises(ValueError, match="dtype"):
    translate({}, np.zeros((1, 28, 28, 1), np.uint8))
  with pytest.raises(ValueError, match="1-channel conditions"):
    translate(generator.init(jax.random.key(0), x), jnp.zeros((2, 28, 28, 3)))
  with pytest.raises(ValueError, match="levels=0"):
    models.build({**config, "levels": 0})


def _tiny_config(data_dir, steps):
  from configs import train_pix2pix_edges2digits  # pylint: disable=g-import-not-at-top
  config = train_pix2pix_edges2digits.get_config()
  config.data_dir = data_dir
  # Two levels (28 -> 14 -> 7 and back): what is tested compiles fast.
  config.width, config.d_width, config.batch_size = 4, 4, 8
  config.levels = 2
  config.steps, config.decay_steps = steps, steps // 2
  config.log_every = config.checkpoint_every = 3
  config.augment_shift = 1
  return config


def test_pix2pix_training_resumes_bit_exactly(data_dir, tmp_path):
  config = _tiny_config(data_dir, 6)
  whole = train.train_pix2pix(config, str(tmp_path / "a"))
  first = train.train_pix2pix(config, str(tmp_path / "b"), stop_after=3)
  assert first["step"] == 3
  resumed = train.train_pix2pix(config, str(tmp_path / "b"))
  assert resumed["step"] == 6
  for part in ("variables", "discriminator"):
    for a, b in zip(jax.tree.leaves(whole[part]),
                    jax.tree.leaves(resumed[part])):
      np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert set(whole["variables"]) == {"params", "batch_stats"}
  # Quality on the test split: paired, edge and distribution metrics, in
  # the mnist5k embedding (edges2digits' targets are mnist5k digits).
  assert whole["space"] == "embedding"
  for key in ("l1", "psnr", "ssim", "edge_f1", "precision", "recall",
              "fid"):
    assert np.isfinite(whole[key]), key


def test_pix2pix_refuses_unpaired_data_a_bad_decay_and_another_run(
    data_dir, tmp_path):
  config = _tiny_config(data_dir, 4)
  config.dataset = "mnist5k"
  with pytest.raises(ValueError, match="not a paired dataset"):
    train.train_pix2pix(config, str(tmp_path / "a"))
  config = _tiny_config(data_dir, 4)
  config.decay_steps = 5
  with pytest.raises(ValueError, match="decay_steps=5"):
    train.train_pix2pix(config, str(tmp_path / "b"))
  # A finished run is not resumed under more steps (its decay would start
  # again from another step).
  config = _tiny_config(data_dir, 2)
  train.train_pix2pix(config, str(tmp_path / "c"))
  config.steps = 4
  with pytest.raises(ValueError, match="differs in steps"):
    train.train_pix2pix(config, str(tmp_path / "c"))


def test_the_decay_holds_the_rate_then_falls_linearly_to_zero():
  import ml_collections  # pylint: disable=g-import-not-at-top
  config = ml_collections.ConfigDict({"steps": 10, "decay_steps": 4})
  schedule = train.learning_rate(config, 2e-4)
  rates = [float(schedule(i)) for i in range(11)]
  np.testing.assert_allclose(rates[:7], 2e-4, rtol=1e-6)
  np.testing.assert_allclose(rates[6:], [2e-4, 1.5e-4, 1e-4, 5e-5, 0.0],
                             rtol=1e-6, atol=1e-12)
  config.decay_steps = 0
  assert train.learning_rate(config, 2e-4) == 2e-4
  for decay in (-1, 11, 2.0, True):
    with pytest.raises(ValueError, match="decay_steps="):
      train.learning_rate(ml_collections.ConfigDict(
          {"steps": 10, "decay_steps": decay}), 2e-4)


def test_fidelity_matches_scikit_image_and_hand_values(pairs):
  from skimage import metrics as skm  # pylint: disable=g-import-not-at-top
  targets = pairs["image"][:40]
  rng = np.random.default_rng(0)
  outputs = np.clip(targets + rng.normal(0, 0.3, targets.shape), -1,
                    1).astype(np.float32)
  got = paired.per_image(outputs, targets)
  for i in range(0, 40, 7):
    a, b = outputs[i, ..., 0].astype(np.float64), targets[i, ..., 0]
    expected = skm.structural_similarity(
        a, b.astype(np.float64), gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False, data_range=2.0)
    assert got["ssim"][i] == pytest.approx(expected, abs=1e-4)
    assert got["psnr"][i] == pytest.approx(skm.peak_signal_noise_ratio(
        b.astype(np.float64), a, data_range=2.0), rel=1e-5)
  # By hand: a constant offset d gives L1 = d and PSNR = 10 log10(4 / d^2);
  # an image against itself gives SSIM 1 and PSNR +inf.
  flat = np.zeros((2, 16, 16, 1), np.float32)
  out = paired.fidelity(flat + 0.25, flat)
  assert out["l1"] == pytest.approx(0.25, rel=1e-6)
  assert out["psnr"] == pytest.approx(10 * np.log10(4 / 0.0625), rel=1e-6)
  # Colour: the mean over channels of each channel's SSIM, as scikit-image.
  colour = np.clip(np.concatenate([targets[:2], -targets[:2], targets[:2]
                                   * 0.5], -1), -1, 1)
  noisy = np.clip(colour + rng.normal(0, 0.2, colour.shape), -1,
                  1).astype(np.float32)
  got = paired.per_image(noisy, colour)["ssim"]
  for i in range(2):
    assert got[i] == pytest.approx(skm.structural_similarity(
        noisy[i].astype(np.float64), colour[i].astype(np.float64),
        gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
        data_range=2.0, channel_axis=-1), abs=1e-4)
  same = paired.fidelity(targets, targets)
  assert same["ssim"] == pytest.approx(1.0, abs=1e-5)
  assert same["psnr"] == np.inf and same["l1"] == 0.0
  # A worse copy scores worse on every count.
  worse = paired.fidelity(np.clip(targets + rng.normal(0, 0.6, targets.shape),
                                  -1, 1).astype(np.float32), targets)
  better = paired.fidelity(outputs, targets)
  assert worse["l1"] > better["l1"] and worse["psnr"] < better["psnr"]
  assert worse["ssim"] < better["ssim"]


def test_edge_consistency_is_one_for_the_targets_and_falls_for_others(
    pairs):
  targets, conditions = pairs["image"], pairs["condition"]
  assert paired.edge_consistency(targets, conditions) == {
      "edge_precision": 1.0, "edge_recall": 1.0, "edge_f1": 1.0}
  # Another class's digit (the split is sorted by class: 100 per class in
  # these 300): few of its outline pixels are these edges (0.22 on the
  # whole split).
  assert not np.any(np.roll(pairs["label"], 150) == pairs["label"])
  other = paired.edge_consistency(np.roll(targets, 150, axis=0), conditions)
  assert other["edge_f1"] < 0.35
  # A blank output has no outline: nothing matches.
  blank = paired.edge_consistency(-np.ones_like(targets), conditions)
  assert blank == {"edge_precision": 0.0, "edge_recall": 0.0,
                   "edge_f1": 0.0}
  with pytest.raises(ValueError, match="single-channel"):
    paired.edge_consistency(np.zeros((2, 28, 28, 3), np.float32),
                            np.zeros((2, 28, 28, 3), np.float32))
  # A bolder digit (dilated by a pixel) keeps fewer of the edges than the
  # digit but more than another digit.
  bold = np.maximum(targets, np.roll(targets, 1, axis=2))
  assert other["edge_f1"] < paired.edge_consistency(
      bold, conditions)["edge_f1"] < 1.0


@pytest.mark.parametrize("outputs,targets,match", [
    (np.zeros((2, 28, 28)), np.zeros((2, 28, 28)), "must be"),
    (np.zeros((2, 28, 28, 1)), np.zeros((3, 28, 28, 1)), "one shape"),
    (np.zeros((2, 8, 8, 1)), np.zeros((2, 8, 8, 1)), "window"),
    (np.full((1, 28, 28, 1), np.nan), np.zeros((1, 28, 28, 1)), "NaN"),
    (np.zeros((1, 28, 28, 1), np.uint8), np.zeros((1, 28, 28, 1)), "dtype"),
])
def test_paired_metrics_refuse_bad_input(outputs, targets, match):
  with pytest.raises(ValueError, match=match):
    paired.fidelity(outputs, targets)


def test_the_committed_pix2pix_draws_digits_from_outlines(pairs):
  from lsh_gan import compress  # pylint: disable=g-import-not-at-top
  name = "pix2pix_edges2digits"
  assert pretrained.is_conditional(name)
  assert not pretrained.is_conditional("dcgan_digits")
  translate_fn, variables = pretrained.generator(name)
  conditions, targets = pairs["condition"], pairs["image"]
  outputs = np.asarray(translate_fn(variables, conditions))
  assert outputs.shape == targets.shape and outputs.dtype == np.float32
  # Checked by what it draws: close to each held-out digit, and its
  # outline is the input's (far above another digit's, which is ~0.1).
  fidelity = paired.fidelity(outputs, targets)
  assert fidelity["l1"] < 0.15 and fidelity["ssim"] > 0.6
  assert paired.edge_consistency(outputs, conditions)["edge_f1"] > 0.5
  # The mnist5k classifier reads the digit the outline was taken from.
  model = models.build(pretrained.info("embedder_mnist5k")["config"])
  logits = model.apply(pretrained.params("embedder_mnist5k"), outputs)
  assert np.mean(np.argmax(logits, -1) == pairs["label"]) > 0.9
  # Compress transforms apply; 2 bits breaks what 8 bits keeps.
  eight = paired.fidelity(np.asarray(translate_fn(
      compress.quantize(8)(variables), conditions)), targets)
  assert eight["l1"] == pytest.approx(fidelity["l1"], rel=0.05)
  two = paired.fidelity(np.asarray(translate_fn(
      compress.quantize(2)(variables), conditions)), targets)
  assert two["l1"] > eight["l1"]
  # Its checkpoint is small and holds the discriminator.
  logits_fn, d_params = pretrained.discriminator(name)
  assert logits_fn(d_params, conditions[:4], targets[:4]).shape == (4, 5, 5)


def test_a_conditional_sweep_scores_pairs_and_resumes(
    with_tiny_pix2pix, data_dir, tmp_path):
  # On conftest's small pix2pix: a post-training point, GAN Compression's
  # (search: a supernet distilled, searched, its winner distilled again;
  # distill alone is tests/distill_unet_test.py's) and the collaborative
  # pruning.
  from configs import sweep_pix2pix_edges2digits  # pylint: disable=g-import-not-at-top
  from lsh_gan import finetune  # pylint: disable=g-import-not-at-top
  from lsh_gan import metrics  # pylint: disable=g-import-not-at-top
  config = sweep_pix2pix_edges2digits.get_config()
  config.generator = conftest.TINY_PIX2PIX
  config.data_dir = data_dir
  config.grid_samples = 16
  full_macs = finetune.macs_of(config.generator)
  config.points = ";".join([
      "quantize(bits=2)",
      f"search(budget_macs={full_macs // 2}, supernet_steps=2, steps=2, "
      "choices=(0.5, 1.0), search_samples=100, batch_size=8)",
      "collaborative_prune(macs_ratio=0.5, search_steps=2, steps=2, "
      "batch_size=4, neighbours=2)"])
  workdir = str(tmp_path / "sweep")
  rows = pipeline.run(config, workdir)
  base, two, *slim = rows
  # Every one of the 1,000 test pairs, so the means are those of the
  # split in stored order, computed here without the pipeline.
  test = data.load("edges2digits", "test", data_dir=data_dir)
  translate_fn, variables = pretrained.generator(config.generator)
  outputs = np.asarray(translate_fn(variables, test["condition"]))
  expected = paired.fidelity(outputs, test["image"])
  for key in ("l1", "psnr", "ssim"):
    assert base[key] == pytest.approx(expected[key], rel=1e-5), key
  assert base["edge_f1"] == pytest.approx(paired.edge_consistency(
      outputs, test["condition"])["edge_f1"], rel=1e-6)
  embed_fn, params = pretrained.embedder("mnist5k")
  reference = metrics.Reference(pretrained.embed_all(embed_fn, params,
                                                     test["image"]))
  knn = reference.knn_precision_recall(
      pretrained.embed_all(embed_fn, params, outputs), k=3)
  assert (base["knn_precision"], base["knn_recall"]) == (
      knn["precision"], knn["recall"])
  assert two["l1"] > base["l1"]
  assert base["macs"] == full_macs and two["macs"] == full_macs
  assert two["stored_bytes"] < base["stored_bytes"]
  # Each slimmer U-Net translates the same pairs with at most half the
  # MACs and less storage, and is scored on them.
  assert [row["transform"].split("(")[0] for row in slim] == [
      "search", "collaborative_prune"]
  for row in slim:
    assert row["macs"] <= full_macs / 2 and row["finetune_s"] > 0, row
    assert row["stored_bytes"] < base["stored_bytes"], row
    for key in pipeline.PAIRED_METRICS:
      assert np.isfinite(row[key]), (row["point"], key)
  # Resumed: nothing computed again.
  assert pipeline.run(config, workdir) == rows
  # Refused before any work: more pairs than the split has, a point
  # fine-tuned under a transform (those methods take latents).
  config.num_samples = 1001
  with pytest.raises(ValueError, match="num_samples=1001"):
    pipeline.run(config, str(tmp_path / "other"))
  assert not (tmp_path / "other").exists()
  config.num_samples = 200
  config.points = "quantize(bits=4) >> quantization_aware(steps=10)"
  with pytest.raises(ValueError, match="conditional generator"):
    pipeline.check(config)
  config.points = "collaborative_prune(macs_ratio=0.0, search_steps=1, steps=1)"
  with pytest.raises(ValueError, match="macs_ratio=0.0"):
    pipeline.check(config)
