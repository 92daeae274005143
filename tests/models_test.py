"""lsh_gan.models: every GAN architecture makes samples of its shape."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lsh_gan import models
from lsh_gan.models import dcgan


@pytest.mark.parametrize("side,steps", [(8, 1), (14, 1), (28, 2), (32, 3),
                                        (64, 4)])
def test_upsamplings_reach_the_side_from_a_small_map(side, steps):
  assert dcgan.upsamplings(side) == steps
  assert 4 <= side // 2 ** steps <= 7 and side % 2 ** steps == 0


@pytest.mark.parametrize("side", [3, 7, 30, 36])
def test_sides_that_no_doubling_reaches_are_refused(side):
  with pytest.raises(ValueError, match=f"image side {side} "):
    dcgan.upsamplings(side)


# The DCGAN at every size of a config; the WGAN-GP (the same generator, a
# critic without batch norm) at one grey and one colour size.
@pytest.mark.parametrize("architecture,shape", [
    ("dcgan", (8, 8, 1)), ("dcgan", (28, 28, 1)), ("dcgan", (32, 32, 3)),
    ("dcgan", (64, 64, 3)), ("wgan_gp", (8, 8, 1)), ("wgan_gp", (32, 32, 3))])
def test_image_gans_make_and_judge_images(architecture, shape):
  generator, discriminator = models.gan(architecture, sample_shape=shape,
                                        width=4)
  variables = generator.init(jax.random.key(0), jnp.zeros((2, 10)))
  assert set(variables) == {"params", "batch_stats"}
  images = models.sampler(generator, 10)(variables, jax.random.key(1), 3)
  assert images.shape == (3, *shape) and images.dtype == jnp.float32
  assert float(jnp.abs(images).max()) <= 1.0
  d_vars = discriminator.init(jax.random.key(2), images)
  # Batch norm follows every convolution but the first.
  assert ("batch_stats" in d_vars) == (architecture == "dcgan")
  logits = discriminator.apply(d_vars, images, mutable=["batch_stats"])[0]
  assert logits.shape == (3,)


def test_wgan_gp_critic_judges_each_example_alone():
  # Without batch norm, an example's logit does not depend on the batch:
  # the condition for a per-example gradient penalty.
  _, critic = models.gan("wgan_gp", sample_shape=(8, 8, 1), width=4)
  images = jax.random.uniform(jax.random.key(0), (4, 8, 8, 1), minval=-1)
  variables = critic.init(jax.random.key(1), images)
  np.testing.assert_allclose(critic.apply(variables, images)[:1],
                             critic.apply(variables, images[:1]), rtol=1e-5)


def test_mlp_gan_makes_points():
  generator, discriminator = models.gan("mlp_gan", sample_shape=(2,),
                                        hidden=(8, 8))
  variables = generator.init(jax.random.key(0), jnp.zeros((1, 4)))
  points = models.sampler(generator, 4)(variables, jax.random.key(1), 5)
  assert points.shape == (5, 2)
  d_vars = discriminator.init(jax.random.key(2), points)
  assert discriminator.apply(d_vars, points).shape == (5,)


def test_sampler_is_a_pure_function_compiled_once_per_num():
  generator, _ = models.gan("dcgan", sample_shape=(8, 8, 1), width=4)
  variables = generator.init(jax.random.key(0), jnp.zeros((2, 6)))
  sample = models.sampler(generator, 6)
  a = sample(variables, jax.random.key(3), 4)
  np.testing.assert_array_equal(a, sample(variables, jax.random.key(3), 4))
  assert not np.array_equal(a, sample(variables, jax.random.key(4), 4))
  # Inference uses the running batch statistics: one sample alone is the
  # first sample of a batch.
  np.testing.assert_allclose(
      generator.apply(variables, jax.random.normal(jax.random.key(3),
                                                   (4, 6))[:1]),
      a[:1], rtol=1e-5, atol=1e-6)
  sample(variables, jax.random.key(5), 4)
  assert sample.jitted._cache_size() == 1  # pylint: disable=protected-access


def test_bad_architectures_and_shapes_are_named():
  with pytest.raises(ValueError, match="architecture='biggan' is not a GAN "
                     "architecture; valid ones: dcgan, wgan_gp, mlp_gan"):
    models.gan("biggan", sample_shape=(28, 28, 1))
  with pytest.raises(ValueError, match="makes square images"):
    models.gan("dcgan", sample_shape=(2,))
  with pytest.raises(ValueError, match="makes points"):
    models.gan("mlp_gan", sample_shape=(8, 8, 1))
  with pytest.raises(ValueError, match="norm='layer'"):
    dcgan.Discriminator(norm="layer").init(jax.random.key(0),
                                           jnp.zeros((1, 8, 8, 1)))


def test_a_classifier_embedding_that_is_not_one_is_refused():
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from lsh_gan import models  # pylint: disable=g-import-not-at-top
  model = models.Classifier(features=(4,), embed_dim=3, embedding="multi")
  with pytest.raises(ValueError, match="embedding='multi' must be one of "
                     "multilayer, penultimate"):
    model.init(jax.random.key(0), jnp.zeros((1, 8, 8, 1)))
  with pytest.raises(ValueError, match="embedding='multi'"):
    model.embedding_size  # pylint: disable=pointless-statement
  ok = models.Classifier(features=(4, 6), embed_dim=3, embedding="multilayer")
  params = ok.init(jax.random.key(0), jnp.zeros((1, 8, 8, 1)))
  features = ok.apply(params, jnp.ones((2, 8, 8, 1)), method=ok.embed)
  assert features.shape == (2, ok.embedding_size) == (2, 13)


def test_a_sampler_is_built_once_per_module_and_for_unhashable_ones_too():
  same = [models.sampler(models.MLPGenerator(hidden=(8, 8)), 4)
          for _ in range(2)]
  assert same[0] is same[1]  # equal modules: one compiled sampler
  # A module built by hand with a list field cannot be a cache key: it
  # gets a sampler of its own, which computes the same samples.
  listed = models.sampler(models.MLPGenerator(hidden=[8, 8]), 4)
  variables = models.MLPGenerator(hidden=(8, 8)).init(
      jax.random.key(0), jnp.zeros((1, 4)))
  np.testing.assert_array_equal(
      np.asarray(listed(variables, jax.random.key(1), 5)),
      np.asarray(same[0](variables, jax.random.key(1), 5)))
