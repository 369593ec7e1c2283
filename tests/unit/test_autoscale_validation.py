"""The validation set of bench/autoscale_validation.py never holds training or report traces."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _bench():  # bench/ is scripts, not a package
    spec = importlib.util.spec_from_file_location("autoscale_validation",
                                                  ROOT / "bench" / "autoscale_validation.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_validation_excludes_training_and_report_traces(tmp_path: Path) -> None:
    bench = _bench()
    for folder, names in {"realAWSCloudwatch": ["elb_request_count_8c0756", "ec2_a", "rds_b"],
                          "realAdExchange": ["exchange-1"], "realTweets": ["Twitter_volume_X"]
                          }.items():
        (tmp_path / folder).mkdir()
        for name in names:
            (tmp_path / folder / f"{name}.csv").write_text("timestamp,value\n")
    training = ["synthetic", str(tmp_path / "realAWSCloudwatch" / "rds_b.csv")]
    picked = [p.name for p in bench.validation_traces(tmp_path, training)]
    assert picked == ["ec2_a.csv", "exchange-1.csv"]
