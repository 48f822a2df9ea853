"""Every report plot, drawn from a real tiny run (prune -> int8): each axis holds data."""

import pytest
from helpers import tiny_recipe

pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def chain_run(tmp_path_factory):
    from edgekit import api

    passes = [{"name": "prune.structured", "ratio": 0.5},
              {"name": "quantize.static", "format": "qdq", "activation_type": "uint8", "per_channel": True,
               "tolerance": {"min_cosine": 0.9, "min_top1": 0.7}}]
    run = api.run(tiny_recipe(passes=passes), tmp_path_factory.mktemp("plots") / "run", log=lambda m: None)
    return run.report, run.run_dir


def _assert_every_axis_has_data(fig):
    for ax in fig.axes:
        assert ax.lines or ax.collections or ax.patches, f"empty axis: {ax.get_title() or ax.get_xlabel()}"


def test_waterfall_shows_accuracy_size_and_latency_per_step(chain_run):
    from edgekit.report.plots import waterfall_figure

    report, _ = chain_run
    fig = waterfall_figure(report)
    titles = [ax.get_title() for ax in fig.axes]
    assert any("accuracy" in t for t in titles) and any("latency" in t for t in titles) and any("size" in t for t in titles)
    _assert_every_axis_has_data(fig)
    for ax in fig.axes:
        assert [t.get_text() for t in ax.get_xticklabels()] [:2] == ["start", "prune.structured"]
        heights = [p.get_height() for p in ax.patches]
        assert all(h > 0 for h in heights), (ax.get_title(), heights)
        assert any("x" in t.get_text() for t in ax.texts)  # ratios annotated
    acc = next(ax for ax in fig.axes if "accuracy" in ax.get_title())
    assert len(acc.patches) == 3  # start, prune, int8 (its accuracy from the benchmark of source and result)


def test_tradeoff_colours_artifacts_and_draws_whiskers(chain_run):
    import matplotlib.colors as mcolors

    from edgekit.report.plots import tradeoff_figure

    report, run_dir = chain_run
    fig = tradeoff_figure(report, run_dir)
    _assert_every_axis_has_data(fig)
    lat = fig.axes[0]
    assert "p10-p90" in lat.get_xlabel()
    bars = [c for c in lat.containers if c.get_label() in {r.artifact for r in report.results}]
    assert len(bars) == len(report.results) and all(c.has_xerr for c in bars)  # p10-p90 whiskers
    colours = {mcolors.to_hex(c.lines[0].get_color()) for c in bars}
    assert len(colours) == len(bars)  # one colour per artifact
    markers = {c.lines[0].get_marker() for c in bars}
    assert markers == {"o", "s"}  # fp32 and int8
    fronts = [line for ax in fig.axes for line in ax.lines if line.get_label() == "Pareto front"]
    assert all(len(f.get_xdata()) >= 2 for f in fronts)


def test_tradeoff_draws_no_front_for_one_point(chain_run):
    from edgekit.report.plots import tradeoff_figure

    report, run_dir = chain_run
    one = report.model_copy(update={"results": report.results[:1]})
    fig = tradeoff_figure(one, run_dir)
    _assert_every_axis_has_data(fig)
    assert not [line for ax in fig.axes for line in ax.lines if line.get_label() == "Pareto front"]


def test_ecdf_marks_p50_p90_p99(chain_run):
    from edgekit.report.plots import latency_ecdf_figure

    report, run_dir = chain_run
    fig = latency_ecdf_figure(report, run_dir)
    _assert_every_axis_has_data(fig)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert {"p50", "p90", "p99"} <= set(labels)


def test_all_plots_render_png(chain_run, tmp_path):
    from edgekit.report.plots import all_plots

    report, run_dir = chain_run
    plots = all_plots(report, run_dir)
    assert set(plots) == {"tradeoff", "latency_ecdf", "waterfall"}
    for name, png in plots.items():
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        (tmp_path / f"{name}.png").write_bytes(png)
