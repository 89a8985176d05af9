"""The README's example runs as written."""
import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_example_runs():
    code = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    x, w = scope["x"], scope["w"]
    assert scope["h"].shape == (3, 1)
    assert abs(scope["step"](x).item() - (x @ w).relu().sum().item()) < 1e-4


def test_readme_names_the_two_commands():
    text = README.read_text()
    assert "python3 -m tensorlib.demo" in text
    assert "bash scripts/test.sh" in text
    assert (README.parent / "scripts" / "test.sh").exists()
