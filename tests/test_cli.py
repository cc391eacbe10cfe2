"""Tests of the ``ds2`` command line (run in-process through ``ds2_hf.cli.main``)."""

from __future__ import annotations

import contextlib
import io as stdio
import json
import subprocess
import sys

import datasets
import numpy as np
import pytest

from ds2_hf.cli import COMMANDS, main
from ds2_hf.report import SCHEMA_VERSION

CURATION_COLUMNS = ["curated_rating", "curation_confidence", "misrated", "long_tail_score", "duplicate_group",
                    "curation_posterior"]


def _load_parquet(path):
    return datasets.load_dataset("parquet", data_files=str(path), split="train")


# --------------------------------------------------------------------------------------------- help


def test_top_level_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: ds2")
    for name in ("curate", "run", "simulate"):
        assert name in out


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_subcommand_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: ds2 {command}")


def test_a_command_that_does_not_import_is_an_error_not_a_missing_command(monkeypatch):
    import ds2_hf.cli

    monkeypatch.setitem(ds2_hf.cli.COMMANDS, "broken", "no_such_module")
    with pytest.raises(ModuleNotFoundError, match="ds2_hf.cli.no_such_module"):
        ds2_hf.cli.build_parser()


def test_no_command_prints_help_and_returns_2(capsys):
    assert main([]) == 2
    assert "usage: ds2" in capsys.readouterr().out


