/** Usage text for each command group (README's command reference shows the same verbs and flags). */

export const MAIN_USAGE = `keygate: S3 gateway with scoped, revocable access keys

Usage:
  keygate serve                        start the S3 gateway and the admin API
  keygate keys create|list|show|delete manage access keys       (keygate keys --help)
  keygate buckets add|list|remove|sync|cors manage the bucket registry (keygate buckets --help)
  keygate presign ACCESS_KEY_ID s3://BUCKET/KEY [--method GET|PUT|HEAD|DELETE] [--expires-in 600]
  keygate presign ACCESS_KEY_ID s3://BUCKET/KEY-PREFIX --method POST [--max-size 25m] [--expires-in 600]
                                       a browser upload form (JSON: url, fields)
  keygate store migrate --to postgres://… [--dry-run]
                                       copy the SQLite store into a shared PostgreSQL store (keygate store --help)

Configuration comes from KEYGATE_* environment variables; KEYGATE_DATA_DIR (default ./data)
holds the database and keys, shared by the CLI and a running server. With KEYGATE_DATABASE_URL
set, the CLI and every server use that PostgreSQL store instead.
`;

export const STORE_USAGE = `Usage:
  keygate store migrate --to postgres://USER:PASSWORD@HOST:5432/DB [--dry-run]

Copies the access keys and buckets (CORS rules included) of the SQLite store in
KEYGATE_DATA_DIR into the PostgreSQL store at --to. Secrets are copied sealed: the
PostgreSQL store uses this data dir's master key (KEYGATE_MASTER_KEY or master.key),
and every instance on it must be given that same key. Safe to run again: rows already
there are left alone, and rows that differ there are reported (exit status 1).
--dry-run shows what would be copied and writes nothing.
`;

export const KEYS_USAGE = `Usage:
  keygate keys create --name NAME [--bucket BUCKET]
                      (--perm read,write,delete,admin | --preset read-only|read-write)
                      [--expires-in 30d] [--rate-limit 20/s [--rate-burst 40]]
                      [--allow-ip 10.0.0.0/8,2001:db8::/32] [--prefix team-a/] [--json]
  keygate keys list [--bucket BUCKET] [--json]
  keygate keys show ACCESS_KEY_ID [--json]
  keygate keys disable ACCESS_KEY_ID
  keygate keys enable ACCESS_KEY_ID
  keygate keys delete ACCESS_KEY_ID

Workspace keys (no --bucket) take any of read, write, delete, admin, or a preset.
Per-bucket keys take --preset read-only or --preset read-write; --perm read and
--perm read,write are the same two presets (anything else is refused).
--expires-in accepts 30d, 12h, 15m, 3600s or plain seconds (at most 10 years).
--rate-limit gives the key its own request rate (e.g. 20/s or 0.5/s), overriding
KEYGATE_RATE_LIMIT; --rate-burst is how many requests it may make at once after
being idle (default: one second's worth).
--prefix limits the key to object keys starting with it (in every bucket it reaches);
its listings must ask for a prefix inside it.
--allow-ip limits where the key may be used from (IPv4/IPv6 networks; the client
is the connection's peer, or what KEYGATE_TRUSTED_PROXIES say in X-Forwarded-For).
Deleting a key revokes it on the server's next request. Disabling a key refuses it
(presigned URLs and forms included) from the next request on, and keeps it: enabling
it again makes it work as before.
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

export const CORS_USAGE = `Usage:
  keygate buckets cors NAME [--json]              show the bucket's CORS rules
  keygate buckets cors NAME --file rules.json     replace them
  keygate buckets cors NAME --clear               remove them (cross-origin browser requests are refused)

rules.json is a list of rules, e.g.
  [{"allowedOrigins": ["https://app.example.com"], "allowedMethods": ["GET", "PUT", "POST"],
    "allowedHeaders": ["*"], "exposeHeaders": ["ETag"], "maxAgeSeconds": 3000}]
or S3's CORSConfiguration JSON ({"CORSRules": [{"AllowedOrigins": [...], ...}]}).
Changes apply to the server's next request. See docs/browser-uploads.md.
`;

export const PRESIGN_USAGE =
  'Usage: keygate presign ACCESS_KEY_ID s3://BUCKET/KEY [--method GET|PUT|HEAD|DELETE] [--expires-in 600]\n' +
  '       keygate presign ACCESS_KEY_ID s3://BUCKET/KEY-PREFIX --method POST [--max-size 25m] [--expires-in 600]\n' +
  "Prints a presigned URL made with the key's secret (default 10 minutes, at most 7 days).\n" +
  'With --method POST it prints a browser upload form as JSON, {"url", "fields", "expiresAt"}: post the fields,\n' +
  'then the file as the field "file", to url as multipart/form-data. Any key under KEY-PREFIX is allowed;\n' +
  'fields.key defaults to KEY-PREFIX${filename}. See docs/browser-uploads.md.\n';

/**
 * The usage text each help command shows (`keygate keys --help`, …): `--help` anywhere on a command
 * line prints it and does nothing else (args.ts).
 */
export const USAGE_BY_HELP_COMMAND: Readonly<Record<string, string>> = {
  'keygate --help': MAIN_USAGE,
  'keygate keys --help': KEYS_USAGE,
  'keygate buckets --help': BUCKETS_USAGE,
  'keygate buckets cors --help': CORS_USAGE,
  'keygate serve --help': SERVE_USAGE,
  'keygate presign --help': PRESIGN_USAGE,
  'keygate store --help': STORE_USAGE,
};
