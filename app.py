#!/usr/bin/env python3
"""CDK entry point: read the settings, create the stacks, nothing else."""

import os
import sys

import aws_cdk as cdk

from stacks.build import build_stacks
from stacks.settings import SettingsError, settings_from_context

app = cdk.App()
try:
    settings = settings_from_context(app.node.try_get_context, default_region=os.environ.get("CDK_DEFAULT_REGION"))
    stacks = build_stacks(app, settings)
except SettingsError as error:
    sys.exit(f"error: {error}")
# What the metric stream sends and to which region, on stderr beside the CLI's own output.
print(f"region: {settings.region}", file=sys.stderr)
print(stacks.stream_plan.summary(), file=sys.stderr)
app.synth()
