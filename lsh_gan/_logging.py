"""Logging shared by the training loop, the model zoo and the pipeline."""

import logging


def _drop_orbax_info(record) -> bool:
  """Keeps Orbax's warnings but drops the many INFO lines of each save and
  restore, which would bury the progress lines."""
  return record.levelno >= 30 or "orbax" not in record.pathname


def quiet_orbax() -> None:
  """Installs the filter on the "absl" logger, which Orbax logs through
  (once; it applies whichever handler prints the records)."""
  logger = logging.getLogger("absl")
  if _drop_orbax_info not in logger.filters:
    logger.addFilter(_drop_orbax_info)
