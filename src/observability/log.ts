/**
 * The gateway's operational log: one JSON object per line on stderr (the access log has its own
 * destination). What clients must not see — upstream error bodies, internal endpoints, stack
 * traces — is written here instead, next to the request id the client got.
 */
export type LogLevel = 'info' | 'warn' | 'error';
export type LogFields = Record<string, unknown>;
export type Logger = (level: LogLevel, msg: string, fields?: LogFields) => void;

export const logToStderr: Logger = (level, msg, fields = {}) => {
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields })}\n`);
};
