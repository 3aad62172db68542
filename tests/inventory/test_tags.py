"""Table tags as labels (receiver/inventory/tags.py): which tags a value gets, and on /metrics
and OTLP."""

from __future__ import annotations

import pytest

from receiver.exporters.otlp_encode import encode_minute
from receiver.inventory.documents import item_of
from receiver.inventory.tags import TagLabels, label_name, tag_labeller
from receiver.model import LIMITS, TABLE, DerivedValue
from receiver.views.prometheus import derived_families, render
from tests.apps import repository_rules
from tests.builders import T0

ACCOUNT = "123456789012"
SERVICE = f"aws-dynamodb::{ACCOUNT}"
METRIC = "aws_dynamodb_endpoint_consumed_read_capacity_units"


def table(name: str, region: str, tags: dict[str, str]):
    return item_of(TABLE, ACCOUNT, region, name, T0, {"name": name, "region": region, "tags": tags})


ITEMS = [
    table("Orders", "us-east-1", {"team": "checkout", "env": "prod", "cost-center": "42"}),
    table("Orders", "eu-west-1", {"team": "checkout-eu"}),
    table("GameScores", "us-east-1", {"env": "dev"}),
    item_of(LIMITS, ACCOUNT, "us-east-1", "", T0, {}),
]


def value(endpoint: str | None, region: str = "", service: str = SERVICE) -> DerivedValue:
    scope = "endpoint" if endpoint else "service"
    return DerivedValue(METRIC, scope, service, endpoint, "AWS_DYNAMODB", T0, 1.0, None, region, not region)


def test_label_names_keep_letters_digits_and_underscores() -> None:
    assert label_name("team") == "tag_team"
    assert label_name("cost-center") == "tag_cost_center"
    assert label_name("aws:cloudformation:stack-name") == "tag_aws_cloudformation_stack_name"


def test_a_value_gets_the_listed_tags_its_table_has_in_the_order_listed() -> None:
    tags = tag_labeller(ITEMS, ("env", "team", "owner"))
    assert tags(value("Orders", "us-east-1")) == (("env", "prod"), ("team", "checkout"))
    assert tags(value("Orders", "eu-west-1")) == (("team", "checkout-eu"),)
    assert tags(value("GameScores", "us-east-1")) == (("env", "dev"),)
    # An index has its table's tags.
    assert tags(value("GameScores/ByPlayer", "us-east-1")) == (("env", "dev"),)


def test_a_merged_value_takes_each_tag_from_the_first_region_by_name_that_has_it() -> None:
    tags = tag_labeller(ITEMS, ("team", "env"))
    # eu-west-1 comes first and has team; only us-east-1 has env.
    assert tags(value("Orders")) == (("team", "checkout-eu"), ("env", "prod"))


def test_account_values_unknown_tables_and_other_services_get_no_tags() -> None:
    tags = tag_labeller(ITEMS, ("team",))
    assert tags(value(None)) == ()
    assert tags(value("Unknown", "us-east-1")) == ()
    assert tags(value("Orders", "us-east-1", service="aws-other::1")) == ()
    assert tag_labeller(ITEMS, ())(value("Orders", "us-east-1")) == ()


def test_prometheus_series_carry_tag_labels_after_the_entity_labels(metric_info) -> None:
    tags = tag_labeller(ITEMS, ("team", "cost-center"))
    text = render(
        derived_families([value("Orders", "us-east-1"), value("GameScores", "us-east-1")], [metric_info], tags)
    )
    assert (
        f'{METRIC}{{service="{SERVICE}",endpoint="Orders",region="us-east-1",layer="AWS_DYNAMODB",'
        'tag_team="checkout",tag_cost_center="42"} 1' in text
    )
    assert f'{METRIC}{{service="{SERVICE}",endpoint="GameScores",region="us-east-1",layer="AWS_DYNAMODB"}} 1' in text


def test_otlp_points_carry_tag_attributes(metric_info) -> None:
    tags = tag_labeller(ITEMS, ("team",))
    (request,) = encode_minute([value("Orders", "us-east-1")], lambda name: metric_info, tags=tags)
    (point,) = request.resource_metrics[0].scope_metrics[0].metrics[0].gauge.data_points
    attributes = {a.key: a.value.string_value for a in point.attributes}
    assert attributes == {"endpoint": "Orders", "cloud.region": "us-east-1", "tag.team": "checkout"}


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_the_labeller_reads_the_store_again_only_after_the_refresh_time(store) -> None:
    ticks = Ticks()
    labels = TagLabels(store, ("team",), clock=ticks)
    await store.put_inventory([table("Orders", "us-east-1", {"team": "a"})])
    assert (await labels.labeller())(value("Orders", "us-east-1")) == (("team", "a"),)
    await store.put_inventory([table("Orders", "us-east-1", {"team": "b"})])
    assert (await labels.labeller())(value("Orders", "us-east-1")) == (("team", "a"),)
    ticks.now += 60
    assert (await labels.labeller())(value("Orders", "us-east-1")) == (("team", "b"),)
    # A store that fails keeps the last tags.
    await store.close()
    ticks.now += 60
    assert (await labels.labeller())(value("Orders", "us-east-1")) == (("team", "b"),)
    await store.open()


@pytest.fixture
def metric_info():
    (info,) = [m for m in repository_rules().metrics if m.name == METRIC]
    return info
