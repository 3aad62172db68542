"""The monitored table (GameScores) of the reference setup."""

from __future__ import annotations

from aws_cdk.assertions import Match

from tests.stacks.synth import DEMO_TABLE, Assembly

TABLE = "AWS::DynamoDB::Table"


def test_table_is_gamescores_keyed_by_user_and_game(default: Assembly) -> None:
    default.assertions(DEMO_TABLE).has_resource_properties(
        TABLE,
        {
            "TableName": "GameScores",
            "KeySchema": [
                {"AttributeName": "UserId", "KeyType": "HASH"},
                {"AttributeName": "GameTitle", "KeyType": "RANGE"},
            ],
        },
    )


def test_attributes_are_typed_strings_and_a_numeric_top_score(default: Assembly) -> None:
    default.assertions(DEMO_TABLE).has_resource_properties(
        TABLE,
        {
            "AttributeDefinitions": Match.array_equals(
                [
                    {"AttributeName": "UserId", "AttributeType": "S"},
                    {"AttributeName": "GameTitle", "AttributeType": "S"},
                    {"AttributeName": "TopScore", "AttributeType": "N"},
                ]
            )
        },
    )


def test_table_is_provisioned_at_20_reads_and_20_writes(default: Assembly) -> None:
    default.assertions(DEMO_TABLE).has_resource_properties(
        TABLE,
        {
            "BillingMode": Match.absent(),  # provisioned is CloudFormation's default mode
            "ProvisionedThroughput": {"ReadCapacityUnits": 20, "WriteCapacityUnits": 20},
        },
    )


def test_items_expire_by_time_to_exist(default: Assembly) -> None:
    default.assertions(DEMO_TABLE).has_resource_properties(
        TABLE, {"TimeToLiveSpecification": {"AttributeName": "TimeToExist", "Enabled": True}}
    )


def test_game_title_index_includes_user_id_at_10_and_10(default: Assembly) -> None:
    default.assertions(DEMO_TABLE).has_resource_properties(
        TABLE,
        {
            "GlobalSecondaryIndexes": [
                {
                    "IndexName": "GameTitleIndex",
                    "KeySchema": [
                        {"AttributeName": "GameTitle", "KeyType": "HASH"},
                        {"AttributeName": "TopScore", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["UserId"]},
                    "ProvisionedThroughput": {"ReadCapacityUnits": 10, "WriteCapacityUnits": 10},
                }
            ]
        },
    )


def test_point_in_time_recovery_is_on(default: Assembly) -> None:
    default.assertions(DEMO_TABLE).has_resource_properties(
        TABLE, {"PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True}}
    )


def test_table_is_encrypted_with_the_aws_managed_key(default: Assembly) -> None:
    default.assertions(DEMO_TABLE).has_resource_properties(TABLE, {"SSESpecification": {"SSEEnabled": True}})


def test_table_is_removed_on_destroy(default: Assembly) -> None:
    default.assertions(DEMO_TABLE).has_resource(TABLE, {"DeletionPolicy": "Delete", "UpdateReplacePolicy": "Delete"})


def test_create_demo_table_false_keeps_the_stack_empty(alternative: Assembly) -> None:
    # Kept in the app, so deploying with createDemoTable=false deletes a table deployed before, and
    # `cdk destroy --all` still removes the stack: nothing is orphaned.
    resources = alternative.template(DEMO_TABLE)["Resources"]
    assert [r["Type"] for r in resources.values()] == ["AWS::CloudFormation::WaitConditionHandle"]
    assert "Outputs" not in alternative.template(DEMO_TABLE)


def test_the_demo_table_stack_is_in_every_app(default: Assembly, alternative: Assembly, stream_only: Assembly) -> None:
    assert [a.has_stack(DEMO_TABLE) for a in (default, alternative, stream_only)] == [True, True, True]
