"""The Colab notebooks run top to bottom (small sizes) and match their
jupytext twins."""

import os

import jupytext
import nbclient
import nbformat
import pytest

COLAB = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "colab")
NOTEBOOKS = ("quickstart", "metrics_on_your_embeddings")


def _sources(notebook):
  return [(c.cell_type, c.source.strip()) for c in notebook.cells]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_matches_its_text_twin(name):
  ipynb = nbformat.read(os.path.join(COLAB, f"{name}.ipynb"), as_version=4)
  text = jupytext.read(os.path.join(COLAB, f"{name}.py"))
  assert _sources(ipynb) == _sources(text)
  assert "colab-badge.svg" in ipynb.cells[0].source
  code = "\n".join(c.source for c in ipynb.cells if c.cell_type == "code")
  assert "from lsh_gan import" in code
  assert "def " not in code.replace("def mixture", "")  # no copied library


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_executes(name, tmp_path, monkeypatch):
  monkeypatch.setenv("LSH_GAN_NOTEBOOK_TEST", "1")
  notebook = nbformat.read(os.path.join(COLAB, f"{name}.ipynb"), as_version=4)
  nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                          resources={"metadata": {"path": str(tmp_path)}}
                          ).execute()
  outputs = [o for c in notebook.cells if c.cell_type == "code"
             for o in c.outputs]
  assert not [o for o in outputs if o.output_type == "error"]
  assert any(o.output_type == "display_data" and "image/png" in o.data
             for o in outputs)  # the plots were drawn
