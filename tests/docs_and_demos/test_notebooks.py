"""Execute every notebook in notebooks/ top to bottom; the asserts inside them check the
key results. Run alone with ``python -m pytest tests/docs_and_demos/test_notebooks.py``."""
import os
import pathlib
import time

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

ROOT = pathlib.Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
TIMEOUT = int(os.environ.get("TENSORLIB_NOTEBOOK_TIMEOUT", "600"))  # seconds per cell

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(ROOT)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=TIMEOUT, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    t0 = time.perf_counter()
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as e:
        pytest.fail(f"{path.name} failed:\n{e}")
    print(f"{path.name}: {time.perf_counter() - t0:.1f} s")


def test_generated_notebooks_are_up_to_date(tmp_path):
    """notebooks/02, 03, 05, 07 are what scripts/make_notebooks.py writes."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("make_notebooks",
                                                  ROOT / "scripts" / "make_notebooks.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for name, cells in mod.NOTEBOOKS.items():
        want = [c.source for c in mod.build(cells).cells]
        have = [c.source for c in nbformat.read(ROOT / "notebooks" / name, as_version=4).cells]
        assert have == want, f"{name} is stale: run python scripts/make_notebooks.py"
