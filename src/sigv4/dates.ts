/** SigV4 timestamps: ISO 8601 basic format (yyyymmddThhmmssZ) and the HTTP Date header fallback. */

/** Parses yyyymmddThhmmssZ; undefined unless it names a real UTC instant (no 20130231, no 25h). */
export function parseAmzDate(value: string): Date | undefined {
  // Hand-rolled rather than a regex: this runs on every request.
  if (value.length !== 16 || value.charCodeAt(8) !== 0x54 /* T */ || value.charCodeAt(15) !== 0x5a /* Z */) return undefined;
  const year = digits(value, 0, 4);
  const month = digits(value, 4, 2);
  const day = digits(value, 6, 2);
  const hour = digits(value, 9, 2);
  const minute = digits(value, 11, 2);
  const second = digits(value, 13, 2);
  if (year < 0 || month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 59) return undefined;
  const date = new Date(Date.UTC(year, month - 1, day, hour, minute, second));
  // Date.UTC rolls 20130231 over into March; a real date keeps its day of month.
  return date.getUTCDate() === day && date.getUTCFullYear() === year ? date : undefined;
}

/** The decimal number in value[start, start+length), or -1 if any char is not a digit. */
function digits(value: string, start: number, length: number): number {
  let n = 0;
  for (let i = start; i < start + length; i++) {
    const d = value.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

export function formatAmzDate(date: Date): string {
  return date.toISOString().replace(/[-:]|\.\d{3}/g, '');
}

/** yyyy-mm-ddThh:mm:ssZ, the form S3 uses in ServerTime / Expires error details. */
export function formatIsoSeconds(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

const HTTP_DATE = /^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$/;

/** Parses an HTTP `Date` header (IMF-fixdate, the only form SigV4 clients send). */
export function parseHttpDate(value: string): Date | undefined {
  if (!HTTP_DATE.test(value)) return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : new Date(ms);
}
