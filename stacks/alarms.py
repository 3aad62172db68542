"""CloudWatch alarms on the pipeline itself: they notify the alarm topic even when the receiver is down.

The receiver cannot report its own absence, so these watch it from outside, on metrics AWS
publishes for free: Firehose's delivery (AWS/Firehose), the metric stream's (AWS/CloudWatch/
MetricStreams) and the load balancer's (AWS/ApplicationELB). Each alarm's description is one
line for the person paged at night: what broke, where to look, what to try first, and whether
silence fires it. Where silence means failure the alarm treats missing data as breaching;
where silence is the normal state (no errors, nothing in flight) it does not.
"""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_sns as sns
from constructs import Construct

from stacks.settings import AlarmSettings

# AWS/Firehose and AWS/ApplicationELB publish every minute; five minutes smooths single
# missing points without delaying a page much.
PERIOD = Duration.minutes(5)
PERIOD_MINUTES = 5
FIREHOSE = "AWS/Firehose"
METRIC_STREAMS = "AWS/CloudWatch/MetricStreams"
# An AlarmDescription holds at most 1,024 characters; the URL appears twice in one, and
# receiverEndpointUrl may be up to 1,000 long, so a long one is named rather than shown.
LONGEST_URL_SHOWN = 200


def shown_url(endpoint_url: str) -> str:
    """The endpoint as the descriptions show it."""
    return endpoint_url if len(endpoint_url) <= LONGEST_URL_SHOWN else "the URL in receiverEndpointUrl"


def pipeline_alarms(
    scope: Construct,
    *,
    topic: sns.ITopic,
    settings: AlarmSettings,
    delivery_stream_name: str,
    metric_stream_name: str,
    endpoint_url: str,
    backup_bucket_name: str,
    error_log_group_name: str,
    retry_duration_seconds: int,
) -> list[cloudwatch.Alarm]:
    """The delivery, staleness, publish-error and backup alarms of the metric stream stack."""
    stream = {"DeliveryStreamName": delivery_stream_name}
    endpoint_url = shown_url(endpoint_url)
    failing_minutes = settings.evaluation_periods * PERIOD_MINUTES
    return [
        _alarm(
            scope,
            "DeliveryFailing",
            topic=topic,
            metric=_metric(FIREHOSE, "DeliveryToHttpEndpoint.Success", stream, "Sum"),
            comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            threshold=1,
            evaluation_periods=settings.evaluation_periods,
            missing=cloudwatch.TreatMissingData.BREACHING,
            description=(
                f"No DynamoDB metrics reach the receiver: Firehose stream {delivery_stream_name} made no successful "
                f"delivery to {endpoint_url} for {failing_minutes} minutes (DeliveryToHttpEndpoint.Success < 1; "
                "no data fires too, as a stopped stream sends nothing). Look at the Firehose error logs in log "
                f"group {error_log_group_name} for the HTTP status. First try: python -m receiver probe "
                f"{endpoint_url} --access-key <key>, then restart or roll back the receiver if it fails."
            ),
        ),
        _alarm(
            scope,
            "DeliveryStale",
            topic=topic,
            metric=_metric(FIREHOSE, "DeliveryToHttpEndpoint.DataFreshness", stream, "Maximum"),
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            threshold=settings.data_freshness_minutes * 60,
            evaluation_periods=1,
            missing=cloudwatch.TreatMissingData.NOT_BREACHING,
            description=(
                f"Firehose stream {delivery_stream_name} holds records older than {settings.data_freshness_minutes} "
                f"minutes (DeliveryToHttpEndpoint.DataFreshness): deliveries to {endpoint_url} fail or are slow "
                f"and are retried for up to {retry_duration_seconds} s before they go to the S3 backup. Look at "
                f"log group {error_log_group_name} for the HTTP status. First try: probe the endpoint "
                "(python -m receiver probe) and fix what it reports. No data means nothing in flight and does "
                "not fire."
            ),
        ),
        _alarm(
            scope,
            "StreamPublishErrors",
            topic=topic,
            metric=_metric(METRIC_STREAMS, "PublishErrorRate", {"MetricStreamName": metric_stream_name}, "Average"),
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            threshold=0,
            evaluation_periods=1,
            missing=cloudwatch.TreatMissingData.NOT_BREACHING,
            description=(
                f"Metric stream {metric_stream_name} could not put metric updates into Firehose stream "
                f"{delivery_stream_name} (PublishErrorRate > 0): those updates are lost. Look at the Firehose "
                "stream's ThrottledRecords and the metric stream's state in the CloudWatch console. First try: "
                "check that the stream's role still may firehose:PutRecordBatch on that Firehose stream. No data "
                "(an idle or stopped stream) does not fire; DeliveryFailing covers a stopped stream."
            ),
        ),
        _alarm(
            scope,
            "DeliveriesBackedUp",
            topic=topic,
            metric=_metric(FIREHOSE, "DeliveryToS3.Records", stream, "Sum"),
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            threshold=0,
            evaluation_periods=1,
            missing=cloudwatch.TreatMissingData.NOT_BREACHING,
            description=(
                f"Firehose stream {delivery_stream_name} gave up on records after {retry_duration_seconds} s of "
                f"retries and wrote them to s3://{backup_bucket_name}/ (DeliveryToS3.Records > 0): that data is "
                "not in the receiver. Look at "
                f"log group {error_log_group_name} and the DeliveryFailing alarm for why. First try: fix the "
                f"endpoint, then re-send: python -m receiver replay s3://{backup_bucket_name}/ --to {endpoint_url}. "
                "No data (nothing backed up) does not fire."
            ),
        ),
    ]


