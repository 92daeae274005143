"""Logging shared by the training loop, the model zoo and the pipeline."""

import contextlib
import logging


def _drop_orbax_info(record) -> bool:
  """Keeps Orbax's warnings but drops the many INFO lines of each save and
  restore, which would bury the progress lines."""
  return record.levelno >= logging.WARNING or "orbax" not in record.pathname


@contextlib.contextmanager
def quiet_orbax():
  """Drops Orbax's INFO records on the "absl" logger (which Orbax logs
  through) inside the block only, so a user's logging is left as it was."""
  logger = logging.getLogger("absl")
  added = _drop_orbax_info not in logger.filters
  if added:
    logger.addFilter(_drop_orbax_info)
  try:
    yield
  finally:
    if added:
      logger.removeFilter(_drop_orbax_info)
