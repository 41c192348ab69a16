"""Figures: loss curves, Figure 3 bars and ablation curves, in the terminal and as files."""

import pytest

from tests.helpers import mpt, mpt_json

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def smoke_store(capsys):
    grid = (
        "grid",
        "--preset",
        "smoke",
        "--methods",
        "sp,mpt",
        "--seeds",
        "1,2",
        "--epochs",
        "2",
        "--json",
    )
    return mpt_json(capsys, *grid)


def test_loss_curves_of_a_run(capsys, tmp_path, smoke_store):
    run_id = next(
        e["run_id"] for e in smoke_store if e["event"] == "result" and e["method"] == "mpt"
    )
    png, svg = tmp_path / "loss.png", tmp_path / "loss.svg"
    code, out, err = mpt(capsys, "results", "show", run_id, "--plot", png)
    assert code == 0, err
    assert "losses" in out and "ce" in out.lower()  # the terminal chart
    assert png.read_bytes().startswith(PNG_SIGNATURE) and png.stat().st_size > 5000
    mpt(capsys, "results", "show", run_id, "--plot", svg)
    assert "<svg" in svg.read_text()
    shown = mpt_json(capsys, "results", "show", run_id, "--json")
    assert shown["result"]["run_id"] == run_id
    assert sum(e["event"] == "train_step" for e in shown["history"]) == 2 * 6


def test_family_gains_figure(capsys, tmp_path, smoke_store):
    png = tmp_path / "figure3.png"
    code, out, err = mpt(capsys, "results", "families", "--shots", "4", "--plot", png)
    assert code == 0, err
    assert "Germanic" in out and "Gain %" in out
    assert png.read_bytes().startswith(PNG_SIGNATURE)
    rows = mpt_json(capsys, "results", "families", "--shots", "4", "--format", "json")["rows"]
    assert len(rows) == 15 + 4  # languages and the four families of two languages


def test_ablation_figure(capsys, tmp_path):
    mpt_json(
        capsys,
        "grid",
        "--preset",
        "smoke",
        "--methods",
        "mpt",
        "--alpha",
        "0.0,0.5,1.0",
        "--seeds",
        "1",
        "--epochs",
        "1",
        "--json",
    )
    svg = tmp_path / "alpha.svg"
    code, _, err = mpt(capsys, "results", "ablation", "alpha", "--shots", "4", "--plot", svg)
    assert code == 0, err
    assert "<svg" in svg.read_text()
    rows = mpt_json(capsys, "results", "ablation", "alpha", "--shots", "4", "--format", "json")[
        "rows"
    ]
    assert [row["labels"]["alpha"] for row in rows] == ["0.0", "0.5", "1.0"]


def test_plot_file_must_be_an_image(capsys, smoke_store, tmp_path):
    code, _, err = mpt(capsys, "results", "families", "--shots", "4", "--plot", tmp_path / "x.txt")
    assert code == 2 and ".png" in err


def test_kl_has_an_axis_of_its_own_and_every_curve_a_colour(tmp_path):
    """KL (about 0.001) beside CE (about 1.1) would lie flat on CE's axis."""
    from mpt_engine.figures import loss_figure, save_figure
    from mpt_tui.plots import COLOURS, render

    steps = [
        {"event": "train_step", "step": step, "loss": 1.1 - step / 100, "ce": 1.2, "kl": step / 1e3}
        for step in range(1, 9)
    ]
    figure = loss_figure("mpt-k4-s1-0123456789", steps)
    losses = figure.panels[0]
    assert losses.right_label == "KL"
    assert [(series.label, series.right) for series in losses.series] == [
        ("total", False),
        ("CE", False),
        ("KL", True),
    ]
    drawn = render(figure, width=80, height=14)
    assert "0.008" in drawn.plain and "1.2" in drawn.plain  # both scales are labelled
    marks = set("▀▄▖▗▘▝▚▞▌▐▙▛▜▟")  # plotext's "hd" marker
    colours = {
        str(span.style) for span in drawn.spans if marks & set(drawn.plain[span.start : span.end])
    }
    assert len(colours) >= 3 and len(set(COLOURS)) == len(COLOURS)
    assert save_figure(figure, tmp_path / "losses.png").stat().st_size > 0
