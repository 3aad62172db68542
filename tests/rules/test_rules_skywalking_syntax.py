"""Rule files written in SkyWalking's syntax (our own, using every construct of its
aws-dynamodb, aws-s3 and aws-gateway files) load, name SkyWalking's entities and, on one
sample per metric, give that sample's value."""

from __future__ import annotations

import pytest

from receiver.rules import load_rules
from tests.rules.rulekit import ACCOUNT, DATA, T0, sample

SHOP = f"shop::{ACCOUNT}"


@pytest.fixture(scope="module")
def rules():
    return load_rules(DATA / "skywalking_syntax")


def one(rules, metric, *samples):
    """The single value ``metric`` gets from ``samples``, with its entity."""
    found = [d for d in rules.evaluate(samples) if d.metric == metric]
    assert len(found) == 1, found
    return found[0]


def test_they_load_and_name_the_metrics_metricprefix_underscore_name(rules):
    assert [m.name for m in rules.metrics] == [
        "shop_api_endpoint_errors",
        "shop_api_endpoint_hit_rate",
        "shop_api_endpoint_calls",
        "shop_api_service_hit_rate",
        "shop_api_service_calls",
        "shop_bucket_4xx",
        "shop_bucket_request_latency",
        "shop_endpoint_checkout_latency",
        "shop_endpoint_browse_latency",
        "shop_endpoint_orders",
        "shop_instance_stock",
        "shop_orders",
    ]


def test_exp_prefix_and_suffix_compose_as_skywalking_pastes_them(rules):
    rule = next(r for r in rules.rules if r.metric == "shop_endpoint_checkout_latency")
    assert rule.text == (
        "(((amazonaws_com_Shop_Orders_Latency."
        "tag({tags -> tags.host_name = 'shop::' + tags.cloud_account_id}))."
        "tagMatch('Operation','Pay|Confirm'))).service(['host_name'], Layer.SHOP)"
        ".endpoint(['host_name'], ['Cart'], Layer.SHOP)"
    )


def test_exp_prefix_wraps_a_dotless_expression_whole(rules):
    rule = next(r for r in rules.rules if r.metric == "shop_orders")
    assert rule.text.startswith("((amazonaws_com_Shop_Orders_Orders.tag({tags ->")


def test_endpoint_from_prefix_tag_and_chained_scopes(rules):
    value = one(rules, "shop_endpoint_orders", sample("Orders", 7.0, 1, namespace="Shop/Orders", Cart="web"))
    assert (value.scope, value.service, value.endpoint, value.layer, value.value) == (
        "endpoint",
        SHOP,
        "web",
        "SHOP",
        7.0,
    )
    assert value.time_ms == T0


def test_quantile_family_on_one_datapoint_gives_its_value(rules):
    value = one(
        rules,
        "shop_endpoint_checkout_latency",
        sample("Latency", 4.5, 1, namespace="Shop/Orders", Cart="web", Operation="Pay", stats=(("p99", 4.5),)),
    )
    assert value.value == 4.5


def test_tag_equal_selects_one_operation(rules):
    samples = [
        sample("Latency", 3.0, 1, namespace="Shop/Orders", Cart="web", Operation="Browse"),
        sample("Latency", 9.0, 1, namespace="Shop/Orders", Cart="web", Operation="Pay"),
    ]
    assert one(rules, "shop_endpoint_browse_latency", *samples).value == 3.0


def test_service_scope(rules):
    value = one(rules, "shop_orders", sample("Orders", 7.0, 1, namespace="Shop/Orders", Cart="web"))
    assert (value.scope, value.service, value.endpoint) == ("service", SHOP, None)


def test_instance_scope_with_avg(rules):
    value = one(rules, "shop_instance_stock", sample("Stock", 12.0, 1, namespace="Shop/Orders", Cart="web"))
    assert (value.scope, value.service, value.instance, value.endpoint, value.value) == (
        "instance",
        SHOP,
        "web",
        None,
        12.0,
    )


def test_the_filter_keeps_other_namespaces_out(rules):
    found = rules.evaluate([sample("Orders", 7.0, 1, namespace="Shop/Other", Cart="web")])
    assert found == []


def test_ternary_tag_names_the_service_by_api_id(rules):
    value = one(
        rules,
        "shop_api_endpoint_calls",
        sample("Calls", 5.0, 1, namespace="Shop/Api", ApiId="abc123", Stage="prod", Method="GET", Resource="/pets"),
    )
    assert (value.service, value.endpoint, value.value) == ("shop-api::prod:abc123", "GET /pets", 5.0)


def test_ternary_tag_falls_back_to_api_name(rules):
    value = one(
        rules,
        "shop_api_endpoint_calls",
        sample("Calls", 5.0, 1, namespace="Shop/Api", ApiName="Pets", Stage="prod", Method="GET", Resource="/pets"),
    )
    assert value.service == "shop-api::prod:Pets"


def test_filter_truthiness_needs_every_label(rules):
    # No Stage: '(ApiId || ApiName) && Stage' is false, so nothing is measured.
    assert (
        rules.evaluate([sample("Calls", 5.0, 1, namespace="Shop/Api", ApiId="abc123", Method="GET", Resource="/pets")])
        == []
    )


def test_negated_filter_keeps_stage_level_series_for_the_service(rules):
    stage_level = sample("Calls", 5.0, 1, namespace="Shop/Api", ApiId="abc123", Stage="prod")
    per_method = sample(
        "Calls", 50.0, 1, namespace="Shop/Api", ApiId="abc123", Stage="prod", Method="GET", Resource="/pets"
    )
    assert one(rules, "shop_api_service_calls", stage_level, per_method).value == 5.0


def test_a_name_defined_twice_takes_values_from_either_rule(rules):
    api = {"namespace": "Shop/Api", "ApiId": "abc123", "Stage": "prod", "Method": "GET", "Resource": "/"}
    assert one(rules, "shop_api_endpoint_errors", sample("Errors", 2.0, 1, **api)).value == 2.0
    assert one(rules, "shop_api_endpoint_errors", sample("Faults", 3.0, 1, **api)).value == 3.0


def test_div_of_sum_by_count_and_multiply(rules):
    api = {"namespace": "Shop/Api", "ApiId": "abc123", "Stage": "prod"}
    assert one(rules, "shop_api_service_hit_rate", sample("Hits", 3.0, 4, **api)).value == pytest.approx(100 * 3.0 / 4)


def test_bucket_service_from_suffix_tag(rules):
    value = one(
        rules,
        "shop_bucket_request_latency",
        sample("TotalRequestLatency", 30.0, 3, namespace="Shop/Bucket", BucketName="photos", FilterId="all"),
    )
    assert (value.service, value.value) == ("shop-bucket::photos", 10.0)


def test_downsampling_is_recorded_per_metric(rules):
    assert rules.metric("shop_bucket_4xx").downsampling == "SUM"
    assert rules.metric("shop_bucket_request_latency").downsampling == "AVG"  # the default
