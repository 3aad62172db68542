"""boto3 answers -> documents (receiver/inventory/describe.py): each field from where DynamoDB
and CloudWatch put it, and what their absence means."""

from __future__ import annotations

from receiver.inventory.describe import (
    DELETED,
    contributor_insights_of,
    deleted_document,
    limits_document,
    point_in_time_recovery_of,
    table_document,
    tags_of,
    throttled_key_rules,
    top_keys_document,
    ttl_of,
)
from receiver.inventory.documents import ceilings
from tests.inventory.kit import ACCOUNT, CREATED, REGION, describe_table


def document(**table):
    return table_document(ACCOUNT, REGION, "t", describe_table("t", **table)["Table"])


def test_a_provisioned_table_keeps_its_capacity_and_has_no_on_demand_maximum():
    doc = document(read=25, write=10, OnDemandThroughput={"MaxReadRequestUnits": 100})
    assert doc["billing_mode"] == "PROVISIONED"
    assert doc["provisioned"] == {"read": 25, "write": 10}
    assert doc["on_demand_max"] is None


def test_a_table_without_a_billing_mode_summary_is_provisioned():
    doc = document(mode=None, read=3, write=4)
    assert doc["billing_mode"] == "PROVISIONED"
    assert doc["provisioned"] == {"read": 3, "write": 4}


def test_an_on_demand_table_reports_zeros_which_mean_no_provisioned_capacity():
    doc = document(mode="PAY_PER_REQUEST", read=0, write=0)
    assert doc["billing_mode"] == "PAY_PER_REQUEST"
    assert doc["provisioned"] is None
    assert doc["on_demand_max"] is None


def test_an_on_demand_maximum_of_minus_one_or_absent_is_none_per_side():
    doc = document(mode="PAY_PER_REQUEST", read=0, write=0,
                   OnDemandThroughput={"MaxReadRequestUnits": 500, "MaxWriteRequestUnits": -1})  # fmt: skip
    assert doc["on_demand_max"] == {"read": 500, "write": None}
    only_write = document(mode="PAY_PER_REQUEST", OnDemandThroughput={"MaxWriteRequestUnits": 20})
    assert only_write["on_demand_max"] == {"read": None, "write": 20}
    neither = document(mode="PAY_PER_REQUEST", OnDemandThroughput={"MaxReadRequestUnits": -1})
    assert neither["on_demand_max"] is None


def test_the_table_fields_come_from_describe_table():
    doc = document(
        TableClassSummary={"TableClass": "STANDARD_INFREQUENT_ACCESS"},
        DeletionProtectionEnabled=True,
        WarmThroughput={"ReadUnitsPerSecond": 12000, "WriteUnitsPerSecond": 4000, "Status": "ACTIVE"},
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        LatestStreamLabel="2024-05-01T12:00:00.000",
        Replicas=[{"RegionName": "eu-west-1", "ReplicaStatus": "ACTIVE"}, {"RegionName": "us-west-2"}],
    )
    assert doc["name"] == "t" and doc["account"] == ACCOUNT and doc["region"] == REGION
    assert doc["arn"] == f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/t"
    assert doc["status"] == "ACTIVE"
    assert doc["created"] == CREATED.timestamp()
    assert doc["table_class"] == "STANDARD_INFREQUENT_ACCESS"
    assert doc["deletion_protection"] is True
    assert (doc["item_count"], doc["size_bytes"]) == (10, 1000)
    assert doc["warm_throughput"] == {"read": 12000, "write": 4000, "status": "ACTIVE"}
    assert doc["stream"] == {"enabled": True, "view_type": "NEW_AND_OLD_IMAGES", "label": "2024-05-01T12:00:00.000"}
    assert doc["replicas"] == [{"region": "eu-west-1", "status": "ACTIVE"}, {"region": "us-west-2", "status": None}]
    assert doc["deleted"] is None and doc["problems"] == {}


def test_what_describe_table_leaves_out_is_none():
    doc = document()
    assert doc["table_class"] is None
    assert doc["deletion_protection"] is None
    assert doc["warm_throughput"] is None
    assert doc["stream"] is None
    assert doc["replicas"] == [] and doc["indexes"] == []


def test_without_describe_table_only_the_name_and_the_other_calls_parts_are_known():
    doc = table_document(
        ACCOUNT, REGION, "t", None, tags={"team": "a"}, problems={"DescribeTable": "AccessDeniedException"}
    )
    assert doc["name"] == "t" and doc["arn"] is None and doc["status"] is None
    assert doc["tags"] == {"team": "a"}
    assert doc["problems"] == {"DescribeTable": "AccessDeniedException"}


