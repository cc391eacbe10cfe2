"""The typed report (ds2_hf.report): JSON round trip, the layouts of earlier releases, one clear error for the rest,
and how the reports of several stage commands combine."""

from __future__ import annotations

import json

import pytest

from ds2_hf.report import (
    SCHEMA_VERSION, CommandInfo, CurationInfo, Report, ReportError, SelectionInfo, SourceInfo,
)

CURATION = {
    "method": "joint", "num_classes": 3, "n": 10, "n_rated": 9, "n_unrated": 1,
    "transition_matrix": [[0.9, 0.1, 0.0], [0.1, 0.8, 0.1], [0.0, 0.2, 0.8]], "counts_raw": [3, 3, 3],
    "confidence_threshold": 0.0, "backoff": True, "config": {"backoff": None, "confidence_threshold": None},
    "knn": {"method": "exact", "k": 5, "recall": None, "blocks": 1},
    "clusterability": {"status": "trusted", "gate": 1.0, "verdict": "ok", "advice": "",
                       "checks": [{"name": "neighbours", "gate": 1.0, "passed": True, "summary": "s", "values": {}}]},
    "structure": {"duplicates": {"n_groups": 1, "n_rows": 2, "n_redundant": 1, "largest": [[2, 4]]}},
    "joint": {"neighbourhood_prior": {"used": True, "heldout_gain_first": 0.1, "heldout_gain_second": 0.2}},
    "timings": {"knn": 0.01},
}


def test_round_trip_keeps_every_key_typed_or_not(tmp_path):
    report = Report(source=SourceInfo(dataset="org/pool", license="mit"),
                    curation=CurationInfo.from_dict(CURATION), command=CommandInfo(lines=["ds2 curate a b"]))
    path = report.write(tmp_path / "r.json")
    assert Report.read(path) == report
    written = json.loads(path.read_text())
    assert written["schema_version"] == SCHEMA_VERSION
    assert written["curation"]["timings"] == {"knn": 0.01} and written["curation"]["knn"]["blocks"] == 1
    curation = Report.read(path).curation
    assert curation.knn.k == 5 and curation.clusterability.checks[0].result == "passed"
    assert curation.duplicates.largest == [[2, 4]] and curation.neighbourhood_prior["used"] is True
    assert curation.effective_options() == {"backoff": True, "confidence_threshold": 0.0}
    with pytest.raises(ValueError, match="already exists.*overwrite=True"):
        report.write(path)


@pytest.mark.parametrize(("data", "section"), [
    (CURATION, "curation"),                                       # `ds2 curate --report` of 0.1.0
    ({"strategy": "ds2", "k": 3, "n_pool": 9}, "selection"),      # `ds2 select --report` of 0.1.0
    ({"report": {"curation": CURATION, "command": "ds2 run x"}, "summary": {}}, "curation"),  # ds2_report.json
])
def test_earlier_layouts_are_read(data, section):
    report = Report.from_dict(data)
    assert getattr(report, section) is not None
    if "report" in data:
        assert report.command.lines == ["ds2 run x"]


@pytest.mark.parametrize(("data", "message"), [
    ({"rows": 3}, "is not a ds2 report"),
    ({"curation": CURATION, "extra_section": {}}, "unknown top-level key"),
    ({"schema_version": SCHEMA_VERSION + 1}, "upgrade ds2-hf"),
    ({"curation": {**CURATION, "n": "ten"}}, "curation.n must be int"),
    ({"curation": {**CURATION, "clusterability": {"checks": [{"name": "x"}]}}}, "lacks the key"),
    ({"selection": [1, 2]}, "must be a JSON object"),
    ([1, 2], "must hold a JSON object"),
])
def test_anything_else_is_one_clear_error(data, message):
    with pytest.raises(ReportError, match=message):
        Report.from_dict(data)


def test_a_file_that_is_not_json_names_itself(tmp_path):
    (tmp_path / "r.json").write_text("{not json")
    with pytest.raises(ReportError, match="r.json.*is not valid JSON"):
        Report.read(tmp_path / "r.json")


def test_stage_reports_merge_in_pipeline_order():
    embed = Report(source=SourceInfo.of("pool.parquet"), command=CommandInfo(lines=["ds2 embed pool.parquet e"]))
    curate = Report(source=SourceInfo.of("e"), curation=CurationInfo(method="joint"),
                    command=CommandInfo(lines=["ds2 curate e c"]))
    select = Report(source=SourceInfo.of("c"), selection=SelectionInfo(strategy="ds2"),
                    command=CommandInfo(lines=["ds2 select c s"]))
    merged = Report().merge(embed, curate, select)
    assert merged.source.dataset == "pool.parquet"  # the origin of the rows, not the intermediate files
    assert merged.curation.method == "joint" and merged.selection.strategy == "ds2"
    assert merged.command.lines == ["ds2 embed pool.parquet e", "ds2 curate e c", "ds2 select c s"]
    assert embed.command.lines == ["ds2 embed pool.parquet e"]  # the inputs are left as they were


def test_a_hub_id_is_told_from_a_local_path(tmp_path):
    (tmp_path / "org").mkdir()
    assert SourceInfo.of("tatsu-lab/alpaca_eval").hub_id == "tatsu-lab/alpaca_eval"
    assert SourceInfo.of(tmp_path / "org").hub_id is None and SourceInfo.of(tmp_path / "org").local
    assert SourceInfo.of("./data/pool.jsonl").hub_id is None
