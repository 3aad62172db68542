"""Session-wide synth results: each app variant is synthesized once and shared by every test.

- ``cli_run``: the default settings through the pinned CDK CLI (``-c`` strings, cdk.json's
  feature flags, CloudFormation validation), which the template tests also read;
- ``alternative``: every non-default setting at once, in this process, with cdk-nag on;
- ``default_nag``: the default settings, in this process, with cdk-nag on;
- ``inventory_off``: the default settings but ``inventory=false``, in this process, with cdk-nag on;
- ``stream_only``: only the metric stream for a receiver run elsewhere, in this process, with cdk-nag on;
- ``prebuilt_image``: the default settings with ``receiverImage``, in this process, with cdk-nag on.

Each in-process synthesis after the first takes a second or two; the CLI's takes about ten.
"""

from __future__ import annotations

import pytest

from tests.stacks.synth import (
    ALTERNATIVE_CONTEXT,
    BASE_CONTEXT,
    PREBUILT_IMAGE_CONTEXT,
    STREAM_ONLY_CONTEXT,
    Assembly,
    CliRun,
    InProcessRun,
    cli_synth,
    in_process_synth,
)


@pytest.fixture(scope="session")
def cli_run(tmp_path_factory: pytest.TempPathFactory) -> CliRun:
    return cli_synth(tmp_path_factory.mktemp("cli") / "cdk.out", BASE_CONTEXT)


@pytest.fixture(scope="session")
def default(cli_run: CliRun) -> Assembly:
    if cli_run.returncode != 0:
        pytest.fail(f"cdk synth failed:\n{cli_run.output}")
    return cli_run.assembly


@pytest.fixture(scope="session")
def alternative_run(tmp_path_factory: pytest.TempPathFactory) -> InProcessRun:
    return in_process_synth(tmp_path_factory.mktemp("alternative"), {**ALTERNATIVE_CONTEXT, "nag": True})


@pytest.fixture(scope="session")
def alternative(alternative_run: InProcessRun) -> Assembly:
    # cdk-nag findings fail validation after the templates are written; test_checks reports
    # those, so the template tests still run on them.
    if alternative_run.error is not None and not alternative_run.error.startswith("ValidationFailed"):
        pytest.fail(f"synthesis with every non-default setting failed: {alternative_run.error}")
    return alternative_run.assembly


@pytest.fixture(scope="session")
def default_nag_run(tmp_path_factory: pytest.TempPathFactory) -> InProcessRun:
    return in_process_synth(tmp_path_factory.mktemp("nag"), {**BASE_CONTEXT, "nag": True})


@pytest.fixture(scope="session")
def inventory_off_run(tmp_path_factory: pytest.TempPathFactory) -> InProcessRun:
    return in_process_synth(tmp_path_factory.mktemp("inventory-off"), {**BASE_CONTEXT, "inventory": False, "nag": True})


@pytest.fixture(scope="session")
def inventory_off(inventory_off_run: InProcessRun) -> Assembly:
    if inventory_off_run.error is not None and not inventory_off_run.error.startswith("ValidationFailed"):
        pytest.fail(f"synthesis with inventory=false failed: {inventory_off_run.error}")
    return inventory_off_run.assembly


@pytest.fixture(scope="session")
def stream_only_run(tmp_path_factory: pytest.TempPathFactory) -> InProcessRun:
    return in_process_synth(tmp_path_factory.mktemp("stream-only"), {**STREAM_ONLY_CONTEXT, "nag": True})


@pytest.fixture(scope="session")
def stream_only(stream_only_run: InProcessRun) -> Assembly:
    if stream_only_run.error is not None and not stream_only_run.error.startswith("ValidationFailed"):
        pytest.fail(f"synthesis of the metric stream alone failed: {stream_only_run.error}")
    return stream_only_run.assembly


@pytest.fixture(scope="session")
def prebuilt_image_run(tmp_path_factory: pytest.TempPathFactory) -> InProcessRun:
    return in_process_synth(tmp_path_factory.mktemp("prebuilt-image"), {**PREBUILT_IMAGE_CONTEXT, "nag": True})


@pytest.fixture(scope="session")
def prebuilt_image(prebuilt_image_run: InProcessRun) -> Assembly:
    if prebuilt_image_run.error is not None and not prebuilt_image_run.error.startswith("ValidationFailed"):
        pytest.fail(f"synthesis with receiverImage failed: {prebuilt_image_run.error}")
    return prebuilt_image_run.assembly
