"""The receiver's VPC.

Two AZs (an ALB needs two). With ``natGateways`` 0 (the default) there are only public subnets:
the tasks get public IPs so they reach ECR, CloudWatch Logs, Secrets Manager and DynamoDB
through the internet gateway, and their security group admits nothing but the load balancer.
That costs one public IPv4 address per task (about $3.65 a month each) instead of a NAT gateway
(about $33 a month each, plus $0.045/GB) or the four interface endpoints that would replace it
(ECR API, ECR Docker, Logs, Secrets Manager: about $58 a month over two AZs). With 1 or 2 the tasks move to
private subnets behind that many NAT gateways, for accounts whose policy forbids public addresses on workloads;
S3 and DynamoDB gateway endpoints (free) then carry the image layers (ECR keeps them in S3) and the
store's traffic past the NAT gateways, which charge per GB.
"""

from __future__ import annotations

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_s3 as s3
from constructs import Construct


class Network(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, nat_gateways: int, flow_logs: s3.IBucket) -> None:
        super().__init__(scope, construct_id)

        subnets = [ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24)]
        if nat_gateways:
            subnets.append(
                ec2.SubnetConfiguration(name="private", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=24)
            )
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr("10.0.0.0/16"),
            max_azs=2,
            nat_gateways=nat_gateways,
            subnet_configuration=subnets,
            restrict_default_security_group=True,
        )
        # Every flow, accepted or rejected: the volume is tiny (an ALB and a few tasks) and
        # rejected-only logs would miss what an investigation needs.
        self.vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_s3(flow_logs, "vpc-flow-logs/"),
            traffic_type=ec2.FlowLogTrafficType.ALL,
        )

        if nat_gateways:
            # Gateway endpoints cost nothing; NAT gateways charge for every GB they carry.
            self.vpc.add_gateway_endpoint("S3", service=ec2.GatewayVpcEndpointAwsService.S3)
            self.vpc.add_gateway_endpoint("DynamoDb", service=ec2.GatewayVpcEndpointAwsService.DYNAMODB)

        self.load_balancer_subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC)
        self.task_subnets = ec2.SubnetSelection(
            subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS if nat_gateways else ec2.SubnetType.PUBLIC
        )
        self.tasks_need_public_ip = nat_gateways == 0
