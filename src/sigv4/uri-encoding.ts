/**
 * SigV4 URI encoding as S3 applies it: every byte of the *decoded* value is percent-encoded with
 * upper-case hex, except the RFC 3986 unreserved set (A-Z a-z 0-9 - . _ ~) and, in paths, '/'.
 *
 * Input strings come from Node's request line, where each char is one byte (latin1). Chars above
 * U+00FF can only come from callers that hold decoded text, so they are taken as UTF-8.
 */

const HEX = '0123456789ABCDEF';

/** 1 for unreserved ASCII bytes. */
const UNRESERVED = new Uint8Array(128);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~') {
  UNRESERVED[c.charCodeAt(0)] = 1;
}

/** Percent-escapes ('%XX') for every byte, built once. */
const ESCAPES: string[] = Array.from({ length: 256 }, (_, b) => '%' + HEX[b >> 4]! + HEX[b & 15]!);

const SLASH = 0x2f;
const PERCENT = 0x25;
const PLUS = 0x2b;

function hexValue(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  if (code >= 0x41 && code <= 0x46) return code - 0x37;
  if (code >= 0x61 && code <= 0x66) return code - 0x57;
  return -1;
}

function isUpperHex(code: number): boolean {
  return (code >= 0x30 && code <= 0x39) || (code >= 0x41 && code <= 0x46);
}

/**
 * True when `raw` already is its own canonical encoding, so the hot path can skip decoding: only
 * unreserved chars, '/' (if allowed) and upper-case escapes of bytes that must stay escaped.
 */
function isAlreadyCanonical(raw: string, keepSlash: boolean): boolean {
  const length = raw.length;
  for (let i = 0; i < length; i++) {
    const code = raw.charCodeAt(i);
    if (code < 128 && UNRESERVED[code] === 1) continue;
    if (code === SLASH && keepSlash) continue;
    if (code !== PERCENT || i + 2 >= length) return false;
    const hi = raw.charCodeAt(i + 1);
    const lo = raw.charCodeAt(i + 2);
    if (!isUpperHex(hi) || !isUpperHex(lo)) return false;
    const byte = (hexValue(hi) << 4) | hexValue(lo);
    // An escape of an unreserved byte (e.g. %7E) or of '/' canonicalizes to the bare char.
    if ((byte < 128 && UNRESERVED[byte] === 1) || (byte === SLASH && keepSlash)) return false;
    i += 2;
  }
  return true;
}

/**
 * Decodes percent-escapes to bytes. Malformed escapes ('%G1', a trailing '%') stay literal, like
 * lenient servers do, so they canonicalize to '%25…' rather than failing the request outright.
 */
export function percentDecodeToBytes(raw: string, plusAsSpace: boolean): Buffer {
  const out = Buffer.allocUnsafe(raw.length * 3);
  let n = 0;
  for (let i = 0; i < raw.length; i++) {
    const code = raw.charCodeAt(i);
    if (code === PERCENT && i + 2 < raw.length) {
      const hi = hexValue(raw.charCodeAt(i + 1));
      const lo = hexValue(raw.charCodeAt(i + 2));
      if (hi >= 0 && lo >= 0) {
        out[n++] = (hi << 4) | lo;
        i += 2;
        continue;
      }
    }
    if (code === PLUS && plusAsSpace) {
      out[n++] = 0x20;
    } else if (code < 0x100) {
      out[n++] = code;
    } else {
      const codePoint = raw.codePointAt(i)!;
      if (codePoint > 0xffff) i++;
      n += out.write(String.fromCodePoint(codePoint), n, 'utf8');
    }
  }
  return out.subarray(0, n);
}

/** Percent-encodes bytes with the SigV4 rules. */
export function encodeBytes(bytes: Uint8Array, keepSlash: boolean): string {
  let out = '';
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if ((b < 128 && UNRESERVED[b] === 1) || (b === SLASH && keepSlash)) out += String.fromCharCode(b);
    else out += ESCAPES[b]!;
  }
  return out;
}

/** SigV4-encodes text (UTF-8), e.g. a decoded object key or query value. */
export function uriEncode(text: string, keepSlash = false): string {
  // Most names, keys and values encode to themselves: no bytes to copy, no string to build.
  return encodesToItself(text, keepSlash) ? text : encodeBytes(Buffer.from(text, 'utf8'), keepSlash);
}

function encodesToItself(text: string, keepSlash: boolean): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (!((code < 128 && UNRESERVED[code] === 1) || (code === SLASH && keepSlash))) return false;
  }
  return true;
}

/**
 * Canonical URI of a raw request path the way S3 computes it: decode, then re-encode each byte,
 * keeping '/'. No dot-segment or slash normalization (S3 keys may contain '//' and '..'). A '+' in
 * a path is a literal plus.
 */
export function canonicalPath(rawPath: string): string {
  if (rawPath === '') return '/';
  if (isAlreadyCanonical(rawPath, true)) return rawPath;
  return encodeBytes(percentDecodeToBytes(rawPath, false), true);
}

/** Canonical form of one query key or value: form-decoded ('+' is a space), then SigV4-encoded. */
export function canonicalQueryComponent(raw: string): string {
  if (isAlreadyCanonical(raw, false)) return raw;
  return encodeBytes(percentDecodeToBytes(raw, true), false);
}

/** Decodes a query component to text (UTF-8), for reading X-Amz-* auth parameters. */
export function decodeQueryComponent(raw: string): string {
  if (!raw.includes('%') && !raw.includes('+')) return raw;
  return percentDecodeToBytes(raw, true).toString('utf8');
}