def test_indexes_carry_their_own_capacity_and_local_indexes_share_the_table_s():
    doc = document(
        mode="PAY_PER_REQUEST",
        read=0,
        write=0,
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by_user",
                "IndexStatus": "ACTIVE",
                "ItemCount": 4,
                "IndexSizeBytes": 400,
                "ProvisionedThroughput": {"ReadCapacityUnits": 0, "WriteCapacityUnits": 0},
                "OnDemandThroughput": {"MaxReadRequestUnits": 300, "MaxWriteRequestUnits": 100},
                "WarmThroughput": {"ReadUnitsPerSecond": 12000, "WriteUnitsPerSecond": 4000, "Status": "UPDATING"},
            }
        ],
        LocalSecondaryIndexes=[{"IndexName": "by_date", "ItemCount": 2, "IndexSizeBytes": 200}],
    )
    assert doc["indexes"] == [
        {"name": "by_user", "kind": "global", "status": "ACTIVE", "item_count": 4, "size_bytes": 400,
         "provisioned": None, "on_demand_max": {"read": 300, "write": 100},
         "warm_throughput": {"read": 12000, "write": 4000, "status": "UPDATING"}},
        {"name": "by_date", "kind": "local", "status": None, "item_count": 2, "size_bytes": 200,
         "provisioned": None, "on_demand_max": None, "warm_throughput": None},
    ]  # fmt: skip


def test_a_provisioned_index_keeps_its_capacity():
    doc = document(
        GlobalSecondaryIndexes=[
            {"IndexName": "g", "ProvisionedThroughput": {"ReadCapacityUnits": 7, "WriteCapacityUnits": 3}}
        ]
    )
    assert doc["indexes"][0]["provisioned"] == {"read": 7, "write": 3}
    assert doc["indexes"][0]["on_demand_max"] is None


def test_the_documents_ceilings_follow_from_what_describe_wrote():
    doc = document(
        mode="PAY_PER_REQUEST",
        read=0,
        write=0,
        OnDemandThroughput={"MaxReadRequestUnits": 500, "MaxWriteRequestUnits": -1},
    )
    limits = limits_document({"AccountMaxReadCapacityUnits": 80000, "AccountMaxWriteCapacityUnits": 80000,
                              "TableMaxReadCapacityUnits": 40000, "TableMaxWriteCapacityUnits": 40000})  # fmt: skip
    [table] = ceilings(doc, limits)
    assert (table.read, table.read_source) == (500, "on_demand_max")
    assert (table.write, table.write_source) == (40000, "account_table_max")


def test_the_other_calls_answers():
    pages = [[{"Key": "team", "Value": "a"}, {"Key": "env", "Value": ""}], [{"Key": "cost", "Value": "42"}]]
    assert tags_of(pages) == {"team": "a", "env": "", "cost": "42"}
    assert ttl_of({"TimeToLiveDescription": {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires"}}) == {
        "status": "ENABLED",
        "attribute": "expires",
    }
    assert ttl_of({"TimeToLiveDescription": {"TimeToLiveStatus": "DISABLED"}}) == {
        "status": "DISABLED",
        "attribute": None,
    }
    backups = {"ContinuousBackupsDescription": {"ContinuousBackupsStatus": "ENABLED",
                                                "PointInTimeRecoveryDescription": {"PointInTimeRecoveryStatus": "ENABLED"}}}  # fmt: skip
    assert point_in_time_recovery_of(backups) == "ENABLED"
    assert point_in_time_recovery_of({}) is None
    assert contributor_insights_of(
        {"ContributorInsightsStatus": "ENABLED", "ContributorInsightsRuleList": ["a", "b"]}
    ) == {
        "status": "ENABLED",
        "rules": ["a", "b"],
    }
    assert limits_document({"AccountMaxReadCapacityUnits": 1, "TableMaxWriteCapacityUnits": 2}) == {
        "account_max_read": 1,
        "account_max_write": None,
        "table_max_read": None,
        "table_max_write": 2,
    }


def test_only_the_most_throttled_keys_rules_are_read():
    rules = [
        "DynamoDBContributorInsights-PKC-t-1700000000000",
        "DynamoDBContributorInsights-SKT-t-1700000000000",
        "DynamoDBContributorInsights-SKC-t-1700000000000",
        "DynamoDBContributorInsights-PKT-t-1700000000000",
    ]
    assert throttled_key_rules(rules) == [
        "DynamoDBContributorInsights-PKT-t-1700000000000",
        "DynamoDBContributorInsights-SKT-t-1700000000000",
    ]


def test_top_keys_merge_both_rules_most_throttled_first():
    reports = {
        "PKT": {"Contributors": [{"Keys": ["user#1"], "ApproximateAggregateValue": 40.0, "Datapoints": []},
                                 {"Keys": ["user#2"], "ApproximateAggregateValue": 5.0, "Datapoints": []}]},
        "SKT": {"Contributors": [{"Keys": ["user#1", "a"], "ApproximateAggregateValue": 40.0, "Datapoints": []},
                                 {"Keys": ["user#3", "b"], "ApproximateAggregateValue": 50.0, "Datapoints": []}]},
    }  # fmt: skip
    doc = top_keys_document(reports, 100.0, 1000.0)
    assert doc == {
        "start": 100.0,
        "end": 1000.0,
        "rules": ["PKT", "SKT"],
        "keys": [
            {"key": ["user#3", "b"], "value": 50.0},
            {"key": ["user#1"], "value": 40.0},
            {"key": ["user#1", "a"], "value": 40.0},
            {"key": ["user#2"], "value": 5.0},
        ],
    }


def test_a_deleted_document_keeps_its_first_deleted_time():
    gone = deleted_document(document(), 500.0)
    assert gone["status"] == DELETED and gone["deleted"] == 500.0
    assert gone["provisioned"] == {"read": 5, "write": 5}  # what it was stays
    assert deleted_document(gone, 900.0)["deleted"] == 500.0
