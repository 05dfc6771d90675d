/**
 * What a user copies to start using a key: an environment block that aws-cli and the AWS SDKs read
 * as they are, and a boto3 snippet that runs as pasted (flush-left: Python refuses indented code).
 * Shown by `keygate keys create` and by the demo.
 */
import type { Config } from '../config.js';
import type { AccessKeyWithSecret } from './model.js';

/** Quotes a value for POSIX shells when it contains anything beyond a safe set. */
export function shellQuote(value: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`;
}

/** A Python string literal. */
export function pythonString(value: string): string {
  return JSON.stringify(value);
}

type SnippetConfig = Pick<Config, 'publicUrl' | 'region' | 'domain'>;

/**
 * The standard AWS variables: aws-cli (v2 >= 2.13 reads AWS_ENDPOINT_URL; v1 needs --endpoint-url)
 * and boto3/botocore >= 1.31 pick them up without code. Both region names, for old and new clients.
 */
export function environmentBlock(key: Pick<AccessKeyWithSecret, 'accessKeyId' | 'secretAccessKey'>, config: SnippetConfig): string[] {
  return [
    `export AWS_ACCESS_KEY_ID=${key.accessKeyId}`,
    `export AWS_SECRET_ACCESS_KEY=${key.secretAccessKey}`,
    `export AWS_ENDPOINT_URL=${shellQuote(config.publicUrl)}`,
    `export AWS_REGION=${shellQuote(config.region)}`,
    `export AWS_DEFAULT_REGION=${shellQuote(config.region)}`,
  ];
}

/** A boto3 program, flush-left, that lists the key's bucket (or YOUR_BUCKET for a workspace key). */
export function boto3Snippet(key: Pick<AccessKeyWithSecret, 'accessKeyId' | 'secretAccessKey' | 'bucket'>, config: SnippetConfig): string[] {
  // Without KEYGATE_DOMAIN the gateway only understands path-style addressing.
  const pathStyle = config.domain === null;
  return [
    'import boto3',
    ...(pathStyle ? ['from botocore.config import Config'] : []),
    '',
    's3 = boto3.client(',
    '    "s3",',
    `    endpoint_url=${pythonString(config.publicUrl)},`,
    `    aws_access_key_id=${pythonString(key.accessKeyId)},`,
    `    aws_secret_access_key=${pythonString(key.secretAccessKey)},`,
    `    region_name=${pythonString(config.region)},`,
    ...(pathStyle ? ['    config=Config(s3={"addressing_style": "path"}),'] : []),
    ')',
    `print(s3.list_objects_v2(Bucket=${pythonString(key.bucket ?? 'YOUR_BUCKET')}).get("KeyCount"))`,
  ];
}
