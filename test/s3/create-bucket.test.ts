/** The CreateBucketConfiguration of a bucket the gateway creates on RunPod, and the settings headers it refuses. */
import { describe, expect, it } from 'vitest';
import { S3Error } from '../../src/errors.js';
import { assertRunpodBucketSettings, CREATE_BUCKET_SHAPE, datacenterOfLocationConstraint, locationConstraintOf } from '../../src/s3/create-bucket.js';
import { parseXmlBody } from '../../src/s3/xml-body.js';

const DATACENTERS = ['EU-RO-1', 'US-KS-2'];
const SIGNING = ['auto', 'us-east-1'];

function s3Error(run: () => unknown): S3Error {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(S3Error);
    return error as S3Error;
  }
  throw new Error('expected an S3Error');
}

describe('CreateBucketConfiguration', () => {
  it('reads the LocationConstraint (with the S3 namespace, whitespace around it, or empty)', () => {
    const read = (xml: string) => locationConstraintOf(parseXmlBody(xml, CREATE_BUCKET_SHAPE));
    expect(
      read(
        '<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><LocationConstraint>EU-RO-1</LocationConstraint></CreateBucketConfiguration>',
      ),
    ).toBe('EU-RO-1');
    expect(
      read(
        '<?xml version="1.0" encoding="UTF-8"?>\n<CreateBucketConfiguration>\n  <LocationConstraint> eu-ro-1 </LocationConstraint>\n</CreateBucketConfiguration>',
      ),
    ).toBe('eu-ro-1');
    expect(read('<CreateBucketConfiguration><LocationConstraint/></CreateBucketConfiguration>')).toBeNull();
    expect(read('<CreateBucketConfiguration></CreateBucketConfiguration>')).toBeNull();
    expect(locationConstraintOf(null)).toBeNull();
  });

  it('refuses other documents, directory buckets and entities', () => {
    expect(s3Error(() => parseXmlBody('<Delete><LocationConstraint>EU-RO-1</LocationConstraint></Delete>', CREATE_BUCKET_SHAPE)).code).toBe('MalformedXML');
    expect(
      s3Error(() => parseXmlBody('<CreateBucketConfiguration><Location><Name>az</Name></Location></CreateBucketConfiguration>', CREATE_BUCKET_SHAPE)).code,
    ).toBe('NotImplemented');
    expect(
      s3Error(() => parseXmlBody('<CreateBucketConfiguration><Bucket><Type>Directory</Type></Bucket></CreateBucketConfiguration>', CREATE_BUCKET_SHAPE)).code,
    ).toBe('MalformedXML');
    const bomb = '<!DOCTYPE x [<!ENTITY a "aaaa">]><CreateBucketConfiguration><LocationConstraint>&a;</LocationConstraint></CreateBucketConfiguration>';
    expect(s3Error(() => parseXmlBody(bomb, CREATE_BUCKET_SHAPE)).code).toBe('MalformedXML');
    const twice =
      '<CreateBucketConfiguration><LocationConstraint>EU-RO-1</LocationConstraint><LocationConstraint>US-KS-2</LocationConstraint></CreateBucketConfiguration>';
    expect(s3Error(() => parseXmlBody(twice, CREATE_BUCKET_SHAPE)).code).toBe('MalformedXML');
  });
});

describe('datacenterOfLocationConstraint', () => {
  it('a datacenter in any case is that datacenter; the signing regions and nothing ask for none; anything else is passed on', () => {
    expect(datacenterOfLocationConstraint('eu-ro-1', DATACENTERS, SIGNING)).toBe('EU-RO-1');
    expect(datacenterOfLocationConstraint('US-KS-2', DATACENTERS, SIGNING)).toBe('US-KS-2');
    expect(datacenterOfLocationConstraint('auto', DATACENTERS, SIGNING)).toBeNull();
    expect(datacenterOfLocationConstraint('US-EAST-1', DATACENTERS, SIGNING)).toBeNull();
    expect(datacenterOfLocationConstraint(null, DATACENTERS, SIGNING)).toBeNull();
    expect(datacenterOfLocationConstraint('eu-west-1', DATACENTERS, SIGNING)).toBe('eu-west-1');
    // A gateway whose own region is a datacenter: naming it means that datacenter.
    expect(datacenterOfLocationConstraint('eu-ro-1', DATACENTERS, ['eu-ro-1', 'us-east-1'])).toBe('EU-RO-1');
  });
});

describe('assertRunpodBucketSettings', () => {
  it('refuses object lock and ACL-enabling ownership; S3 defaults pass', () => {
    expect(() => assertRunpodBucketSettings({}, 'b')).not.toThrow();
    expect(() =>
      assertRunpodBucketSettings({ 'x-amz-bucket-object-lock-enabled': 'false', 'x-amz-object-ownership': 'BucketOwnerEnforced' }, 'b'),
    ).not.toThrow();
    expect(s3Error(() => assertRunpodBucketSettings({ 'x-amz-bucket-object-lock-enabled': 'True' }, 'b')).code).toBe('NotImplemented');
    expect(s3Error(() => assertRunpodBucketSettings({ 'x-amz-object-ownership': 'ObjectWriter' }, 'b')).message).toMatch(/no ACLs/);
  });
});
