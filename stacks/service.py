"""The receiver on ECS Fargate: image, task, service, scaling."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aws_cdk import Duration, RemovalPolicy, Size
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from stacks.alarm_topic import AlarmTopic
from stacks.inventory import inventory_environment, inventory_policy
from stacks.metrics_store import MetricsStore
from stacks.settings import InventoryConfig, ReceiverImage

REPOSITORY = Path(__file__).resolve().parent.parent
CONTAINER_NAME = "receiver"
CONTAINER_PORT = 12801
HEALTH_PATH = "/healthz"
# The image has no curl; Python is there anyway. urlopen raises (exit 1) on refusal or non-2xx.
HEALTH_COMMAND = (
    "import os, urllib.request; urllib.request.urlopen("
    f"'http://127.0.0.1:%s{HEALTH_PATH}' % os.environ.get('RECEIVER_PORT', '{CONTAINER_PORT}'), timeout=3)"
)
# Seconds between the receiver's shutdown deadline and ECS's SIGKILL, for closing the store.
STOP_MARGIN_S = 30
CPU_TARGET_PERCENT = 60
# A delivery is up to bufferingSizeMiB of records to decode and write: heavy requests, so a low
# target. Two a second per task is far above a DynamoDB stream's usual few per minute.
REQUESTS_PER_TARGET_PER_MINUTE = 120


@dataclass(frozen=True, slots=True)
class TaskSize:
    cpu: int
    memory_mib: int
    architecture: str  # "X86_64" or "ARM64"


class ReceiverService(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        assign_public_ip: bool,
        access_key: secretsmanager.ISecret,
        store: MetricsStore,
        region: str,
        size: TaskSize,
        min_tasks: int,
        max_tasks: int,
        shutdown_timeout_s: int,
        log_retention: logs.RetentionDays,
        container_insights: bool,
        alarm_topic: AlarmTopic | None = None,
        inventory: InventoryConfig | None = None,
        image: ReceiverImage | None = None,
    ) -> None:
        super().__init__(scope, construct_id)

        self.container_insights = container_insights
        self.cluster = ecs.Cluster(
            self,
            "Cluster",
            vpc=vpc,
            container_insights_v2=(
                ecs.ContainerInsights.ENABLED if container_insights else ecs.ContainerInsights.DISABLED
            ),
        )

        arm = size.architecture == "ARM64"
        task = ecs.FargateTaskDefinition(
            self,
            "Task",
            cpu=size.cpu,
            memory_limit_mib=size.memory_mib,
            runtime_platform=ecs.RuntimePlatform(
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
                cpu_architecture=ecs.CpuArchitecture.ARM64 if arm else ecs.CpuArchitecture.X86_64,
            ),
        )
        store.grant_receiver(task.task_role)
        if alarm_topic is not None:
            # Publish, and the topic key's data-key actions publishing needs: nothing wider.
            alarm_topic.grant_publish(task.task_role)
        alarm_environment = (
            {"RECEIVER_ALARM_SNS_TOPIC_ARN": alarm_topic.topic.topic_arn} if alarm_topic is not None else {}
        )
        self.task_role = task.task_role
        # The table inventory's read-only grant, a policy of its own; None when the inventory is off.
        self.inventory_policy = (
            inventory_policy(self, "InventoryPolicy", task.task_role, inventory) if inventory is not None else None
        )

        self.log_group = logs.LogGroup(self, "Logs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY)
        self.container = task.add_container(
            CONTAINER_NAME,
            image=self._image(image, arm),
            port_mappings=[ecs.PortMapping(container_port=CONTAINER_PORT)],
            environment={
                "RECEIVER_HOST": "0.0.0.0",
                "RECEIVER_PORT": str(CONTAINER_PORT),
                "RECEIVER_STORE": f"dynamodb://{store.table.table_name}?region={region}",
                "RECEIVER_LOG_FORMAT": "json",
                "RECEIVER_SHUTDOWN_TIMEOUT": str(shutdown_timeout_s),
                # Bodies in flight within a quarter of the task's memory, so decoding never runs it out.
                "RECEIVER_MAX_INFLIGHT_MIB": str(size.memory_mib // 4),
                **alarm_environment,
                **inventory_environment(self, inventory),
            },
            secrets={"RECEIVER_ACCESS_KEYS": ecs.Secret.from_secrets_manager(access_key, "api_key")},
            logging=ecs.LogDrivers.aws_logs(
                stream_prefix=CONTAINER_NAME,
                log_group=self.log_group,
                # Never block the receiver's stdout on CloudWatch Logs; buffer instead.
                mode=ecs.AwsLogDriverMode.NON_BLOCKING,
                max_buffer_size=Size.mebibytes(25),
            ),
            health_check=ecs.HealthCheck(
                command=["CMD", "python", "-c", HEALTH_COMMAND],
                interval=Duration.seconds(30),
                timeout=Duration.seconds(5),
                retries=3,
                start_period=Duration.seconds(30),
            ),
            # SIGTERM, then the receiver's own deadline for in-flight deliveries, then time to close.
            stop_timeout=Duration.seconds(shutdown_timeout_s + STOP_MARGIN_S),
            readonly_root_filesystem=True,
        )

        self.security_group = ec2.SecurityGroup(
            self,
            "TasksSecurityGroup",
            vpc=vpc,
            description="Receiver tasks: in only from the load balancer; out only HTTPS to AWS APIs",
            allow_all_outbound=False,
        )
        self.security_group.add_egress_rule(
            ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "ECR, CloudWatch Logs, Secrets Manager and DynamoDB endpoints"
        )

        self.service = ecs.FargateService(
            self,
            "Service",
            cluster=self.cluster,
            task_definition=task,
            # Starts at the minimum; autoscaling moves it between min and max from there.
            desired_count=min_tasks,
            min_healthy_percent=100,
            max_healthy_percent=200,
            circuit_breaker=ecs.DeploymentCircuitBreaker(enable=True, rollback=True),
            vpc_subnets=subnets,
            assign_public_ip=assign_public_ip,
            security_groups=[self.security_group],
            health_check_grace_period=Duration.seconds(60),
            platform_version=ecs.FargatePlatformVersion.LATEST,
            enable_execute_command=False,
            propagate_tags=ecs.PropagatedTagSource.SERVICE,
            enable_ecs_managed_tags=True,
        )
        if self.inventory_policy is not None:
            # Tasks start with the inventory's permissions in place, not seconds before them.
            self.service.node.add_dependency(self.inventory_policy)

        self._scaling = self.service.auto_scale_task_count(min_capacity=min_tasks, max_capacity=max_tasks)
        self._scaling.scale_on_cpu_utilization(
            "CpuScaling",
            target_utilization_percent=CPU_TARGET_PERCENT,
            scale_in_cooldown=Duration.minutes(5),
            scale_out_cooldown=Duration.minutes(1),
        )

    def _image(self, image: ReceiverImage | None, arm: bool) -> ecs.ContainerImage:
        if image is None:
            # Built at deploy from the repository root; its .dockerignore admits only what the image needs.
            return ecs.ContainerImage.from_asset(
                str(REPOSITORY),
                file="receiver/Dockerfile",
                platform=ecr_assets.Platform.LINUX_ARM64 if arm else ecr_assets.Platform.LINUX_AMD64,
            )
        if image.ecr_repository_arn is not None and image.ecr_repository_name is not None:
            # ECR: the execution role is granted the pull of this one repository.
            repository = ecr.Repository.from_repository_attributes(
                self,
                "ImageRepository",
                repository_arn=image.ecr_repository_arn,
                repository_name=image.ecr_repository_name,
            )
            return ecs.ContainerImage.from_ecr_repository(repository, image.tag_or_digest)
        # Any other registry: pulled anonymously, so it must be public.
        return ecs.ContainerImage.from_registry(image.uri)

    def load_balancer_target(self) -> elbv2.IApplicationLoadBalancerTarget:
        return self.service.load_balancer_target(container_name=CONTAINER_NAME, container_port=CONTAINER_PORT)

    def scale_on_requests(self, target_group: elbv2.ApplicationTargetGroup) -> None:
        self._scaling.scale_on_request_count(
            "RequestScaling",
            requests_per_target=REQUESTS_PER_TARGET_PER_MINUTE,
            target_group=target_group,
            scale_in_cooldown=Duration.minutes(5),
            scale_out_cooldown=Duration.minutes(1),
        )
