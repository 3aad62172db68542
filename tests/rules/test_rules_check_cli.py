"""``check-rules``: the metrics a directory defines, or its first error."""

from __future__ import annotations

import io

from receiver.rules import check_rules_main, default_rules_dir
from tests.rules.rulekit import pack, write


def run(directory=None):
    out, err = io.StringIO(), io.StringIO()
    code = check_rules_main(directory, out, err)
    return code, out.getvalue(), err.getvalue()


def test_the_default_directory_is_the_repositorys_rules():
    assert default_rules_dir().name == "rules" and (default_rules_dir() / "aws-dynamodb").is_dir()


def test_it_lists_every_metric_with_scope_layer_and_unit():
    code, out, err = run()
    lines = out.splitlines()
    assert code == 0 and err == ""
    assert len(lines) == len(pack().metrics) + 1
    assert lines[0].split() == ["aws_dynamodb_account_max_reads", "service", "AWS_DYNAMODB", "units"]
    files = len(pack().files)
    assert files == 12  # rules/aws-dynamodb/*.yaml (8) and rules/aws-pipeline/*.yaml (4)
    assert lines[-1] == f"{len(pack().metrics)} metrics from {files} files in {default_rules_dir()}"


def test_it_prints_the_first_error_and_fails(tmp_path):
    write(tmp_path, "r.yaml", "metricPrefix: t\nmetricsRules:\n  - name: m\n    exp: x.rate('PT1M')\n")
    code, out, err = run(tmp_path)
    assert code == 1 and out == ""
    assert err.startswith(f"{tmp_path / 'r.yaml'}:4:12: the method rate(...) is not supported")
    assert err.count("\n") == 1


def test_a_missing_directory_is_an_error(tmp_path):
    code, _, err = run(tmp_path / "nowhere")
    assert code == 1 and "does not exist" in err
