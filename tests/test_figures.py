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
