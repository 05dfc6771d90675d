/** Usage text for each command group (README's command reference shows the same verbs and flags). */

export const MAIN_USAGE = `keygate: S3 gateway with scoped, revocable access keys

Usage:
  keygate serve                        start the S3 gateway and the admin API
  keygate keys create|list|show|delete manage access keys       (keygate keys --help)
  keygate buckets add|list|remove|sync|cors manage the bucket registry (keygate buckets --help)
  keygate presign ACCESS_KEY_ID s3://BUCKET/KEY [--method GET|PUT|HEAD|DELETE] [--expires-in 3600]
  keygate presign ACCESS_KEY_ID s3://BUCKET/KEY-PREFIX --method POST [--max-size 25m] [--expires-in 600]
                                       a browser upload form (JSON: url, fields)

Configuration comes from KEYGATE_* environment variables; KEYGATE_DATA_DIR (default ./data)
holds the database and keys, shared by the CLI and a running server.
`;

export const KEYS_USAGE = `Usage:
  keygate keys create --name NAME [--bucket BUCKET]
                      (--perm read,write,delete,admin | --preset read-only|read-write)
                      [--expires-in 30d] [--json]
  keygate keys list [--bucket BUCKET] [--json]
  keygate keys show ACCESS_KEY_ID [--json]
  keygate keys delete ACCESS_KEY_ID

Workspace keys (no --bucket) take any of read, write, delete, admin, or a preset.
Per-bucket keys take only --preset read-only or --preset read-write.
--expires-in accepts 30d, 12h, 15m, 3600s or plain seconds (at most 10 years).
Deleting a key revokes it on the server's next request.
`;

export const BUCKETS_USAGE = `Usage:
  keygate buckets add NAME [--datacenter DC] [--upstream-bucket BUCKET]
  keygate buckets add NAME --endpoint URL --region REGION [--upstream-bucket BUCKET]
  keygate buckets list [--json]
  keygate buckets remove NAME
  keygate buckets sync                 import RunPod network volumes (needs RUNPOD_API_KEY)
  keygate buckets cors NAME [--file rules.json | --clear] [--json]
                                       show, set or clear the bucket's CORS rules

--datacenter is a RunPod datacenter id (e.g. EU-RO-1); NAME is then usually the network volume id.
--endpoint/--region point the bucket at any S3 service. With neither, the default upstream
(KEYGATE_UPSTREAM_ENDPOINT) serves it.
`;

export const SERVE_USAGE = `Usage:
  keygate serve

Starts the S3 listener (KEYGATE_HOST:KEYGATE_PORT) and the admin API
(KEYGATE_ADMIN_HOST:KEYGATE_ADMIN_PORT). Stop with Ctrl-C or SIGTERM.
`;
