"""Everything that receives: network, access key, store, Fargate service, load balancer, DNS."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from stacks.alarm_topic import AlarmTopic
from stacks.alarms import receiver_alarms
from stacks.buckets import private_bucket
from stacks.gateway import Gateway
from stacks.log_retention import retention
from stacks.metrics_store import MetricsStore
from stacks.network import Network
from stacks.service import ReceiverService, TaskSize
from stacks.settings import Settings


class ReceiverStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, settings: Settings, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)

        # ALB access logs and VPC flow logs.
        self.logs_bucket = private_bucket(self, "LogsBucket", expiration_days=settings.log_retention_days)
        network = Network(self, "Network", nat_gateways=settings.nat_gateways, flow_logs=self.logs_bucket)

        # Firehose reads {"api_key": ...} (its Secrets Manager format for HTTP endpoints); the
        # receiver gets the same value. Letters and digits only: it travels in an HTTP header and in
        # the comma-separated RECEIVER_ACCESS_KEYS.
        self.access_key = secretsmanager.Secret(
            self,
            "AccessKey",
            description="Firehose access key of the DynamoDB metrics receiver",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                secret_string_template="{}",
                generate_string_key="api_key",
                password_length=64,
                exclude_punctuation=True,
                include_space=False,
            ),
        )

        self.store = MetricsStore(self, "MetricsStore", retain=settings.retain_metrics)
        self.alarm_topic = AlarmTopic(self, "AlarmTopic")

        self.receiver = ReceiverService(
            self,
            "Receiver",
            vpc=network.vpc,
            subnets=network.task_subnets,
            assign_public_ip=network.tasks_need_public_ip,
            access_key=self.access_key,
            store=self.store,
            region=settings.region,
            size=TaskSize(settings.task_cpu, settings.task_memory_mib, settings.cpu_architecture),
            min_tasks=settings.min_tasks,
            max_tasks=settings.max_tasks,
            shutdown_timeout_s=settings.shutdown_timeout_seconds,
            log_retention=retention(settings.log_retention_days),
            container_insights=settings.container_insights,
            alarm_topic=self.alarm_topic,
            inventory=settings.inventory,
            image=settings.receiver_image,
        )

        zone = None
        if settings.hosted_zone_id is not None and settings.hosted_zone_name is not None:
            # Attributes, not a lookup: synthesis needs no AWS credentials.
            zone = route53.HostedZone.from_hosted_zone_attributes(
                self, "Zone", hosted_zone_id=settings.hosted_zone_id, zone_name=settings.hosted_zone_name
            )
        self.gateway = Gateway(
            self,
            "Gateway",
            vpc=network.vpc,
            subnets=network.load_balancer_subnets,
            receiver=self.receiver,
            domain_name=settings.domain_name,
            hosted_zone=zone,
            certificate_arn=settings.certificate_arn,
            dashboard_cidrs=settings.dashboard_allowed_cidrs,
            access_logs=self.logs_bucket,
            deregistration_delay_s=settings.shutdown_timeout_seconds,
        )

        self.alarms = receiver_alarms(
            self,
            topic=self.alarm_topic.topic,
            settings=settings.alarms,
            target_group=self.gateway.target_group,
            cluster_name=self.receiver.cluster.cluster_name,
            service_name=self.receiver.service.service_name,
            log_group_name=self.receiver.log_group.log_group_name,
        )

        CfnOutput(self, "EndpointUrl", value=settings.endpoint_url, description="Firehose delivers here")
        CfnOutput(
            self,
            "AccessKeySecretName",
            value=self.access_key.secret_name,
            description='Secrets Manager secret holding the Firehose access key as {"api_key": ...}',
        )
        CfnOutput(self, "MetricsTableName", value=self.store.table.table_name, description="The receiver's store")
        CfnOutput(
            self,
            "AlarmTopicArn",
            value=self.alarm_topic.topic.topic_arn,
            description="Alarm notifications are published here: subscribe e-mail, chat or a queue",
        )
        CfnOutput(
            self,
            "ClusterName",
            value=self.receiver.cluster.cluster_name,
            description="The receiver's ECS cluster (aws ecs update-service --cluster ...)",
        )
        CfnOutput(
            self,
            "ServiceName",
            value=self.receiver.service.service_name,
            description="The receiver's ECS service (aws ecs update-service --service ... --force-new-deployment)",
        )
        CfnOutput(
            self,
            "ReceiverTaskRoleArn",
            value=self.receiver.task_role.role_arn,
            description="The receiver's task role: the principal that roles in inventoryRoles must trust",
        )
        CfnOutput(
            self,
            "LoadBalancerDnsName",
            value=self.gateway.load_balancer.load_balancer_dns_name,
            description=(
                "Alias target of the Route 53 record"
                if zone is not None
                else f"Point {settings.domain_name} at this name (CNAME) in your DNS"
            ),
        )
        if settings.dashboard_allowed_cidrs:
            CfnOutput(
                self,
                "DashboardUrl",
                value=f"https://{settings.domain_name}/",
                description="Open from " + ", ".join(settings.dashboard_allowed_cidrs),
            )
        else:
            CfnOutput(
                self,
                "DashboardUrl",
                value="not exposed",
                description="Deploy with -c dashboardAllowedCidrs='[\"<your network>/32\"]' to open it",
            )
