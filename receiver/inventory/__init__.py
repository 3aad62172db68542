"""The table inventory: what each DynamoDB table is (DescribeTable, tags, limits, backups,
Contributor Insights), polled with boto3 and kept in the store for every replica."""
