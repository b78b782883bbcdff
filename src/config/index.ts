export { defaultConfig, loadConfig, type LoadOptions, NON_KEY_ENV, parseConfig } from './load.ts';
export { type Config, ConfigSchema } from './schema.ts';
