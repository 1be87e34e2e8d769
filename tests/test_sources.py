"""Every source of rows gives the numbers of .npy input: files, several
files, directories, globs, hive-partitioned datasets, pyarrow objects,
Polars, pandas, DuckDB and dicts; grouping, filters, missing values, the
outputs of `fastbce score`, and Dask."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.dataset as ds
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

import fastbce as fb

ALL = "logloss,brier,ece,auc"
DAYS = ["2026-11-01", "2026-11-02", "2026-11-03"]


def run_cli(*args, cwd=None):
    done = subprocess.run([sys.executable, "-m", "fastbce", *map(str, args)], capture_output=True, text=True,
                          timeout=600, cwd=cwd)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done


def predictions(rows=12_000, seed=0):
    """Three days of two-class predictions: float32 logits, uint8 labels, a weight."""
    rng = np.random.default_rng(seed)
    y = (rng.uniform(size=(rows, 2)) < [0.2, 0.4]).astype(np.uint8)
    x = (rng.normal(0, 2, (rows, 2)) + 1.5 * y).astype(np.float32)
    day = np.array(DAYS)[np.arange(rows) * 3 // rows]
    return {"logit_a": x[:, 0], "logit_b": x[:, 1], "label_a": y[:, 0], "label_b": y[:, 1],
            "w": rng.uniform(0.5, 2, rows), "day": day}  # fmt: skip


def metrics_of(result):
    return {(r["class"]): {m: r[m] for m in ("logloss", "brier", "ece", "auc", "rows", "weight")}
            for r in result.per_class} | {"all": result.metrics}  # fmt: skip


def assert_same(a, b, rel=1e-12):
    assert a.keys() == b.keys()
    for key in a:
        for name, value in a[key].items():
            assert b[key][name] == pytest.approx(value, rel=rel), (key, name)


@pytest.fixture(scope="module")
def data():
    return predictions()


@pytest.fixture(scope="module")
def expected(data):
    """The metrics of the same rows from .npy-shaped (N, C) arrays."""
    x = np.column_stack([data["logit_a"], data["logit_b"]])
    y = np.column_stack([data["label_a"], data["label_b"]])
    result = fb.score({"x": x, "y": y, "w": data["w"]}, logits="x", labels="y", weight="w", metrics=ALL,
                      class_names=["label_a", "label_b"])  # fmt: skip
    return metrics_of(result)


COLUMNS = dict(logits="logit_*", labels="label_*", weight="w", metrics=ALL)


def test_files_directories_globs_and_datasets(tmp_path, data, expected):
    table = pa.table(data)
    pq.write_table(table, tmp_path / "one.parquet", row_group_size=5000)
    for i, day in enumerate(DAYS):  # hive partitions: day=... directories
        part = table.filter(pa.compute.equal(table["day"], day)).drop_columns(["day"])
        (tmp_path / "hive" / f"day={day}").mkdir(parents=True)
        pq.write_table(part, tmp_path / "hive" / f"day={day}" / "part-0.parquet")
        feather.write_feather(part, tmp_path / f"part-{i}.arrow")
        pcsv.write_csv(part, tmp_path / f"part-{i}.csv")
    sources = {
        "file": tmp_path / "one.parquet",
        "directory": tmp_path / "hive",
        "glob": str(tmp_path / "hive" / "day=*" / "*.parquet"),
        "list of files": [tmp_path / f"part-{i}.arrow" for i in range(3)],
        "dataset": ds.dataset(tmp_path / "hive", partitioning="hive"),
    }
    for source in sources.values():
        assert_same(expected, metrics_of(fb.score(source, **COLUMNS, chunk_rows=3000)), rel=1e-12)
    # CSV holds the float32 values in text; read back as float64, the same numbers.
    csv = fb.score(str(tmp_path / "part-*.csv"), **COLUMNS)
    assert_same(expected, metrics_of(csv), rel=1e-9)
    # Hive partitions are columns: to group by and to filter on.
    grouped = fb.score(tmp_path / "hive", **COLUMNS, group_by="day", filter="day>=2026-11-02")
    assert [g["day"] for g in grouped.groups if g["class"] == "all"] == DAYS[1:]
    assert grouped.rows == int((data["day"] >= "2026-11-02").sum())


def test_in_memory_objects(data, expected):
    table = pa.table(data)
    objects = {
        "dict": data,
        "pyarrow Table": table,
        "RecordBatchReader": pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=2500)),
    }
    for module in ("polars", "pandas", "duckdb"):
        try:
            lib = __import__(module)
        except ImportError:
            continue
        if module == "polars":
            objects[module] = lib.from_arrow(table)
        elif module == "pandas":
            objects[module] = table.to_pandas()
        else:
            connection = lib.connect()
            connection.register("preds", table)
            objects[module] = connection.sql("select * from preds")
    assert {"polars", "pandas", "duckdb"} <= objects.keys(), "the test extra installs the data frame libraries"
    for source in objects.values():
        assert_same(expected, metrics_of(fb.score(source, **COLUMNS)))


def test_to_arrow_and_pandas(data):
    result = fb.score(data, **COLUMNS, group_by="day")
    table = result.to_arrow()
    assert table.column_names[:2] == ["day", "class"]
    assert table.num_rows == 3 * 3 + 3  # 3 days x (2 classes + all), then every day pooled
    frame = result.to_pandas("reliability")
    assert set(frame.columns) >= {"day", "class", "bin", "count", "mean_predicted", "observed_rate"}
    assert frame[frame["day"].isna() & (frame["class"] == "all")]["count"].sum() == 2 * len(data["w"])
    with pytest.raises(ValueError, match="what must be 'metrics' or 'reliability', got 'bins'"):
        result.to_arrow("bins")


def test_missing_values_are_refused_or_dropped(data):
    x = pa.array(data["logit_a"], mask=np.arange(len(data["w"])) % 1000 == 7)
    table = pa.table(data).set_column(0, "logit_a", x)
    with pytest.raises(ValueError, match=r"column 'logit_a' has a missing value at row 7 \(--drop-null skips"):
        fb.score(table, **COLUMNS)
    dropped = fb.score(table, **COLUMNS, drop_null=True)
    kept = np.arange(len(data["w"])) % 1000 != 7
    assert dropped.dropped_rows == (~kept).sum() and dropped.rows == kept.sum()
    reference = fb.score({k: v[kept] for k, v in data.items()}, **COLUMNS)
    assert_same(metrics_of(reference), metrics_of(dropped))


def test_cli_grouped_outputs_and_per_sample_ids(tmp_path, data):
    pq.write_table(pa.table(data), tmp_path / "p.parquet")
    args = ["score", "p.parquet", "--logits", "logit_*", "--labels", "label_*", "--weight", "w", "--group-by", "day",
            "--metrics", ALL, "--output", "groups.csv", "--per-sample", "rows.csv", "--id", "day"]  # fmt: skip
    text = run_cli(*args, cwd=tmp_path).stdout
    api = fb.score(tmp_path / "p.parquet", **COLUMNS, group_by="day")
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["day", "class"])
    assert lines[header].split() == ["day", "class", "rows", "positives", "logloss", "brier", "ece", "auc"]
    assert lines[header + 1].split()[:3] == ["2026-11-01", "label_a", "4,000"]
    assert lines[header + 10].split()[:2] == ["all", "label_a"]  # every day pooled, last
    first = api.groups[0]
    assert f"{first['logloss']:.6f}" in lines[header + 1]
    assert "  weight     column w" in lines
    written = pcsv.read_csv(tmp_path / "groups.csv")
    assert written.num_rows == 12 and written.column("logloss").to_pylist()[0] == pytest.approx(first["logloss"])
    per_row = pcsv.read_csv(tmp_path / "rows.csv")
    assert per_row.column_names == ["day", "loss"] and per_row.num_rows == len(data["w"])
    want = fb.binary_cross_entropy_with_logits(
        np.column_stack([data["logit_a"], data["logit_b"]]), np.column_stack([data["label_a"], data["label_b"]]),
        data["w"][:, None], axis=-1)  # fmt: skip
    np.testing.assert_allclose(per_row.column("loss").to_numpy(), want, rtol=1e-6)
    as_json = json.loads(run_cli(*args[:-6], "--json", cwd=tmp_path).stdout)
    assert as_json["group_by"] == ["day"] and len(as_json["groups"]) == 9
    assert as_json["weight"] == "column w" and as_json["metrics"]["auc"] == pytest.approx(api.metrics["auc"])


def test_per_sample_row_numbers_skip_dropped_rows(tmp_path):
    x = pa.array([0.5, None, -1.0, 2.0])
    pq.write_table(pa.table({"x": x, "y": [1, 0, 0, 1]}), tmp_path / "n.parquet")
    done = run_cli("score", "n.parquet", "--logits", "x", "--labels", "y", "--drop-null", "--per-sample", "l.parquet",
                   cwd=tmp_path)  # fmt: skip
    assert "  dropped    1 row with missing values" in done.stdout.splitlines()
    written = pq.read_table(tmp_path / "l.parquet")
    assert written.column("row").to_pylist() == [0, 2, 3]
    np.testing.assert_allclose(written.column("loss").to_numpy(),
                               fb.binary_cross_entropy_with_logits(np.array([0.5, -1.0, 2.0]), np.array([1, 0, 1]),
                                                                   reduction="none"))  # fmt: skip


def test_plot(tmp_path, data):
    pytest.importorskip("matplotlib", reason="--plot draws with matplotlib (the plot extra)")
    pq.write_table(pa.table(data), tmp_path / "p.parquet")
    run_cli("score", "p.parquet", "--logits", "logit_*", "--labels", "label_*", "--group-by", "day",
            "--metrics", "ece", "--plot", "r.png", cwd=tmp_path)  # fmt: skip
    assert (tmp_path / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_dask_gives_the_in_memory_metrics(data):
    da = pytest.importorskip("dask.array", reason="the dask extra")
    import fastbce.dask as fbd

    x = np.column_stack([data["logit_a"], data["logit_b"]])
    y = np.column_stack([data["label_a"], data["label_b"]])
    for strategy in ("uniform", "quantile"):
        lazy = fbd.score(da.from_array(x, chunks=(1700, 2)), da.from_array(y, chunks=(1700, 2)),
                         da.from_array(data["w"], chunks=1700), {"day": da.from_array(data["day"], chunks=1700)},
                         metrics=ALL, strategy=strategy, class_names=["label_a", "label_b"])  # fmt: skip
        got = lazy.compute(scheduler="threads")
        local = fb.score(data, **COLUMNS, group_by="day", strategy=strategy)
        assert_same(metrics_of(local), metrics_of(got))
        for a, b in zip(local.groups, got.groups, strict=True):
            assert (a["day"], a["class"], a["rows"]) == (b["day"], b["class"], b["rows"])
            for m in ("logloss", "brier", "ece", "auc"):
                assert math.isclose(a[m], b[m], rel_tol=1e-12), (a, b)


def test_cli_reads_a_glob_of_hive_directories_grouped_and_filtered(tmp_path, data):
    table = pa.table(data).drop_columns(["day"])
    for day in DAYS:
        rows = pa.array(data["day"] == day)
        (tmp_path / "preds" / f"day={day}").mkdir(parents=True)
        pq.write_table(table.filter(rows), tmp_path / "preds" / f"day={day}" / "part-0.parquet")
    (tmp_path / "preds" / "_SUCCESS").write_text("")  # markers beside the data are left out
    args = ["preds/day=*/", "--logits", "logit_*", "--labels", "label_*", "--weight", "w", "--group-by", "day"]
    done = run_cli("score", *args, "--filter", "day>=2026-11-02", "--metrics", ALL, "--json", cwd=tmp_path)
    got = json.loads(done.stdout)
    assert [g["day"] for g in got["groups"] if g["class"] == "all"] == DAYS[1:]
    kept = {k: v[data["day"] >= "2026-11-02"] for k, v in data.items()}
    want = fb.score(kept, **COLUMNS, group_by="day")
    assert got["rows"] == want.rows
    for a, b in zip(got["groups"], want.groups, strict=True):
        assert a["logloss"] == pytest.approx(b["logloss"], rel=1e-12) and a["auc"] == pytest.approx(b["auc"], rel=1e-12)


def test_small_record_batches_are_joined_in_order():
    from fastbce._tables import coalesced

    sizes = [10, 10, 500, 10, 10, 10, 10, 10, 10, 10, 10, 3]
    values = np.arange(sum(sizes))
    batches, start = [], 0
    for n in sizes:
        batches.append(pa.record_batch({"v": values[start : start + n]}))
        start += n
    out = list(coalesced(iter(batches), chunk_rows=100))  # small: under 12 rows; joined up to 50
    assert [b.num_rows for b in out] == [20, 500, 50, 33]
    assert np.concatenate([b.column("v").to_numpy() for b in out]).tolist() == values.tolist()
    # Dictionaries that cannot be joined stay apart, in order.
    a = pa.record_batch({"g": pa.array(["x", "y"]).dictionary_encode()})
    b = pa.record_batch({"g": pa.array(["z"]).dictionary_encode()})
    joined = list(coalesced(iter([a, b]), chunk_rows=1000))
    assert [v for batch in joined for v in batch.column("g").to_pylist()] == ["x", "y", "z"]


def test_api_errors_name_the_keyword_arguments(data):
    with pytest.raises(ValueError, match=r"dict of arrays has no column matching 'nope' \(for logits=\); its columns"):
        fb.score(data, logits="nope", labels="label_*")
    with pytest.raises(ValueError, match=r"has no column matching 'region' \(for group_by=\)"):
        fb.score(pa.table(data), logits="logit_*", labels="label_*", group_by="region")
    with pytest.raises(ValueError, match=r"group_by='g' is not a key of data; its keys are: x, y"):
        fb.score({"x": np.zeros((3, 2)), "y": np.zeros((3, 2))}, logits="x", labels="y", group_by="g")


def test_csv_logits_that_look_integral_at_first_are_read_as_floats(tmp_path, monkeypatch):
    import fastbce._tables as tables

    monkeypatch.setattr(tables, "CSV_BLOCK", 1 << 10)  # many blocks: the first holds only whole numbers
    x = np.concatenate([np.round(np.linspace(-3, 3, 2000)), np.linspace(-3, 3, 5000) + 0.123])
    y = (np.arange(len(x)) % 3 == 0).astype(np.uint8)
    pcsv.write_csv(pa.table({"x": x, "y": y}), tmp_path / "p.csv")
    result = fb.score(tmp_path / "p.csv", logits="x", labels="y")
    assert result.rows == len(x)
    assert result.metrics["logloss"] == pytest.approx(float(fb.binary_cross_entropy_with_logits(x, y)), rel=1e-12)
