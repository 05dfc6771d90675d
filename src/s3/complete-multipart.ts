/**
 * CompleteMultipartUpload request bodies, checked before they go upstream. The body is forwarded
 * as the client sent it (its checksums and ETags are the upstream's business), but only once it is
 * a well-formed, schema-shaped document: S3 answers MalformedXML / InvalidPartOrder for the rest,
 * while upstreams like moto fail with an HTML 500 and others might misread it.
 */
import { S3Error } from '../errors.js';
import { parseXmlBody, type XmlBody, type XmlBodyShape } from './xml-body.js';

/** S3's limits: part numbers 1..10000, so at most 10000 parts per upload. */
export const MAX_PART_NUMBER = 10_000;

export interface CompletedPart {
  partNumber: number;
  etag: string;
  /** ChecksumCRC32, ChecksumSHA256, … as sent (base64), by element name. */
  checksums: Record<string, string>;
}

const CHECKSUM_ELEMENTS = ['ChecksumCRC32', 'ChecksumCRC32C', 'ChecksumCRC64NVME', 'ChecksumSHA1', 'ChecksumSHA256'] as const;

export const COMPLETE_MULTIPART_SHAPE: XmlBodyShape = {
  root: 'CompleteMultipartUpload',
  rootFields: [],
  entry: 'Part',
  entryFields: ['PartNumber', 'ETag', ...CHECKSUM_ELEMENTS],
  maxEntries: MAX_PART_NUMBER,
  tooManyEntries: () => new S3Error('MalformedXML', `A multipart upload has at most ${MAX_PART_NUMBER} parts; this document lists more.`),
};

/** The parts of a read CompleteMultipartUpload body; throws the S3Error S3 would answer. */
export function completedParts(document: XmlBody): CompletedPart[] {
  if (document.entries.length === 0) {
    throw new S3Error('MalformedXML', 'The <CompleteMultipartUpload> document must list at least one <Part>.');
  }
  const parts = document.entries.map(readPart);
  // S3's rule is ascending part numbers. A part number listed again right after itself (a part
  // uploaded twice, listed per upload) is not out of order: it goes upstream, which decides, as it
  // would without the gateway (moto and MinIO accept it; the last upload of a part number is the part).
  for (let index = 1; index < parts.length; index++) {
    if (parts[index]!.partNumber < parts[index - 1]!.partNumber) {
      throw new S3Error(
        'InvalidPartOrder',
        `Part ${parts[index]!.partNumber} follows part ${parts[index - 1]!.partNumber}: list the parts in ascending PartNumber order.`,
      );
    }
  }
  return parts;
}

/** Parses and checks a whole CompleteMultipartUpload body held in memory. */
export function parseCompleteMultipartUpload(xml: string): CompletedPart[] {
  return completedParts(parseXmlBody(xml, COMPLETE_MULTIPART_SHAPE));
}

function readPart(fields: Record<string, string>): CompletedPart {
  const { PartNumber, ETag } = fields;
  if (PartNumber === undefined || !/^\s*\d{1,5}\s*$/.test(PartNumber)) {
    throw new S3Error('MalformedXML', 'Every <Part> needs one <PartNumber> holding a whole number.');
  }
  const partNumber = Number(PartNumber);
  if (partNumber < 1 || partNumber > MAX_PART_NUMBER) {
    throw new S3Error('InvalidArgument', `Part numbers must be between 1 and ${MAX_PART_NUMBER}; got ${partNumber}.`, {
      details: { ArgumentName: 'PartNumber', ArgumentValue: partNumber },
    });
  }
  if (ETag === undefined || ETag.trim() === '') {
    throw new S3Error('MalformedXML', `<Part> ${partNumber} needs one non-empty <ETag> (the ETag UploadPart answered).`);
  }
  const checksums: Record<string, string> = {};
  for (const name of CHECKSUM_ELEMENTS) {
    if (fields[name] !== undefined) checksums[name] = fields[name];
  }
  return { partNumber, etag: ETag, checksums };
}
