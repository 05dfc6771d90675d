/**
 * Header helpers for callers that have Node's raw header list. Node joins repeated headers with ', '
 * (and drops some duplicates), while SigV4 joins repeated values with ','; building the header map
 * from `req.rawHeaders` keeps every value so canonical headers match what the client signed.
 */

/** Lower-case name -> every value in arrival order (like Node's `req.headersDistinct`). */
export function headersFromRawHeaders(rawHeaders: readonly string[]): Record<string, string[]> {
  const headers: Record<string, string[]> = Object.create(null) as Record<string, string[]>;
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toLowerCase();
    (headers[name] ??= []).push(rawHeaders[i + 1]!);
  }
  return headers;
}
