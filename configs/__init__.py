"""The launcher's configs: `python launch.py --config=configs/<name>.py`.

Each file's `get_config()` returns an ml_collections.ConfigDict whose
`kind` says what it is: "train" (a model to train, train_*.py) or "sweep"
(an experiment, sweep_*.py and results.py). Configs build on a base config
imported as a module of this package (`from configs import
sweep_dcgan_mnist5k`), which needs the repository's root on the import
path, as it is for `python launch.py` and `python -m pytest` run there.
"""
