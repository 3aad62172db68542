"""app.py as the CDK CLI runs it: a wrong setting stops it with one sentence, no traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.stacks.synth import REPO, CliRun, cdk_json_context, child_env


def run_app(context: dict[str, object], outdir: Path) -> subprocess.CompletedProcess[str]:
    env = child_env()
    # What the CLI hands the app: the merged context and where to write the assembly.
    env["CDK_CONTEXT_JSON"] = json.dumps({**cdk_json_context(), **context})
    env["CDK_OUTDIR"] = str(outdir)
    return subprocess.run(
        [sys.executable, "app.py"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_a_wrong_setting_stops_the_app_with_one_line(tmp_path: Path) -> None:
    done = run_app({"region": "us-east-1", "domainName": ""}, tmp_path)
    assert done.returncode == 1
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: domainName is not set; put the DNS name")
    assert list(tmp_path.glob("*.template.json")) == []


def test_synth_prints_the_region_and_what_the_metric_stream_sends(cli_run: CliRun) -> None:
    # The app's stderr, as the pinned CLI passes it on.
    assert "region: us-east-1" in cli_run.output.splitlines()
    assert "metric stream: AWS/DynamoDB: " in cli_run.output
    assert "metric stream: AWS/DynamoDB SuccessfulRequestLatency: p50, p90, p95, p99, p99.9" in cli_run.output