def receiver_alarms(
    scope: Construct,
    *,
    topic: sns.ITopic,
    settings: AlarmSettings,
    target_group: elbv2.ApplicationTargetGroup,
    cluster_name: str,
    service_name: str,
    log_group_name: str,
) -> list[cloudwatch.Alarm]:
    """The load balancer's view of the receiver tasks: none healthy, or answering 5xx."""
    failing_minutes = settings.evaluation_periods * PERIOD_MINUTES
    return [
        _alarm(
            scope,
            "NoHealthyReceivers",
            topic=topic,
            metric=target_group.metrics.healthy_host_count(period=PERIOD, statistic="Minimum"),
            comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            threshold=1,
            evaluation_periods=settings.evaluation_periods,
            missing=cloudwatch.TreatMissingData.BREACHING,
            description=(
                f"No receiver task has passed the load balancer's health check for {failing_minutes} minutes "
                "(HealthyHostCount < 1; no data fires too, as the count is reported whenever health checks run): "
                f"Firehose deliveries get 503. Look at the events of ECS service {service_name} in cluster "
                f"{cluster_name} and at log group {log_group_name}. First try: aws ecs update-service --cluster "
                f"{cluster_name} --service {service_name} --force-new-deployment, or roll back to the last good "
                "image."
            ),
        ),
        _alarm(
            scope,
            "Receiver5xx",
            topic=topic,
            metric=target_group.metrics.http_code_target(
                elbv2.HttpCodeTarget.TARGET_5XX_COUNT, period=PERIOD, statistic="Sum"
            ),
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            threshold=settings.target_5xx_threshold,
            evaluation_periods=settings.evaluation_periods,
            missing=cloudwatch.TreatMissingData.NOT_BREACHING,
            description=(
                f"Receiver tasks answered more than {settings.target_5xx_threshold} HTTP 5xx per 5 minutes for "
                f"{failing_minutes} minutes (HTTPCode_Target_5XX_Count): Firehose retries, but the store or the "
                f"in-flight budget keeps failing. Look at log group {log_group_name} for store errors and at the "
                f"tasks' CPU and memory in cluster {cluster_name}. First try: raise maxTasks or taskMemoryMiB, or "
                "check the metrics table is reachable. No data (no 5xx at all) does not fire."
            ),
        ),
    ]


def _metric(namespace: str, name: str, dimensions: dict[str, str], statistic: str) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace=namespace, metric_name=name, dimensions_map=dimensions, statistic=statistic, period=PERIOD
    )


def _alarm(
    scope: Construct,
    construct_id: str,
    *,
    topic: sns.ITopic,
    metric: cloudwatch.IMetric,
    comparison: cloudwatch.ComparisonOperator,
    threshold: float,
    evaluation_periods: int,
    missing: cloudwatch.TreatMissingData,
    description: str,
) -> cloudwatch.Alarm:
    alarm = cloudwatch.Alarm(
        scope,
        construct_id,
        alarm_name=f"{Stack.of(scope).stack_name}-{construct_id}",
        alarm_description=description,
        metric=metric,
        comparison_operator=comparison,
        threshold=threshold,
        evaluation_periods=evaluation_periods,
        datapoints_to_alarm=evaluation_periods,
        treat_missing_data=missing,
    )
    action = cloudwatch_actions.SnsAction(topic)
    alarm.add_alarm_action(action)
    alarm.add_ok_action(action)  # the person paged learns when it is over
    return alarm
