"""Rules: a safe subset of SkyWalking's Meter Analysis Language over CloudWatch samples.

Entry points:

* ``load_rules(directory) -> RuleSet`` (raises ``RuleError`` with file:line:col);
* ``RuleSet.metrics`` (``MetricInfo``) and ``RuleSet.evaluate(samples)`` (``DerivedValue``);
  ``RuleSet.evaluation(samples)`` (``Evaluation``: the values and those not computed);
* ``RuleHolder`` (the rules in force; ``reload()``, ``install_sighup()``);
* ``check_rules_main(directory, out, err)`` and ``default_rules_dir()`` for the CLI.
"""

from receiver.model import DerivedValue
from receiver.rules.cli import check_rules_main, default_rules_dir
from receiver.rules.errors import Pos, RuleError
from receiver.rules.holder import RuleHolder
from receiver.rules.loader import load_rules
from receiver.rules.ruleset import Evaluation, MetricInfo, RuleSet

__all__ = [
    "DerivedValue",
    "Evaluation",
    "MetricInfo",
    "Pos",
    "RuleError",
    "RuleHolder",
    "RuleSet",
    "check_rules_main",
    "default_rules_dir",
    "load_rules",
]
