"""A customer's actions on their own KMS key, with the AWS SDK (boto3), against the local KMS of test-kms-server.py.

  test-kms-customer.py ENDPOINT ACCESS_KEY_ID SECRET_ACCESS_KEY create
      makes a key; prints its ARN
  test-kms-customer.py ENDPOINT ACCESS_KEY_ID SECRET_ACCESS_KEY disable|enable|schedule-deletion|cancel-deletion ARN
      changes the key's state; prints it
"""
import sys

import boto3


def main():
    endpoint, access, secret, action = sys.argv[1:5]
    kms = boto3.client("kms", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=access, aws_secret_access_key=secret)
    if action == "create":
        print(kms.create_key(Description="a customer's own key")["KeyMetadata"]["Arn"])
        return
    # AWS takes the ARN; moto's state changes take the key id only.
    key = sys.argv[5].rsplit("/", 1)[-1]
    if action == "disable":
        kms.disable_key(KeyId=key)
    elif action == "enable":
        kms.enable_key(KeyId=key)
    elif action == "schedule-deletion":
        kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)
    elif action == "cancel-deletion":
        kms.cancel_key_deletion(KeyId=key)
    else:
        raise SystemExit(f"unknown action {action}")
    print(kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"])


if __name__ == "__main__":
    main()