def test_unknown_option_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["curate", "in.parquet", "out.parquet", "--method", "magic"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'magic'" in capsys.readouterr().err


def test_help_imports_no_heavy_module():
    heavy = ("torch", "transformers", "faiss", "sentence_transformers", "datasets", "matplotlib", "gradio",
             "wordllama", "trl", "numpy")
    code = (
        "import sys; from ds2_hf.cli import build_parser; build_parser(); "
        f"print([m for m in {heavy!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --------------------------------------------------------------------------------------------- simulate + curate


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    path = tmp_path_factory.mktemp("sim") / "out.parquet"
    out = stdio.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["simulate", str(path), "--n", "1500", "--dim", "16"]) == 0
    return path, out.getvalue()


def test_simulate_writes_typed_pool(simulated):
    path, out = simulated
    ds = _load_parquet(path)
    assert len(ds) == 1500
    assert ds.features["embedding"] == datasets.List(datasets.Value("float32"), length=16)
    assert ds.features["rating"] == datasets.Value("int8")
    assert ds.features["true_rating"] == datasets.Value("int8")
    rated, true = np.array(ds["rating"]), np.array(ds["true_rating"])
    acc = (rated == true).mean()
    assert f"wrote 1500 rows to {path}; rated accuracy {acc:.3f}" in out
    assert 0.6 < acc < 0.9


def test_simulate_float_transition(tmp_path, capsys):
    path = tmp_path / "sim.jsonl"
    assert main(["simulate", str(path), "--n", "300", "--dim", "8", "--transition", "1.0", "--seed", "3"]) == 0
    ds = datasets.load_dataset("json", data_files=str(path), split="train")
    assert ds["rating"] == ds["true_rating"]  # an identity rater
    assert "rated accuracy 1.000" in capsys.readouterr().out


def test_simulate_bad_transition(tmp_path, capsys):
    rc = main(["simulate", str(tmp_path / "x.parquet"), "--n", "100", "--dim", "4", "--transition", "bard-like"])
    assert rc == 2
    assert "ds2 simulate: error: unknown transition preset 'bard-like'" in capsys.readouterr().err
    assert not (tmp_path / "x.parquet").exists()


@pytest.fixture(scope="module")
def curated(simulated, tmp_path_factory):
    folder = tmp_path_factory.mktemp("cur")
    out = stdio.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main(["curate", str(simulated[0]), str(folder / "cur.parquet"), "--report", str(folder / "r.json")])
    assert rc == 0
    return folder, out.getvalue()


def test_curate_adds_columns_and_improves_accuracy(curated):
    folder, out = curated
    ds = _load_parquet(folder / "cur.parquet")
    assert ds.column_names == ["embedding", "rating", "true_rating", *CURATION_COLUMNS]
    assert ds.features["curated_rating"] == datasets.Value("int8")
    assert ds.features["curation_posterior"] == datasets.List(datasets.Value("float32"), length=6)
    true = np.array(ds["true_rating"])
    acc_raw = (np.array(ds["rating"]) == true).mean()
    acc_cur = (np.array(ds["curated_rating"]) == true).mean()
    assert acc_cur > acc_raw + 0.1, (acc_raw, acc_cur)
    conf = np.array(ds["curation_confidence"])
    assert conf.min() >= 0 and conf.max() <= 1
    np.testing.assert_allclose(np.array(ds["curation_posterior"]).sum(axis=1), 1.0, atol=1e-4)
    assert "curation (joint): 1500 rated rows, 0 unrated" in out
    assert "estimated transition matrix T[true, rated]:" in out
    assert "wrote 1500 rows to" in out


def test_curate_report(curated):
    folder, _ = curated
    written = json.loads((folder / "r.json").read_text())
    assert written["schema_version"] == SCHEMA_VERSION and written["source"]["local"] is True
    assert written["command"]["lines"][0].startswith("ds2 curate ")
    report = written["curation"]
    T = np.array(report["transition_matrix"])
    assert T.shape == (6, 6)
    np.testing.assert_allclose(T.sum(axis=1), 1.0, atol=1e-3)
    assert (np.diag(T) > 0.5).all()  # the simulated rater is right about 3/4 of the time
    assert report["num_classes"] == 6 and report["method"] == "joint"
    assert report["n_rated"] == 1500 and sum(report["counts_raw"]) == 1500
    assert report["knn"]["method"] == "exact"


def test_curate_reports_and_switches_the_neighbourhood_prior(curated, simulated, tmp_path, capsys):
    folder, out = curated
    stage = json.loads((folder / "r.json").read_text())["curation"]["joint"]["neighbourhood_prior"]
    assert ("neighbourhood prior: kept" if stage["used"] else "neighbourhood prior: not kept") in out
    assert main(["curate", str(simulated[0]), str(tmp_path / "off.parquet"), "--report", str(tmp_path / "off.json"),
                 "--neighbourhood-prior", "off"]) == 0
    assert json.loads((tmp_path / "off.json").read_text())["curation"]["joint"]["neighbourhood_prior"] == {"used": False}
    assert "neighbourhood prior" not in capsys.readouterr().out
    assert main(["curate", str(simulated[0]), str(tmp_path / "on.parquet"), "--report", str(tmp_path / "on.json"),
                 "--neighbourhood-prior", "on"]) == 0
    assert json.loads((tmp_path / "on.json").read_text())["curation"]["joint"]["neighbourhood_prior"]["used"] is True


def test_curate_refuses_to_overwrite_then_overwrites(curated, tmp_path, capsys):
    folder, _ = curated
    assert main(["curate", str(folder / "cur.parquet"), str(tmp_path / "again.parquet")]) == 2
    err = capsys.readouterr().err
    assert "ds2 curate: error: column(s) ['curated_rating'" in err
    assert not (tmp_path / "again.parquet").exists()
    assert main(["curate", str(folder / "cur.parquet"), str(tmp_path / "again"), "--overwrite",
                 "--method", "faithful"]) == 0
    assert "curation (faithful)" in capsys.readouterr().out
    again = datasets.load_from_disk(str(tmp_path / "again"))
    assert len(again) == 1500 and set(CURATION_COLUMNS[:4]) <= set(again.column_names)


def test_curate_without_embedding_column_is_a_clean_error(tmp_path, capsys):
    path = tmp_path / "noemb.parquet"
    datasets.Dataset.from_dict({"text": ["a", "b", "c"], "rating": [1, 2, 3]}).to_parquet(str(path))
    assert main(["curate", str(path), str(tmp_path / "out.parquet")]) == 2
    err = capsys.readouterr().err
    assert "ds2 curate: error: 2 problems with the input: (1) no row is rated [0, 4, 5] of 0..5" in err
    assert "(2) column 'embedding' not found (columns: ['text', 'rating'])" in err
    assert "Traceback" not in err and 'error: "' not in err  # the message, not a KeyError repr
    assert not (tmp_path / "out.parquet").exists()


def test_curate_missing_input(tmp_path, capsys):
    assert main(["curate", str(tmp_path / "nope.parquet"), str(tmp_path / "out.parquet")]) == 2
    assert "ds2 curate: error: no such file or folder" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------- run


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo") / "subset"
    argv = ["run", "--demo", "--output", str(folder), "-k", "50", "--embed-backend", "wordllama"]  # offline
    out = stdio.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(out):
        mp.setattr(sys, "argv", ["ds2", *argv])
        rc = main(argv)
    assert rc == 0
    return folder, out.getvalue()


@pytest.mark.slow
def test_run_demo_writes_hub_layout(demo_run):
    folder, out = demo_run
    assert (folder / "README.md").is_file()
    assert sorted(p.suffix for p in (folder / "data").iterdir()) == [".parquet"]
    figures = list((folder / "figures").glob("*.png"))
    assert figures and all(p.stat().st_size > 1000 for p in figures)
    ds = datasets.load_dataset(str(folder), split="train")
    assert len(ds) == 50
    assert {"instruction", "output", "rating", *CURATION_COLUMNS[:4]} <= set(ds.column_names)
    ratings = np.array(ds["curated_rating"])
    assert (ratings[:-1] >= ratings[1:]).all()  # ds2 strategy: highest curated rating first
    assert "selected 50 of" in out and f"wrote {folder}/" in out


@pytest.mark.slow
def test_run_demo_report(demo_run):
    folder, _ = demo_run
    report = json.loads((folder / "ds2_report.json").read_text())["report"]
    assert report["command"]["lines"] == [f"ds2 run --demo --output {folder} -k 50 --embed-backend wordllama"]
    assert report["source"]["license"] == "apache-2.0"
    assert np.array(report["curation"]["transition_matrix"]).shape == (6, 6)
    assert report["embedding"]["backend"] == "wordllama" and report["embedding"]["dim"] > 0
    assert report["selection"]  # the selection report is recorded


def test_run_on_a_rated_file(simulated, tmp_path, capsys):
    out_dir, pool = tmp_path / "subset", tmp_path / "pool.parquet"
    argv = ["run", str(simulated[0]), "--output", str(out_dir), "-k", "40", "--save-pool", str(pool)]
    assert main(argv) == 0
    subset = datasets.load_dataset(str(out_dir), split="train")
    assert len(subset) == 40
    assert (np.array(subset["curated_rating"]) == 5).all()  # the pool has far more than 40 rows curated to 5
    whole = _load_parquet(pool)
    assert len(whole) == 1500 and "curated_rating" in whole.column_names
    assert np.mean(subset["true_rating"]) > np.mean(whole["true_rating"]) + 1.0
    report = json.loads((out_dir / "ds2_report.json").read_text())["report"]
    assert "embedding" not in report  # the input already had embeddings: nothing was embedded
    assert report["source"]["dataset"] == str(simulated[0])
    capsys.readouterr()

    # a second run into the same, now non-empty folder refuses; --overwrite-output replaces it
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"ds2 run: error: output folder {str(out_dir)!r} is not empty" in err
    assert "--overwrite-output" in err
    assert "Adding curation columns" not in err  # refused before running the pipeline
    assert main([*argv, "-k", "20", "--overwrite-output"]) == 0
    assert len(datasets.load_dataset(str(out_dir), split="train")) == 20


@pytest.mark.parametrize("argv", [["run", "--output", "x"], ["run", "in.parquet", "--demo", "--output", "x"]])
def test_run_needs_input_or_demo(argv, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert capsys.readouterr().err.endswith("ds2 run: error: give either INPUT or --demo (one of them)\n")
    assert not (tmp_path / "x").exists()


def test_run_rate_needs_the_demo(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.jsonl").write_text('{"instruction": "a", "output": "b", "rating": 1}\n')
    assert main(["run", "in.jsonl", "--rate", "200", "--output", "x"]) == 2
    assert "--rate re-rates the demo data: use it with --demo" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_run_without_rating_column(tmp_path, capsys):
    path = tmp_path / "unrated.jsonl"
    datasets.Dataset.from_dict({"text": ["a", "b"], "score": [1, 2]}).to_json(str(path))
    assert main(["run", str(path), "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "ds2 run: error: column 'rating' not found (columns: ['text', 'score'])" in err
    assert "--rating-column" in err
    assert main(["run", str(path), "--output", str(tmp_path / "out"), "--rating-column", "stars"]) == 2
    assert "column 'stars' not found" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_run_requires_output(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--demo"])
    assert exit_info.value.code == 2
    assert "--output" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------- the README


def _readme_commands() -> list[tuple[str, str]]:
    """``(command, text after it)`` for every ``ds2 <command> ...`` in the README's code blocks and inline code."""
    import re
    from pathlib import Path

    text = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```[^\n]*\n(.*?)^```", text, flags=re.S | re.M)
    inline = re.findall(r"`([^`\n]*(?:\n[^`\n]+)?)`", re.sub(r"^```.*?^```", "", text, flags=re.S | re.M))
    snippets = [line.split(" # ")[0] for block in blocks for line in block.replace("\\\n", " ").splitlines()]
    found = []
    for snippet in snippets + [s.replace("\n", " ") for s in inline]:
        for part in re.split(r"(?=\bds2 )", snippet)[1:]:
            words = part.split()
            if len(words) > 1 and words[1] in COMMANDS:
                found.append((words[1], " ".join(words[2:])))
    return found


def test_every_flag_the_readme_shows_exists():
    """The README's command lines use only options that the parser (generated from the configs) has."""
    import re

    from ds2_hf.cli import ALL, build_parser

    parser = build_parser(ALL)
    commands = parser._subparsers._group_actions[0].choices
    found = _readme_commands()
    assert len(found) > 20  # the README shows every stage
    bad = []
    for command, rest in found:
        valid = set(commands[command]._option_string_actions) | set(parser._option_string_actions)
        flags = re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", rest.split("&&")[0].split("|")[0])
        bad += [f"ds2 {command} {flag}" for flag in flags if flag not in valid]
    assert bad == []


def test_choices_come_from_the_registries():
    from ds2_hf.cli import ALL, build_parser
    from ds2_hf.curation.config import METHODS
    from ds2_hf.embedding import BACKENDS
    from ds2_hf.knn import KNN_METHODS
    from ds2_hf.selection import STRATEGIES, TIE_BREAKS

    commands = build_parser(ALL)._subparsers._group_actions[0].choices

    def choices(command, dest):
        return next(tuple(a.choices) for a in commands[command]._actions if a.dest == dest)

    assert choices("curate", "method") == choices("run", "method") == METHODS
    assert choices("curate", "knn_method") == KNN_METHODS
    assert choices("select", "strategy") == choices("run", "strategy") == tuple(STRATEGIES)
    assert choices("select", "tie_break") == TIE_BREAKS
    assert choices("embed", "backend") == choices("run", "embed_backend") == tuple(BACKENDS)


@pytest.mark.parametrize("command, cls, prefix", [
    ("curate", "ds2_hf.curation:CurationConfig", ""), ("select", "ds2_hf.selection:SelectionConfig", ""),
    ("embed", "ds2_hf.embedding:EmbeddingConfig", ""), ("rate", "ds2_hf.rating:RatingConfig", ""),
    ("run", "ds2_hf.embedding:EmbeddingConfig", "embed_"), ("push", "ds2_hf.publish:PublishConfig", ""),
])
def test_flag_defaults_are_the_config_defaults(command, cls, prefix):
    """Nothing is restated: every generated option's default is its field's, so an unchanged command line gives
    the config's defaults."""
    import dataclasses
    import importlib

    from ds2_hf._argparse import field_default
    from ds2_hf.cli import build_parser

    module, name = cls.split(":")
    config = getattr(importlib.import_module(module), name)
    commands = build_parser(command)._subparsers._group_actions[0].choices
    options = commands[command].get_default("config_options")[(name, prefix)]
    assert len(options) >= 5
    fields = {f.name: f for f in dataclasses.fields(config)}
    for dest, option in options.items():
        assert option.default == field_default(fields[option.field]), dest
        assert commands[command].get_default(dest) == option.default, dest


def test_an_unchanged_command_line_gives_the_default_configs(tmp_path):
    from ds2_hf.cli import build_parser
    from ds2_hf.cli.curate import curation_config
    from ds2_hf.curation import CurationConfig

    args = build_parser("curate").parse_args(["curate", "in.parquet", "out.parquet"])
    assert curation_config(args) == CurationConfig()
    args = build_parser("curate").parse_args(["curate", "a", "b", "--method", "faithful", "--knn-method", "exact",
                                             "--neighbourhood-prior", "off", "--seed", "3", "--no-backoff"])
    config = curation_config(args)
    assert (config.method, config.knn.method, config.neighbourhood_prior, config.seed, config.knn.seed,
            config.backoff) == ("faithful", "exact", False, 3, 3, False)
    args = build_parser("curate").parse_args(["curate", "a", "b", "--knn-nprobe", "16", "--knn-cell-size", "1000",
                                             "--knn-coarse-nprobe", "40"])
    knn = curation_config(args).knn
    assert (knn.nprobe, knn.cell_size, knn.coarse_nprobe) == (16, 1000, 40)
    assert curation_config(build_parser("curate").parse_args(["curate", "a", "b"])).knn.coarse_nprobe is None


def test_run_takes_the_row_template_its_error_names(tmp_path, capsys):
    """Rows in no known format: `ds2 run` names --template, and with it renders the rows for embedding."""
    rows = {"q": [f"How do I cook dish {i} with {i % 7} eggs?" for i in range(90)],
            "a": [f"Boil it {i % 9} minutes; serve with {i % 5} herbs." for i in range(90)],
            "rating": [i % 6 for i in range(90)]}
    src = tmp_path / "pool.jsonl"
    datasets.Dataset.from_dict(rows).to_json(src)
    assert main(["run", str(src), "-o", str(tmp_path / "bad")]) == 2
    assert "--template" in capsys.readouterr().err and not (tmp_path / "bad").exists()
    assert main(["run", str(src), "-o", str(tmp_path / "out"), "--template", "{q}\n\n{a}", "--embed-dim", "64"]) == 0
    report = json.loads((tmp_path / "out" / "ds2_report.json").read_text())
    assert report["report"]["embedding"]["config"]["formatter"]["template"] == "{q}\n\n{a}"
