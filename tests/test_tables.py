"""Summaries, intervals and table rendering against closed forms."""

import numpy as np
import pytest

from mnist_linear import stats, tables


def test_summary_against_closed_forms():
    s = stats.summarize([0.90, 0.92])
    assert s.n == 2 and np.isclose(s.mean, 0.91)
    np.testing.assert_allclose(s.std, 0.02 / np.sqrt(2))  # sample std of two values: |a - b| / √2
    half = 12.706204736 * s.std / np.sqrt(2)  # t(0.975, 1 degree of freedom)
    np.testing.assert_allclose([s.ci_low, s.ci_high], [0.91 - half, 0.91 + half], rtol=1e-8)
    one = stats.summarize([0.5])
    assert one.std == 0.0 and np.isnan(one.ci_low) and tables.interval(one) == "—"
    assert tables.mean_std(one) == "50.00 (1 seed)" and tables.mean_std(s) == "91.00 ± 1.41"
    assert [tables.counted(n, "seed") for n in (0, 1, 2)] == ["0 seeds", "1 seed", "2 seeds"]
    assert tables.counted(10_000, "test image") == "10,000 test images"
    with pytest.raises(ValueError, match="leave failed runs out"):
        stats.summarize([0.9, np.nan])


def test_welch_against_a_hand_computation():
    a, b = np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0, 6.0, 8.0])
    va, vb = a.var(ddof=1) / 3, b.var(ddof=1) / 4
    t = (a.mean() - b.mean()) / np.sqrt(va + vb)
    dof = (va + vb) ** 2 / (va ** 2 / 2 + vb ** 2 / 3)
    from scipy.stats import t as student

    np.testing.assert_allclose(stats.welch_t_test(a, b), 2 * student.sf(abs(t), dof), rtol=1e-10)


def test_markdown_and_latex_render_the_same_cells():
    table = tables.Table(caption="Caption with ± and 95%", header=("model", "acc. ±2 px ↑", "α − x²"),
                         rows=(("linear_model", "92.61 ± 0.05", "[92.57, 92.65]"),), notes=("† a note \\ here",))
    md = table.markdown().splitlines()
    assert md[2] == "| model | acc. ±2 px ↑ | α − x² |" and md[4] == "| linear_model | 92.61 ± 0.05 | [92.57, 92.65] |"
    tex = table.latex()
    assert tex.isascii()
    assert r"linear\_model & 92.61 $\pm$ 0.05 & [92.57, 92.65] \\" in tex
    assert r"95\%" in tex and r"$\uparrow$" in tex and r"\textbackslash{}" in tex
    with pytest.raises(ValueError, match="No LaTeX"):
        tables.Table("日本", ("a",), ()).latex()
