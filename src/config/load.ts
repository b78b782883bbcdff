import { existsSync, readFileSync } from 'node:fs';
import * as v from 'valibot';
import { ConfigError } from '../errors.ts';
import { type Config, ConfigSchema } from './schema.ts';

/** DUCKTAIL_* variables that are not config keys. */
export const NON_KEY_ENV = new Set(['DUCKTAIL_CONFIG', 'DUCKTAIL_HOME']);
/** Keys whose values are free-form maps rather than fixed keys. */
const OPEN_MAPS = new Set(['tiering.tables']);

/** Every default, as the example file documents them. */
export function defaultConfig(): Config {
  return v.parse(ConfigSchema, {});
}

/** Validates a raw object (parsed TOML plus overrides); throws ConfigError listing every problem. */
export function parseConfig(raw: unknown, source: string): Config {
  const problems = unknownKeys(raw, defaultConfig(), '', source);
  const result = v.safeParse(ConfigSchema, raw);
  if (!result.success) {
    for (const issue of result.issues) {
      const path = v.getDotPath(issue) ?? '(top level)';
      const got = issue.path ? issue.path[issue.path.length - 1]?.value : issue.input;
      problems.push(`${path}: ${issue.message} (in ${source}; got ${JSON.stringify(got)})`);
    }
  }
  if (problems.length > 0 || !result.success) throw new ConfigError(problems);
  return result.output;
}

/** Options of loadConfig. */
export interface LoadOptions {
  /** TOML file; missing with allowMissingFile means defaults plus environment. */
  path?: string | undefined;
  env?: Record<string, string | undefined>;
  allowMissingFile?: boolean;
}

/** Reads the TOML file, applies DUCKTAIL_<SECTION>_<KEY> overrides, validates. */
export function loadConfig(opts: LoadOptions = {}): Config {
  let raw: Record<string, unknown> = {};
  let source = 'defaults';
  if (opts.path && existsSync(opts.path)) {
    source = opts.path;
    try {
      raw = Bun.TOML.parse(readFileSync(opts.path, 'utf8')) as Record<string, unknown>;
    } catch (e) {
      throw new ConfigError([`${opts.path}: not valid TOML: ${(e as Error).message}`]);
    }
  } else if (opts.path && !opts.allowMissingFile) {
    throw new ConfigError([
      `${opts.path}: no such file. Start from the reference: cp config/ducktail.example.toml ${opts.path}`,
    ]);
  }
  const problems: string[] = [];
  applyEnv(raw, opts.env ?? {}, problems);
  if (Object.keys(opts.env ?? {}).some(isKeyVar)) source = `${source} + environment`;
  if (problems.length > 0) {
    try {
      parseConfig(raw, source);
    } catch (e) {
      if (e instanceof ConfigError) problems.push(...e.problems);
    }
    throw new ConfigError(problems);
  }
  return parseConfig(raw, source);
}

function isKeyVar(name: string): boolean {
  return name.startsWith('DUCKTAIL_') && !NON_KEY_ENV.has(name);
}

/** Sets raw[section][key] from each DUCKTAIL_SECTION_KEY, coerced to the default's type. */
function applyEnv(raw: Record<string, unknown>, env: Record<string, string | undefined>, problems: string[]): void {
  const defaults = defaultConfig() as unknown as Record<string, Record<string, unknown>>;
  for (const [name, value] of Object.entries(env)) {
    if (!isKeyVar(name) || value === undefined) continue;
    const rest = name.slice('DUCKTAIL_'.length).toLowerCase();
    const cut = rest.indexOf('_');
    const section = cut > 0 ? rest.slice(0, cut) : rest;
    const key = cut > 0 ? rest.slice(cut + 1) : '';
    const sectionDefaults = defaults[section];
    if (!sectionDefaults || !(key in sectionDefaults)) {
      problems.push(
        `${name}: names no config key; use DUCKTAIL_<SECTION>_<KEY> with a key of config/ducktail.example.toml ` +
          `(sections: ${Object.keys(defaults).join(', ')})`,
      );
      continue;
    }
    const target = (raw[section] ??= {}) as Record<string, unknown>;
    target[key] = coerce(value, sectionDefaults[key], name, problems);
  }
}

function coerce(value: string, example: unknown, name: string, problems: string[]): unknown {
  if (typeof example === 'number') return value.trim() === '' || Number.isNaN(Number(value)) ? value : Number(value);
  if (typeof example === 'boolean') {
    if (/^(true|1|yes)$/i.test(value)) return true;
    if (/^(false|0|no)$/i.test(value)) return false;
    return value;
  }
  if (Array.isArray(example) || (typeof example === 'object' && example !== null)) {
    if (value.trim().startsWith('[') || value.trim().startsWith('{')) {
      try {
        return JSON.parse(value);
      } catch (e) {
        problems.push(`${name}: not valid JSON: ${(e as Error).message}`);
        return value;
      }
    }
    if (Array.isArray(example)) return value.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  }
  return value;
}

/** Every key of `raw` that the config does not have, with the allowed keys at that level. */
function unknownKeys(raw: unknown, shape: unknown, path: string, source: string): string[] {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return [];
  if (typeof shape !== 'object' || shape === null || Array.isArray(shape) || OPEN_MAPS.has(path)) return [];
  const allowed = Object.keys(shape);
  const out: string[] = [];
  for (const [key, value] of Object.entries(raw)) {
    const p = path ? `${path}.${key}` : key;
    if (!(key in shape)) {
      out.push(`${p}: unknown key (in ${source}); allowed keys${path ? ` in [${path}]` : ''}: ${allowed.join(', ')}`);
    } else {
      out.push(...unknownKeys(value, (shape as Record<string, unknown>)[key], p, source));
    }
  }
  return out;
}
