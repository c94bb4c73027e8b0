"""A real kernel runs the pictures as a notebook does: no error and nothing on stderr (nbgrader
scores either as a failure), a PNG of the live view left in the output, and under nbgrader no
picture at all."""

from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient

CELLS = [
    """\
from tinytorch import viz
from tinytorch.core.layers import Linear
from tinytorch.core.losses import MSELoss
from tinytorch.core.optimizers import SGD
from tinytorch.core.training import CosineSchedule, Trainer
from tinytorch.data import DataLoader, TensorDataset
import numpy as np

x = np.random.default_rng(0).normal(size=(32, 2)).astype(np.float32)
y = x @ np.array([[1.0], [-2.0]], dtype=np.float32)
train_data = DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True, seed=0)
test_data = DataLoader(TensorDataset(x, y), batch_size=32)
model = Linear(2, 1, seed=0)
trainer = Trainer(model, SGD(model.parameters(), lr=0.1), MSELoss(), grad_clip_norm=1.0,
                  scheduler=CosineSchedule(max_lr=0.1, min_lr=0.01, total_epochs=2))""",
    "viz.schedule_explorer(CosineSchedule)",
    "history = viz.train_live(trainer, train_data, test_data, epochs=2)\n"
    "print(len(history['train_loss']))",
    "import sys\nprint('matplotlib' in sys.modules)",
]


def _run(tmp_path) -> list:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    client = NotebookClient(nb, kernel_name="python3", timeout=60, startup_timeout=60,
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    for cell in nb.cells:
        for output in cell.outputs:
            assert output.output_type != "error", output
            assert output.get("name") != "stderr", output
    return [cell.outputs for cell in nb.cells]


def _kinds(outputs: list) -> set[str]:
    return {mime for output in outputs for mime in output.get("data", {})}


@pytest.mark.slow
def test_in_a_kernel_the_explorer_and_live_view_render(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's own inline backend
    _, explorer, live, _ = _run(tmp_path)
    assert "application/vnd.jupyter.widget-view+json" in _kinds(explorer)
    assert "image/png" in _kinds(live)  # the last state, static: seen where widgets are not
    assert live[-1].text.strip() == "2"


@pytest.mark.slow
def test_under_nbgrader_the_kernel_draws_nothing(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("MPLBACKEND", raising=False)
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")  # the kernel inherits it
    _, explorer, live, imported = _run(tmp_path)
    assert explorer == []
    assert [o.output_type for o in live] == ["stream"] and live[0].text.strip() == "2"
    assert imported[0].text.strip() == "False"  # not even matplotlib was imported
