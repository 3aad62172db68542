"""The CDK app's stacks and their settings; build.py wires them together."""
