"""The receiver stack: network, access key, store, Fargate service, load balancer, certificate, DNS."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Capture, Match

from stacks.gateway import DASHBOARD_PATHS
from stacks.metrics_store import RECEIVER_ACTIONS
from tests.stacks.synth import CERTIFICATE_ARN, DASHBOARD_CIDRS, DOMAIN, RECEIVER, REPO, ZONE_ID, Assembly

SERVICE = "AWS::ECS::Service"
TASK = "AWS::ECS::TaskDefinition"
LISTENER = "AWS::ElasticLoadBalancingV2::Listener"
RULE = "AWS::ElasticLoadBalancingV2::ListenerRule"
SCALING_POLICY = "AWS::ApplicationAutoScaling::ScalingPolicy"


def resources(assembly: Assembly, kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in assembly.template(RECEIVER)["Resources"].items() if v["Type"] == kind}


def only(assembly: Assembly, kind: str) -> dict[str, Any]:
    found = list(resources(assembly, kind).values())
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def container(assembly: Assembly) -> dict[str, Any]:
    definitions = only(assembly, TASK)["Properties"]["ContainerDefinitions"]
    assert len(definitions) == 1
    return definitions[0]


def environment(assembly: Assembly) -> dict[str, Any]:
    return {item["Name"]: item["Value"] for item in container(assembly)["Environment"]}


def logical_id(assembly: Assembly, kind: str) -> str:
    (name,) = resources(assembly, kind)
    return name


# -- network -------------------------------------------------------------------


def test_vpc_spans_two_availability_zones_with_public_subnets_only(default: Assembly) -> None:
    subnets = resources(default, "AWS::EC2::Subnet").values()
    assert [s["Properties"]["MapPublicIpOnLaunch"] for s in subnets] == [True, True]


def test_default_network_has_no_nat_gateway(default: Assembly) -> None:
    default.assertions(RECEIVER).resource_count_is("AWS::EC2::NatGateway", 0)


def test_tasks_run_in_public_subnets_with_public_ips_by_default(default: Assembly) -> None:
    network = only(default, SERVICE)["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]
    public = sorted(resources(default, "AWS::EC2::Subnet"))
    assert network["AssignPublicIp"] == "ENABLED"
    assert sorted(subnet["Ref"] for subnet in network["Subnets"]) == public


def test_nat_gateways_move_tasks_to_private_subnets_without_public_ips(alternative: Assembly) -> None:
    network = only(alternative, SERVICE)["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]
    private = sorted(
        k for k, v in resources(alternative, "AWS::EC2::Subnet").items() if not v["Properties"]["MapPublicIpOnLaunch"]
    )
    alternative.assertions(RECEIVER).resource_count_is("AWS::EC2::NatGateway", 1)
    assert network["AssignPublicIp"] == "DISABLED"
    assert sorted(subnet["Ref"] for subnet in network["Subnets"]) == private


def test_nat_gateways_come_with_s3_and_dynamodb_gateway_endpoints(default: Assembly, alternative: Assembly) -> None:
    def gateways(assembly: Assembly) -> list[str]:
        endpoints = resources(assembly, "AWS::EC2::VPCEndpoint").values()
        assert all(e["Properties"]["VpcEndpointType"] == "Gateway" for e in endpoints)
        return sorted(e["Properties"]["ServiceName"]["Fn::Join"][1][-1] for e in endpoints)

    assert (gateways(default), gateways(alternative)) == ([], [".dynamodb", ".s3"])


def test_vpc_flow_logs_go_to_s3(default: Assembly) -> None:
    default.assertions(RECEIVER).has_resource_properties(
        "AWS::EC2::FlowLog", {"LogDestinationType": "s3", "TrafficType": "ALL", "ResourceType": "VPC"}
    )


def test_default_security_group_is_stripped(default: Assembly) -> None:
    default.assertions(RECEIVER).resource_count_is("Custom::VpcRestrictDefaultSG", 1)


# -- access key ----------------------------------------------------------------


def test_access_key_is_generated_as_api_key_json(default: Assembly) -> None:
    default.assertions(RECEIVER).has_resource_properties(
        "AWS::SecretsManager::Secret",
        {
            "GenerateSecretString": {
                "SecretStringTemplate": "{}",
                "GenerateStringKey": "api_key",
                "PasswordLength": 64,
                "ExcludePunctuation": True,
                "IncludeSpace": False,
            }
        },
    )


def test_access_key_reaches_the_receiver_as_a_secret(default: Assembly) -> None:
    secret = logical_id(default, "AWS::SecretsManager::Secret")
    assert container(default)["Secrets"] == [
        {"Name": "RECEIVER_ACCESS_KEYS", "ValueFrom": {"Fn::Join": ["", [{"Ref": secret}, ":api_key::"]]}}
    ]


# -- metrics store -------------------------------------------------------------


def test_store_table_is_keyed_pk_and_sk_strings_on_demand(default: Assembly) -> None:
    default.assertions(RECEIVER).has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            "AttributeDefinitions": [
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            "BillingMode": "PAY_PER_REQUEST",
        },
    )


def test_store_items_expire_by_expires_at(default: Assembly) -> None:
    default.assertions(RECEIVER).has_resource_properties(
        "AWS::DynamoDB::Table", {"TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True}}
    )


def test_receiver_is_told_the_store_table_and_region(default: Assembly) -> None:
    table = logical_id(default, "AWS::DynamoDB::Table")
    assert environment(default)["RECEIVER_STORE"] == {
        "Fn::Join": ["", ["dynamodb://", {"Ref": table}, "?region=us-east-1"]]
    }


def test_task_role_may_only_call_the_store_actions_on_the_store_table(default: Assembly) -> None:
    template = default.template(RECEIVER)
    task_role = only(default, TASK)["Properties"]["TaskRoleArn"]["Fn::GetAtt"][0]
    table = logical_id(default, "AWS::DynamoDB::Table")
    topic = logical_id(default, "AWS::SNS::Topic")
    # Besides the table inventory's read-only policy of its own (test_inventory.py).
    policies = [
        p
        for name, p in resources(default, "AWS::IAM::Policy").items()
        if {"Ref": task_role} in p["Properties"]["Roles"] and not name.startswith("ReceiverInventoryPolicy")
    ]
    assert len(policies) == 1
    key = logical_id(default, "AWS::KMS::Key")
    # The store's actions on its table, and publishing alarm notifications (receiver/alarms) to the
    # topic under its key.
    assert policies[0]["Properties"]["PolicyDocument"]["Statement"] == [
        {"Action": sorted(RECEIVER_ACTIONS), "Effect": "Allow", "Resource": {"Fn::GetAtt": [table, "Arn"]}},
        {"Action": "sns:Publish", "Effect": "Allow", "Resource": {"Ref": topic}},
        {"Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Effect": "Allow", "Resource": {"Fn::GetAtt": [key, "Arn"]}},
    ]
    assert "ManagedPolicyArns" not in template["Resources"][task_role]["Properties"]


# The boto3 client methods of each granted action.
CLIENT_CALLS = {
    "GetItem": "get_item",
    "PutItem": "put_item",
    "UpdateItem": "update_item",
    "DeleteItem": "delete_item",
    "BatchWriteItem": "batch_write_item",
    "BatchGetItem": "batch_get_item",
    "Query": "query",
    "DescribeTable": "describe_table",
}


def store_source() -> str:
    return "\n".join(path.read_text() for path in sorted((REPO / "receiver" / "store" / "dynamodb").glob("*.py")))


def test_store_actions_are_exactly_what_the_receiver_calls() -> None:
    assert sorted(RECEIVER_ACTIONS) == sorted(f"dynamodb:{a}" for a in CLIENT_CALLS)
    source = store_source()
    assert [a for a, call in CLIENT_CALLS.items() if f"client.{call}" not in source] == []


def test_the_store_makes_no_transactions_so_it_needs_no_condition_check() -> None:
    source = store_source()
    assert "transact_write_items" not in source and "ConditionCheck" not in source
    assert "dynamodb:ConditionCheckItem" not in RECEIVER_ACTIONS


# -- service -------------------------------------------------------------------


def test_image_is_built_from_receiver_dockerfile_at_the_repository_root(default: Assembly) -> None:
    (image,) = default.assets(RECEIVER)["dockerImages"].values()
    assert image["source"]["dockerFile"] == "receiver/Dockerfile"
    assert image["source"]["platform"] == "linux/amd64"


def test_arm64_runs_an_arm64_image_on_arm64_fargate(alternative: Assembly) -> None:
    (image,) = alternative.assets(RECEIVER)["dockerImages"].values()
    assert image["source"]["platform"] == "linux/arm64"
    assert only(alternative, TASK)["Properties"]["RuntimePlatform"] == {
        "CpuArchitecture": "ARM64",
        "OperatingSystemFamily": "LINUX",
    }


def test_task_size_defaults_to_half_a_vcpu_and_1_gib(default: Assembly) -> None:
    properties = only(default, TASK)["Properties"]
    assert (properties["Cpu"], properties["Memory"], properties["RequiresCompatibilities"]) == (
        "512",
        "1024",
        ["FARGATE"],
    )


def test_service_runs_at_least_two_tasks(default: Assembly) -> None:
    default.assertions(RECEIVER).has_resource_properties(SERVICE, {"DesiredCount": 2, "LaunchType": "FARGATE"})
    default.assertions(RECEIVER).has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalableTarget", {"MinCapacity": 2, "MaxCapacity": 4}
    )


def test_task_counts_follow_the_settings(alternative: Assembly) -> None:
    alternative.assertions(RECEIVER).has_resource_properties(SERVICE, {"DesiredCount": 3})
    alternative.assertions(RECEIVER).has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalableTarget", {"MinCapacity": 3, "MaxCapacity": 6}
    )


def test_deployments_roll_back_through_the_circuit_breaker(default: Assembly) -> None:
    default.assertions(RECEIVER).has_resource_properties(
        SERVICE,
        {
            "DeploymentConfiguration": {
                "DeploymentCircuitBreaker": {"Enable": True, "Rollback": True},
                "MinimumHealthyPercent": 100,
                "MaximumPercent": 200,
            }
        },
    )


def test_service_scales_on_cpu(default: Assembly) -> None:
    default.assertions(RECEIVER).has_resource_properties(
        SCALING_POLICY,
        {
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": Match.object_like(
                {
                    "PredefinedMetricSpecification": {"PredefinedMetricType": "ECSServiceAverageCPUUtilization"},
                    "TargetValue": 60,
                }
            ),
        },
    )


def test_service_scales_on_requests_per_target(default: Assembly) -> None:
    default.assertions(RECEIVER).has_resource_properties(
        SCALING_POLICY,
        {
            "TargetTrackingScalingPolicyConfiguration": Match.object_like(
                {
                    "PredefinedMetricSpecification": Match.object_like(
                        {"PredefinedMetricType": "ALBRequestCountPerTarget"}
                    ),
                    "TargetValue": 120,
                }
            )
        },
    )


def test_container_health_check_calls_healthz(default: Assembly) -> None:
    check = container(default)["HealthCheck"]
    assert check["Command"][:3] == ["CMD", "python", "-c"]
    assert "/healthz" in check["Command"][3]


def test_stop_timeout_outlasts_the_receivers_shutdown_deadline(default: Assembly) -> None:
    assert (environment(default)["RECEIVER_SHUTDOWN_TIMEOUT"], container(default)["StopTimeout"]) == ("60", 90)


def test_stop_timeout_follows_the_shutdown_setting(alternative: Assembly) -> None:
    assert (environment(alternative)["RECEIVER_SHUTDOWN_TIMEOUT"], container(alternative)["StopTimeout"]) == ("45", 75)


def test_receiver_listens_on_12801_and_logs_json(default: Assembly) -> None:
    env = environment(default)
    assert (env["RECEIVER_PORT"], env["RECEIVER_LOG_FORMAT"]) == ("12801", "json")
    assert container(default)["PortMappings"] == [{"ContainerPort": 12801, "Protocol": "tcp"}]


def test_inflight_budget_is_a_quarter_of_task_memory(alternative: Assembly) -> None:
    assert environment(alternative)["RECEIVER_MAX_INFLIGHT_MIB"] == "512"


def test_container_root_file_system_is_read_only(default: Assembly) -> None:
    assert container(default)["ReadonlyRootFilesystem"] is True


def test_logs_go_to_a_log_group_with_retention(default: Assembly) -> None:
    log_config = container(default)["LogConfiguration"]
    group = log_config["Options"]["awslogs-group"]["Ref"]
    assert log_config["LogDriver"] == "awslogs"
    assert default.template(RECEIVER)["Resources"][group]["Properties"]["RetentionInDays"] == 30


def test_log_retention_follows_the_setting(alternative: Assembly) -> None:
    group = container(alternative)["LogConfiguration"]["Options"]["awslogs-group"]["Ref"]
    assert alternative.template(RECEIVER)["Resources"][group]["Properties"]["RetentionInDays"] == 90


def test_container_insights_is_off_by_default(default: Assembly) -> None:
    default.assertions(RECEIVER).has_resource_properties(
        "AWS::ECS::Cluster", {"ClusterSettings": [{"Name": "containerInsights", "Value": "disabled"}]}
    )


def test_container_insights_setting_turns_it_on(alternative: Assembly) -> None:
    alternative.assertions(RECEIVER).has_resource_properties(
        "AWS::ECS::Cluster", {"ClusterSettings": [{"Name": "containerInsights", "Value": "enabled"}]}
    )


def test_tasks_accept_only_the_load_balancer_on_the_receiver_port(default: Assembly) -> None:
    tasks_sg = only(default, SERVICE)["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]["SecurityGroups"][0]
    task_group = tasks_sg["Fn::GetAtt"][0]
    ingress = [
        r["Properties"]
        for r in resources(default, "AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"]["GroupId"] == tasks_sg
    ]
    alb_group = only(default, "AWS::ElasticLoadBalancingV2::LoadBalancer")["Properties"]["SecurityGroups"][0]
    assert [(i["FromPort"], i["ToPort"], i["SourceSecurityGroupId"]) for i in ingress] == [(12801, 12801, alb_group)]
    assert "SecurityGroupIngress" not in default.template(RECEIVER)["Resources"][task_group]["Properties"]


def test_tasks_may_only_call_out_over_https(default: Assembly) -> None:
    tasks_sg = only(default, SERVICE)["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]["SecurityGroups"][0]
    egress = default.template(RECEIVER)["Resources"][tasks_sg["Fn::GetAtt"][0]]["Properties"]["SecurityGroupEgress"]
    assert [(e["IpProtocol"], e["FromPort"], e["ToPort"]) for e in egress] == [("tcp", 443, 443)]


# -- load balancer -------------------------------------------------------------


def test_load_balancer_is_internet_facing_and_drops_invalid_headers(default: Assembly) -> None:
    default.assertions(RECEIVER).has_resource_properties(
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
        {
            "Scheme": "internet-facing",
            "LoadBalancerAttributes": Match.array_with(
                [{"Key": "routing.http.drop_invalid_header_fields.enabled", "Value": "true"}]
            ),
        },
    )


def test_only_listener_is_https_on_443_with_a_tls12_tls13_policy(default: Assembly) -> None:
    listener = only(default, LISTENER)["Properties"]
    assert (listener["Port"], listener["Protocol"]) == (443, "HTTPS")
    assert listener["SslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09"


def test_only_port_443_is_open_to_the_internet(default: Assembly) -> None:
    group = only(default, "AWS::ElasticLoadBalancingV2::LoadBalancer")["Properties"]["SecurityGroups"][0]["Fn::GetAtt"][
        0
    ]
    ingress = default.template(RECEIVER)["Resources"][group]["Properties"]["SecurityGroupIngress"]
    assert [(i["CidrIp"], i["FromPort"], i["ToPort"]) for i in ingress] == [("0.0.0.0/0", 443, 443)]


def test_everything_else_gets_a_fixed_json_404(default: Assembly) -> None:
    assert only(default, LISTENER)["Properties"]["DefaultActions"] == [
        {
            "Type": "fixed-response",
            "FixedResponseConfig": {
                "StatusCode": "404",
                "ContentType": "application/json",
                "MessageBody": json.dumps({"error": "not found"}),
            },
        }
    ]


def test_only_the_firehose_path_is_forwarded_by_default(default: Assembly) -> None:
    rules = [r["Properties"] for r in resources(default, RULE).values()]
    target_group = logical_id(default, "AWS::ElasticLoadBalancingV2::TargetGroup")
    assert [(r["Conditions"], r["Actions"]) for r in rules] == [
        (
            [{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/aws/firehose/metrics"]}}],
            [{"Type": "forward", "TargetGroupArn": {"Ref": target_group}}],
        )
    ]


def test_dashboard_paths_open_to_each_allowed_network_only(alternative: Assembly) -> None:
    rules = [r["Properties"] for r in resources(alternative, RULE).values()]
    dashboard = sorted(
        (r["Priority"], r["Conditions"])
        for r in rules
        if r["Conditions"][0]["PathPatternConfig"]["Values"] != ["/aws/firehose/metrics"]
    )
    assert dashboard == [
        (
            100 + index,
            [
                {"Field": "path-pattern", "PathPatternConfig": {"Values": list(DASHBOARD_PATHS)}},
                {"Field": "source-ip", "SourceIpConfig": {"Values": [cidr]}},
            ],
        )
        for index, cidr in enumerate(DASHBOARD_CIDRS)
    ]


def test_dashboard_paths_cover_page_static_files_api_and_metrics() -> None:
    assert DASHBOARD_PATHS == ("/", "/static/*", "/api/*", "/metrics")


def test_target_group_checks_healthz_and_drains_for_the_shutdown_deadline(default: Assembly) -> None:
    default.assertions(RECEIVER).has_resource_properties(
        "AWS::ElasticLoadBalancingV2::TargetGroup",
        {
            "Port": 12801,
            "Protocol": "HTTP",
            "TargetType": "ip",
            "HealthCheckPath": "/healthz",
            "Matcher": {"HttpCode": "200"},
            "TargetGroupAttributes": Match.array_with([{"Key": "deregistration_delay.timeout_seconds", "Value": "60"}]),
        },
    )


def test_access_logs_go_to_the_logs_bucket(default: Assembly) -> None:
    bucket = Capture()
    default.assertions(RECEIVER).has_resource_properties(
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
        {
            "LoadBalancerAttributes": Match.array_with(
                [
                    {"Key": "access_logs.s3.enabled", "Value": "true"},
                    {"Key": "access_logs.s3.bucket", "Value": {"Ref": bucket}},
                ]
            )
        },
    )
    assert default.template(RECEIVER)["Resources"][bucket.as_string()]["Type"] == "AWS::S3::Bucket"


# -- certificate and DNS -------------------------------------------------------


def test_certificate_is_dns_validated_in_the_hosted_zone(default: Assembly) -> None:
    default.assertions(RECEIVER).has_resource_properties(
        "AWS::CertificateManager::Certificate",
        {
            "DomainName": DOMAIN,
            "ValidationMethod": "DNS",
            "DomainValidationOptions": [{"DomainName": DOMAIN, "HostedZoneId": ZONE_ID}],
        },
    )


def test_listener_serves_the_validated_certificate(default: Assembly) -> None:
    certificate = logical_id(default, "AWS::CertificateManager::Certificate")
    assert only(default, LISTENER)["Properties"]["Certificates"] == [{"CertificateArn": {"Ref": certificate}}]


def test_alias_record_points_the_domain_at_the_load_balancer(default: Assembly) -> None:
    load_balancer = logical_id(default, "AWS::ElasticLoadBalancingV2::LoadBalancer")
    default.assertions(RECEIVER).has_resource_properties(
        "AWS::Route53::RecordSet",
        {
            "Name": f"{DOMAIN}.",
            "Type": "A",
            "HostedZoneId": ZONE_ID,
            "AliasTarget": {
                "DNSName": {"Fn::Join": ["", ["dualstack.", {"Fn::GetAtt": [load_balancer, "DNSName"]}]]},
                "HostedZoneId": {"Fn::GetAtt": [load_balancer, "CanonicalHostedZoneID"]},
            },
        },
    )


def test_imported_certificate_replaces_the_issued_one(alternative: Assembly) -> None:
    alternative.assertions(RECEIVER).resource_count_is("AWS::CertificateManager::Certificate", 0)
    assert only(alternative, LISTENER)["Properties"]["Certificates"] == [{"CertificateArn": CERTIFICATE_ARN}]


def test_no_dns_record_without_a_hosted_zone(alternative: Assembly) -> None:
    alternative.assertions(RECEIVER).resource_count_is("AWS::Route53::RecordSet", 0)


# -- outputs -------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "EndpointUrl",
        "AccessKeySecretName",
        "MetricsTableName",
        "LoadBalancerDnsName",
        "DashboardUrl",
        "ClusterName",
        "ServiceName",
    ],
)
def test_stack_outputs(default: Assembly, name: str) -> None:
    assert name in default.template(RECEIVER)["Outputs"]


def test_cluster_and_service_names_are_outputs_for_the_rotation_steps(default: Assembly) -> None:
    outputs = default.template(RECEIVER)["Outputs"]
    service = logical_id(default, SERVICE)
    assert outputs["ClusterName"]["Value"] == {"Ref": logical_id(default, "AWS::ECS::Cluster")}
    assert outputs["ServiceName"]["Value"] == {"Fn::GetAtt": [service, "Name"]}


def test_endpoint_url_output_is_the_firehose_url(default: Assembly) -> None:
    default.assertions(RECEIVER).has_output("EndpointUrl", {"Value": f"https://{DOMAIN}/aws/firehose/metrics"})


def test_dashboard_output_says_it_is_closed_by_default(default: Assembly) -> None:
    default.assertions(RECEIVER).has_output("DashboardUrl", {"Value": "not exposed"})


def test_dashboard_output_is_the_url_when_networks_are_allowed(alternative: Assembly) -> None:
    alternative.assertions(RECEIVER).has_output("DashboardUrl", {"Value": f"https://{DOMAIN}/"})
