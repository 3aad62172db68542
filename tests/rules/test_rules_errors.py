"""Anything outside the subset, and any broken file, is refused at load with the file,
line, column and one sentence saying what is wrong."""

from __future__ import annotations

import pytest

from receiver.rules import RuleError, load_rules
from tests.rules.rulekit import write

HEAD = "metricPrefix: t\nmetricsRules:\n  - name: m\n"
SCOPE = ".service(['a'], Layer.X)"


def error_of(tmp_path, text, name="r.yaml"):
    write(tmp_path, name, text)
    with pytest.raises(RuleError) as caught:
        load_rules(tmp_path)
    return caught.value


def exp_error(tmp_path, exp):
    """The error of a file whose one rule has ``exp`` alone on line 5, from column 7."""
    return error_of(tmp_path, HEAD + f"    exp: |-\n      {exp}\n")


UNSUPPORTED = [
    # (expression, where the culprit starts in it, a phrase the sentence must hold)
    (f"x.rate('PT1M'){SCOPE}", "rate", "rate(...) is not supported"),
    (f"x.increase('PT1M'){SCOPE}", "increase", "increase(...) is not supported"),
    (f"x.histogram(){SCOPE}", "histogram", "not histograms"),
    (f"x.valueEqual(1){SCOPE}", "valueEqual", "valueEqual(...) is not supported"),
    (f"count(x){SCOPE}", "count", "function count(...) is not supported"),
    (f"x.tag({{tags -> if (tags.a) {{ tags.b = 'c' }} }}){SCOPE}", "if", "'if' is not supported"),
    (f"x.tag({{tags -> tags['a'] = 'b'}}){SCOPE}", "[", "tags[...] is not supported"),
    (f"x.tag({{tags -> tags.a = tags.b.trim()}}){SCOPE}", ".trim", "method calls"),
    (f"x.tag({{tags -> tags.a = tags.b ?: 'c'}}){SCOPE}", ": 'c'", "Elvis"),
    (f"x.tag({{tags -> tags.a = 1}}){SCOPE}", "1", "numbers are not supported inside closures"),
    (f"x.tag({{a, b -> a.x = 'y'}}){SCOPE}", "{", "exactly one parameter"),
    (f"x.tag({{tags -> it.a = 'b'}}){SCOPE}", "it.", "unknown name 'it'"),
    (f"x.tag({{tags -> tags.a < 'b'}}){SCOPE}", "<", "'<' is not part of the supported MAL"),
    (f'x.tag({{tags -> tags.a = "${{tags.b}}"}}){SCOPE}', "$", "interpolation"),
    (f"x.filter({{tags -> tags.a = 'b'}}){SCOPE}", "{", "single condition"),
    (f"x.tagMatch('a', '(unclosed'){SCOPE}", "'(", "not a valid regular expression"),
    (f"x.tagEqual('a'){SCOPE}", "tagEqual", "pairs of strings"),
    (f"x.sum('a'){SCOPE}", "sum", "list of label names"),
    (f"x.downsampling(MEDIAN){SCOPE}", "downsampling", "downsampling takes one of"),
    (f"x.downsampling(SUM).downsampling(MAX){SCOPE}", "downsampling(MAX", "given twice"),
    ("x.service(['a'], 'X')", "service", "service takes"),
    ("x.service(['a'], Zone.X)", "Zone", "must be a layer"),
    ("x.service([], Layer.X)", "service", "must not be empty"),
    ("x.sum(['a'])", "sum", "must end with service(...)"),
    (f"x.service(['a'], Layer.X).sum(['a']){SCOPE}", "service", "must come last"),
    (f"(x + y.service(['a'], Layer.X)){SCOPE}", "service", "must come last"),
    (f"(3 * 4){SCOPE}", "*", "computes a number, not a sample family"),
    (f"(3).sum(['a']){SCOPE}", "sum", "needs a sample family, not a number"),
    (f"x.div('a'){SCOPE}", "div", "one sample family or number"),
    (f"x.foo{SCOPE}", ".service", "is not a method call"),
    (f"(Layer.X + x){SCOPE}", "Layer", "Layer.X can only be a method argument"),
    (f"x.sum(['a']{SCOPE}", ".service", "expected ')'"),
]


