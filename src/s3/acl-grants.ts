/**
 * What an AccessControlPolicy document sent with PutObjectAcl grants: nothing beyond its owner
 * (`private`, which any key with `write` may set), or anything else (`other`, which needs `admin`).
 *
 * Read with plain string scans, each byte visited a bounded number of times: the document comes
 * from any key with `write`, before the admin check, so its reading must stay linear (a lazy
 * `<Grant>([\s\S]*?)</Grant>` over 64 KiB of unclosed `<Grant>` tags took ~130 ms per body).
 */

const GRANT_OPEN = '<Grant>';
const GRANT_CLOSE = '</Grant>';

/**
 * 'private' when the document grants nothing but FULL_CONTROL to its own owner; 'other' for anything
 * else, including documents this reading does not understand (they then need admin).
 */
export function aclDocumentGrants(xml: string): 'private' | 'other' {
  if (!/^\s*(<\?xml[^>]*\?>\s*)?<AccessControlPolicy[\s>]/.test(xml)) return 'other';
  // Grantees by URI or e-mail, and elements with a namespace prefix (`<s3:Grant>`), which the
  // plain names below would not see, are not read further.
  if (/<(URI|EmailAddress)>/.test(xml) || /<\/?[A-Za-z_][\w.-]*:/.test(xml)) return 'other';
  const owner = /<Owner>\s*<ID>([^<]+)<\/ID>/.exec(xml)?.[1];
  const grants = grantBodies(xml);
  if (grants === null) return 'other';
  const ownerOnly = grants.every((grant) => {
    const grantee = /<ID>([^<]+)<\/ID>/.exec(grant)?.[1];
    return owner !== undefined && grantee === owner && /<Permission>\s*FULL_CONTROL\s*<\/Permission>/.test(grant);
  });
  return ownerOnly ? 'private' : 'other';
}

/** The contents of each <Grant>…</Grant>, in order; null when one is unclosed or nested. */
function grantBodies(xml: string): string[] | null {
  const grants: string[] = [];
  let from = 0;
  for (;;) {
    const open = xml.indexOf(GRANT_OPEN, from);
    if (open < 0) return grants;
    const start = open + GRANT_OPEN.length;
    const close = xml.indexOf(GRANT_CLOSE, start);
    if (close < 0) return null;
    const grant = xml.slice(start, close);
    if (grant.includes(GRANT_OPEN)) return null;
    grants.push(grant);
    from = close + GRANT_CLOSE.length;
  }
}
