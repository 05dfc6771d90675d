/**
 * Reading header maps as Node gives them (`req.headers`, `req.headersDistinct`, undici's response
 * headers): a value is a string, or an array when the header came more than once.
 */
export type HeaderMap = Readonly<Record<string, string | readonly string[] | undefined>>;

/** The first value of a header (lower-case name), or undefined when absent. */
export function headerValue(headers: HeaderMap, name: string): string | undefined {
  const value = headers[name];
  return typeof value === 'string' ? value : value?.[0];
}

/** Every value of a header joined with ", " (HTTP's list form), or undefined when absent. */
export function joinedHeaderValue(headers: HeaderMap, name: string): string | undefined {
  const value = headers[name];
  return typeof value === 'string' ? value : value?.join(', ');
}
