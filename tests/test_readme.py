"""README.md: its Colab code runs, and its tables are the ones the code wrote."""

import json
import re
from pathlib import Path

from experiments import baseline, readme

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_colab_section_runs():
    section = README.split("## Use from Colab", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    accuracy = namespace["correct"] / 10_000
    assert accuracy.shape == (4,) and (accuracy > 0.9).all(), accuracy


def test_readme_tables_are_the_generated_ones():
    assert readme.BLOCK.search(README)
    assert readme.render(README, ROOT) == README


def test_committed_baseline_tables_match_their_results():
    for folder in ("baseline", "baseline-fashion"):
        written = json.loads((ROOT / "results" / folder / "results.json").read_text())
        assert (ROOT / "results" / folder / "table.md").read_text() == baseline.make_table(written).markdown()