@pytest.mark.parametrize("exp, culprit, phrase", UNSUPPORTED, ids=[c[2] for c in UNSUPPORTED])
def test_unsupported_syntax_is_refused_where_it_is_written(tmp_path, exp, culprit, phrase):
    error = exp_error(tmp_path, exp)
    assert str(error).startswith(f"{tmp_path / 'r.yaml'}:5:{7 + exp.index(culprit)}: ")
    assert phrase in error.message
    assert error.message.endswith(".")


def test_an_error_in_exp_suffix_points_into_the_suffix(tmp_path):
    error = error_of(tmp_path, "expSuffix: service(['a'], Layer.X).rate('PT1M')\n" + HEAD + "    exp: x\n")
    assert (error.pos.line, error.pos.column) == (1, 36)


def test_an_error_in_a_folded_expression_points_to_its_line(tmp_path):
    error = error_of(tmp_path, HEAD + "    exp: >-\n      x.sum(['a'])\n      .irate()\n")
    assert (error.pos.line, error.pos.column) == (6, 8)


def test_an_error_in_the_filter_points_into_the_filter(tmp_path):
    error = error_of(tmp_path, "filter: \"{ tags -> tags.a == 'b' && tags.c.d }\"\n" + HEAD + f"    exp: x{SCOPE}\n")
    assert (error.pos.line, error.pos.column) == (1, 43)
    assert "method calls and nested fields" in error.message


BROKEN_FILES = [
    ("metricPrefix: t\nmetricsRules:\n  - name: m\n    exp: [1, 2\n", 5, "not valid YAML"),
    ("", 1, "the file is empty"),
    ("- a\n- b\n", 1, "must be a mapping"),
    ("metricsRules:\n  - name: m\n    exp: x\n", 1, "has no metricPrefix"),
    ("metricPrefix: t\n", 1, "needs metricsRules"),
    ("metricPrefix: t\nmetricsRules: []\n", 2, "needs metricsRules"),
    ("metricPrefix: t\nmetricsRules:\n  - name: m\n", 3, "has no exp"),
    ("metricPrefix: t\nmetricsRules:\n  - exp: x\n", 3, "has no name"),
    ("metricPrefix: t\nmetrics: []\n", 2, "unknown key 'metrics'"),
    ("initExp: x\nmetricPrefix: t\n", 1, "initExp is not supported"),
    ("metricPrefix: t\nmetricPrefix: u\n", 2, "appears twice"),
    ("metricPrefix: t\nmetricsRules:\n  - name: m-x\n    exp: x\n", 3, "only letters"),
    ("filter: \"{ tags -> tags.a = 'b' }\"\n" + HEAD + "    exp: x\n", 1, "single condition"),
    ("filter: tags.a == 'b'\n" + HEAD + "    exp: x\n", 1, "must be a closure"),
    ("metricPrefix: [t]\n", 1, "must be text"),
]


@pytest.mark.parametrize("text, line, phrase", BROKEN_FILES, ids=[b[2] for b in BROKEN_FILES])
def test_a_broken_file_gives_its_name_line_and_what_is_wrong(tmp_path, text, line, phrase):
    error = error_of(tmp_path, text)
    assert error.file == str(tmp_path / "r.yaml")
    assert error.pos is not None and error.pos.line == line
    assert phrase in error.message


def test_one_metric_with_two_scopes_is_refused(tmp_path):
    write(tmp_path, "a.yaml", HEAD + "    exp: x.service(['a'], Layer.X)\n")
    error = error_of(tmp_path, HEAD + "    exp: x.endpoint(['a'], ['b'], Layer.X)\n", "b.yaml")
    assert error.file.endswith("b.yaml") and "already defined at" in error.message


def test_a_missing_directory_is_refused(tmp_path):
    with pytest.raises(RuleError, match="does not exist"):
        load_rules(tmp_path / "nowhere")


def test_a_directory_without_rule_files_is_refused(tmp_path):
    write(tmp_path, "README.md", "# not rules\n")
    with pytest.raises(RuleError, match="holds no rule files"):
        load_rules(tmp_path)


def test_the_first_error_stops_the_load_and_names_its_file(tmp_path):
    write(tmp_path, "a.yaml", HEAD + f"    exp: x{SCOPE}\n")
    error = error_of(tmp_path, HEAD + "    exp: x.rate('PT1M')\n", "b.yaml")
    assert error.file == str(tmp_path / "b.yaml")
