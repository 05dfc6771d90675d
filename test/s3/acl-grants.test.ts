import { describe, expect, it } from 'vitest';
import { aclDocumentGrants } from '../../src/s3/acl-grants.js';

const OWNER = '<Owner><ID>abc123</ID></Owner>';
const grant = (grantee: string, permission = 'FULL_CONTROL') =>
  `<Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="${grantee}</Grantee><Permission>${permission}</Permission></Grant>`;
const policy = (...grants: string[]) =>
  `<?xml version="1.0" encoding="UTF-8"?><AccessControlPolicy xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${OWNER}<AccessControlList>${grants.join('')}</AccessControlList></AccessControlPolicy>`;

describe('aclDocumentGrants', () => {
  it('reads an owner-only document (what s3cmd copies from a private object) as private', () => {
    expect(aclDocumentGrants(policy(grant('CanonicalUser"><ID>abc123</ID>')))).toBe('private');
    expect(aclDocumentGrants(policy())).toBe('private');
  });

  it('reads every other grant, and anything it does not understand, as needing admin', () => {
    expect(aclDocumentGrants(policy(grant('Group"><URI>http://acs.amazonaws.com/groups/global/AllUsers</URI>', 'READ')))).toBe('other');
    expect(aclDocumentGrants(policy(grant('CanonicalUser"><ID>someone-else</ID>')))).toBe('other');
    expect(aclDocumentGrants(policy(grant('CanonicalUser"><ID>abc123</ID>', 'READ')))).toBe('other');
    expect(aclDocumentGrants(policy(grant('AmazonCustomerByEmail"><EmailAddress>a@b.c</EmailAddress>')))).toBe('other');
    expect(aclDocumentGrants('<NotAPolicy/>')).toBe('other');
    // A namespace prefix hides the grant from a reading of plain names.
    expect(
      aclDocumentGrants(
        policy(
          grant('CanonicalUser"><ID>abc123</ID>'),
          '<s3:Grant><s3:Grantee><s3:URI>http://acs.amazonaws.com/groups/global/AllUsers</s3:URI></s3:Grantee><s3:Permission>READ</s3:Permission></s3:Grant>',
        ),
      ),
    ).toBe('other');
    // An unclosed or nested grant could hide a second grantee from a reading that pairs tags naively.
    expect(aclDocumentGrants(policy(grant('CanonicalUser"><ID>abc123</ID>'), '<Grant><Grantee><ID>x</ID>'))).toBe('other');
    expect(aclDocumentGrants(policy(`<Grant>${grant('CanonicalUser"><ID>abc123</ID>')}</Grant>`))).toBe('other');
  });

  it('reads hostile documents in linear time: unclosed grants cannot stall the event loop', () => {
    // 700 KB of unclosed <Grant> tags (the handler reads at most 64 KiB): a quadratic reading takes ~10 s.
    const hostile = policy() + '<Grant>'.repeat(100_000);
    const ownerBait = `<AccessControlPolicy>${'<Owner><ID>'.repeat(300_000)}${'x'.repeat(1_000_000)}</AccessControlPolicy>`;
    const started = performance.now();
    expect(aclDocumentGrants(hostile)).toBe('other');
    expect(aclDocumentGrants(ownerBait)).toBe('private');
    // A wide bound: linear reading takes a few ms here.
    expect(performance.now() - started).toBeLessThan(2_000);
  });
});
