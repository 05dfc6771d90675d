/** node:util parseArgs with failures turned into UsageError that point at the command's help. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from './errors.js';

export type OptionSpec = NonNullable<ParseArgsConfig['options']>;

export interface ParsedCommand {
  values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  positionals: string[];
}

/** `--help` (or `-h`) was on the command line: its usage is printed and nothing else is done. */
export class HelpRequested extends Error {
  constructor(readonly helpCommand: string) {
    super(`help requested: ${helpCommand}`);
    this.name = 'HelpRequested';
  }
}

/**
 * Parses a command's arguments. `--help` anywhere wins over everything else, before any other
 * argument is looked at, so no command can run (or half-run) when asked for help.
 */
export function parseCommand(args: string[], options: OptionSpec, helpCommand: string): ParsedCommand {
  if (args.includes('--help') || args.includes('-h')) throw new HelpRequested(helpCommand);
  try {
    const { values, positionals } = parseArgs({ args, options, allowPositionals: true, strict: true });
    return { values, positionals };
  } catch (error) {
    // parseArgs appends advice about `--` that does not fit keygate's commands.
    const message = error instanceof Error ? error.message.replace(/ To specify a positional argument.*$/s, '') : String(error);
    throw new UsageError(message, helpCommand);
  }
}

/** A string option's value (the last one when repeated), or undefined. */
export function stringOption(parsed: ParsedCommand, name: string): string | undefined {
  const value = parsed.values[name];
  const last = Array.isArray(value) ? value[value.length - 1] : value;
  return typeof last === 'string' ? last : undefined;
}

/** All values of a repeatable string option. */
export function stringOptions(parsed: ParsedCommand, name: string): string[] | undefined {
  const value = parsed.values[name];
  if (value === undefined) return undefined;
  return (Array.isArray(value) ? value : [value]).filter((v): v is string => typeof v === 'string');
}

export function flag(parsed: ParsedCommand, name: string): boolean {
  return parsed.values[name] === true;
}

export function expectPositionals(positionals: string[], names: string[], helpCommand: string): string[] {
  if (positionals.length < names.length) {
    throw new UsageError(`Missing ${names.slice(positionals.length).join(' ')}.`, helpCommand);
  }
  if (positionals.length > names.length) {
    throw new UsageError(`Unexpected argument "${positionals[names.length]}".`, helpCommand);
  }
  return positionals;
}
