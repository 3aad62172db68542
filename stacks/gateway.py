"""The public edge: HTTPS on 443 (ACM), one path to the receiver, a 404 for the rest, a DNS name."""

from __future__ import annotations

import json

from aws_cdk import Duration
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_route53_targets as route53_targets
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.service import CONTAINER_PORT, HEALTH_PATH, ReceiverService

FIREHOSE_PATH = "/aws/firehose/metrics"
# The dashboard page, the static files it loads, its query API, and the Prometheus exposition.
DASHBOARD_PATHS = ("/", "/static/*", "/api/*", "/metrics")
# AWS's recommended policy (the console's default): TLS 1.2 and 1.3 only, no CBC ciphers,
# hybrid post-quantum key exchange for clients that offer it.
SSL_POLICY = elbv2.SslPolicy.TLS13_12_RES_PQ
NOT_FOUND_BODY = json.dumps({"error": "not found"})
FIREHOSE_RULE_PRIORITY = 10
DASHBOARD_RULE_PRIORITY = 100


class Gateway(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        receiver: ReceiverService,
        domain_name: str,
        hosted_zone: route53.IHostedZone | None,
        certificate_arn: str | None,
        dashboard_cidrs: tuple[str, ...],
        access_logs: s3.IBucket,
        deregistration_delay_s: int,
    ) -> None:
        super().__init__(scope, construct_id)

        if certificate_arn is not None:
            certificate: acm.ICertificate = acm.Certificate.from_certificate_arn(self, "Certificate", certificate_arn)
        elif hosted_zone is not None:
            certificate = acm.Certificate(
                self,
                "Certificate",
                domain_name=domain_name,
                validation=acm.CertificateValidation.from_dns(hosted_zone),
            )
        else:
            raise ValueError("the gateway needs a hosted zone to validate a certificate in, or a certificate ARN")

        self.load_balancer = elbv2.ApplicationLoadBalancer(
            self,
            "LoadBalancer",
            vpc=vpc,
            vpc_subnets=subnets,
            internet_facing=True,
            drop_invalid_header_fields=True,
            # Longer than the slowest delivery the receiver may take to store, so the ALB never
            # answers a working request with 504 (Firehose would only send it again).
            idle_timeout=Duration.seconds(120),
        )
        self.load_balancer.log_access_logs(access_logs, "alb")

        # Firehose only speaks HTTPS on 443, so there is no port 80 listener at all.
        listener = self.load_balancer.add_listener(
            "Https",
            port=443,
            protocol=elbv2.ApplicationProtocol.HTTPS,
            certificates=[elbv2.ListenerCertificate.from_certificate_manager(certificate)],
            ssl_policy=SSL_POLICY,
            open=True,
            default_action=elbv2.ListenerAction.fixed_response(
                404, content_type="application/json", message_body=NOT_FOUND_BODY
            ),
        )

        self.target_group = elbv2.ApplicationTargetGroup(
            self,
            "Receivers",
            vpc=vpc,
            port=CONTAINER_PORT,
            protocol=elbv2.ApplicationProtocol.HTTP,
            target_type=elbv2.TargetType.IP,
            targets=[receiver.load_balancer_target()],
            health_check=elbv2.HealthCheck(
                path=HEALTH_PATH,
                healthy_http_codes="200",
                interval=Duration.seconds(15),
                timeout=Duration.seconds(5),
                healthy_threshold_count=2,
                unhealthy_threshold_count=3,
            ),
            # Draining lasts as long as the receiver's own shutdown deadline: in-flight deliveries finish.
            deregistration_delay=Duration.seconds(deregistration_delay_s),
        )
        forward = elbv2.ListenerAction.forward([self.target_group])
        listener.add_action(
            "Firehose",
            priority=FIREHOSE_RULE_PRIORITY,
            conditions=[elbv2.ListenerCondition.path_patterns([FIREHOSE_PATH])],
            action=forward,
        )
        # One rule per network: four paths and one address fill a rule's five condition values.
        for index, cidr in enumerate(dashboard_cidrs):
            listener.add_action(
                f"Dashboard{index}",
                priority=DASHBOARD_RULE_PRIORITY + index,
                conditions=[
                    elbv2.ListenerCondition.path_patterns(list(DASHBOARD_PATHS)),
                    elbv2.ListenerCondition.source_ips([cidr]),
                ],
                action=forward,
            )
        receiver.scale_on_requests(self.target_group)

        if hosted_zone is not None:
            route53.ARecord(
                self,
                "Alias",
                zone=hosted_zone,
                record_name=domain_name,
                target=route53.RecordTarget.from_alias(route53_targets.LoadBalancerTarget(self.load_balancer)),
            )
