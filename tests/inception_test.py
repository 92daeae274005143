"""The Flax FID Inception-v3 against pytorch-fid's own network.

No real weights are needed: a state dict of the FID Inception's shapes is
filled with random values (every convolution, batch-norm scale, shift and
running statistic), loaded into pytorch-fid's `InceptionV3` (its FID blocks,
its resize and input scaling) and, through our converter, into ours; the
pool3 features must agree on random images of several sizes. Needs the
`reference` extra (torch, pytorch-fid).
"""

import os

import numpy as np
import pytest

from lsh_gan import _pth
from lsh_gan import pretrained


torch = pytest.importorskip("torch")
pytorch_fid_inception = pytest.importorskip("pytorch_fid.inception")
torchvision = pytest.importorskip("torchvision")


def _random_state_dict(seed=0):
  """Random values in every tensor of the FID Inception's state dict,
  scaled so that activations stay of order one through the 94 layers."""
  # The FID blocks subclass torchvision's and keep their parameter names, so
  # torchvision's network (1,008 classes, no auxiliary head) has the same
  # state dict keys and shapes as pytorch-fid's fid_inception_v3().
  net = torchvision.models.inception_v3(num_classes=1008, aux_logits=False,
                                        weights=None, init_weights=False)
  gen = torch.Generator().manual_seed(seed)
  state = {}
  for key, value in net.state_dict().items():
    if key.endswith("num_batches_tracked"):
      state[key] = value
    elif key.endswith("conv.weight"):
      fan_in = value[0].numel()
      state[key] = torch.randn(value.shape, generator=gen) * (2 / fan_in)**.5
    elif key.endswith("running_var"):
      state[key] = 0.5 + torch.rand(value.shape, generator=gen)
    elif key.endswith("bn.weight"):
      state[key] = 0.5 + torch.rand(value.shape, generator=gen)
    else:  # bn.bias, running_mean, fc
      state[key] = 0.1 * torch.randn(value.shape, generator=gen)
  return state


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
  state = _random_state_dict()
  path = str(tmp_path_factory.mktemp("inception") / "random_inception.pth")
  torch.save(state, path)
  return path, state


@pytest.fixture(scope="module")
def reference_net(weights):
  _, state = weights
  original = pytorch_fid_inception.load_state_dict_from_url
  # pytorch-fid builds its network and loads the release weights from their
  # URL; ours come from memory instead (nothing is downloaded).
  pytorch_fid_inception.load_state_dict_from_url = lambda *a, **k: state
  try:
    net = pytorch_fid_inception.InceptionV3([3])
  finally:
    pytorch_fid_inception.load_state_dict_from_url = original
  return net.eval()


def _reference_features(net, images):
  """pytorch-fid's pool3 features of [-1, 1] NHWC images (it takes [0, 1]
  NCHW; grey images are RGB with equal channels, as PIL converts them)."""
  x = torch.from_numpy((images + 1) / 2).permute(0, 3, 1, 2)
  if x.shape[1] == 1:
    x = x.repeat(1, 3, 1, 1)
  with torch.no_grad():
    return net(x.float())[0][:, :, 0, 0].numpy()


@pytest.mark.slow
@pytest.mark.parametrize("shape", [(8, 8, 1), (28, 28, 1), (32, 32, 3),
                                   (64, 48, 3), (299, 299, 3)],
                         ids=lambda s: "x".join(map(str, s)))
def test_features_equal_pytorch_fid(weights, reference_net, shape):
  images = np.random.default_rng(sum(shape)).uniform(
      -1, 1, (2,) + shape).astype(np.float32)
  embed_fn, params = pretrained.inception_v3(weights[0])
  ours = np.asarray(embed_fn(params, images))
  ref = _reference_features(reference_net, images)
  assert ours.shape == ref.shape == (2, 2048)
  assert np.isfinite(ref).all() and ref.std() > 0.1 * np.abs(ref).mean()
  # 1e-4 of the features' scale: float32 rounding over 94 layers.
  np.testing.assert_allclose(ours, ref, rtol=0,
                             atol=1e-4 * np.abs(ref).max())
  # Different images give different features (the test can fail).
  assert np.abs(ref[0] - ref[1]).max() > 1e-2 * np.abs(ref).max()


def test_resize_equals_torch_interpolate():
  from lsh_gan.models import inception  # pylint: disable=g-import-not-at-top
  for shape in [(5, 7), (8, 8), (300, 310), (299, 299)]:
    images = np.random.default_rng(0).uniform(
        -1, 1, (1,) + shape + (3,)).astype(np.float32)
    ours = np.asarray(inception.resize(images))
    ref = torch.nn.functional.interpolate(
        torch.from_numpy(images).permute(0, 3, 1, 2), size=(299, 299),
        mode="bilinear", align_corners=False).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-5)


@pytest.mark.parametrize("new_format", [True, False])
def test_state_dict_reader_equals_torch_load(tmp_path, new_format):
  state = {"a.weight": torch.randn(3, 4, 5),
           "view": torch.arange(20, dtype=torch.float64).reshape(4, 5)[:, 1:3],
           "half": torch.randn(3).half(), "count": torch.tensor(7),
           "flags": torch.tensor([True, False])}
  path = str(tmp_path / "state.pth")
  torch.save(state, path, _use_new_zipfile_serialization=new_format)
  got = _pth.load(path)
  assert list(got) == list(state)
  for key, value in state.items():
    assert got[key].dtype == value.numpy().dtype
    np.testing.assert_array_equal(got[key], value.numpy())


@pytest.mark.parametrize("new_format", [True, False])
def test_reader_refuses_code(tmp_path, new_format):
  path = str(tmp_path / "evil.pth")
  torch.save({"f": os.getcwd, "w": torch.ones(2)}, path,
             _use_new_zipfile_serialization=new_format)
  with pytest.raises(ValueError, match="not part of a state dict"):
    _pth.load(path)
  # A legacy stream whose first pickle (the magic number) calls a function.
  import pickle  # pylint: disable=g-import-not-at-top
  with open(path, "wb") as f:
    pickle.dump(os.getcwd, f)  # a global, resolved on load
  with pytest.raises(ValueError, match="not part of a state dict"):
    _pth.load(path)


def test_wrong_state_dict_names_the_keys(tmp_path, weights):
  state = dict(weights[1])
  del state["Mixed_7c.branch_pool.conv.weight"]
  state["Mixed_5b.branch1x1.bn.bias"] = torch.zeros(3)
  path = str(tmp_path / "wrong.pth")
  torch.save(state, path)
  with pytest.raises(ValueError, match=r"Mixed_5b\.branch1x1\.bn\.bias has "
                     r"shape.*Mixed_7c\.branch_pool\.conv\.weight missing"):
    pretrained.inception_v3(path)
