#!/usr/bin/env python3
"""CDK entry point: read the settings, create the stacks, nothing else.

The stacks (monitored table, receiver, metric stream) arrive with the "CDK stacks" issue;
until then this app synthesizes an empty cloud assembly.
"""

import aws_cdk as cdk

app = cdk.App()
app.synth()
