"""Atomic file writes: a reader (or a resumed run) never sees half a file."""

from __future__ import annotations

import csv
import io
import json
import os
from typing import Any, Sequence


def write_text(path: str, text: str) -> None:
  """Writes `text` to `path` through a temporary file and a rename."""
  with open(path + ".tmp", "w") as f:
    f.write(text)
  os.replace(path + ".tmp", path)


def write_json(path: str, value: Any, **kwargs) -> None:
  """`value` as indented JSON (json.dumps keywords pass through)."""
  write_text(path, json.dumps(value, indent=1, **kwargs))


def write_csv(path: str, rows: Sequence[dict], fieldnames: Sequence[str]):
  """Rows as CSV with a header; keys outside `fieldnames` are left out."""
  buf = io.StringIO()
  writer = csv.DictWriter(buf, fieldnames=list(fieldnames),
                          extrasaction="ignore", lineterminator="\n")
  writer.writeheader()
  writer.writerows(rows)
  write_text(path, buf.getvalue())
