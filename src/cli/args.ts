import { AppError } from '../errors.ts';

/** Parsed command line: the command and its flags. */
export interface Args {
  command: string;
  config?: string;
  rest: string[];
}

/** Parses `ducktail <command> [--config PATH]`. */
export function parseArgs(argv: string[]): Args {
  const [first, ...others] = argv;
  const command = first === '--version' || first === '-v' ? 'version' : (first ?? 'help');
  const args: Args = { command, rest: [] };
  for (let i = 0; i < others.length; i++) {
    const a = others[i]!;
    if (a === '--config' || a === '-c') {
      const v = others[++i];
      if (!v) throw new AppError('USAGE', '--config needs a path, e.g. --config config/ducktail.toml');
      args.config = v;
    } else if (a.startsWith('--config=')) {
      args.config = a.slice('--config='.length);
    } else {
      args.rest.push(a);
    }
  }
  return args;
}

/** The usage text. */
export const USAGE = `usage: ducktail <command> [--config PATH]

commands:
  run       run the appliance (default config: config/ducktail.toml)
  demo      embedded PostgreSQL + synthetic orders + the pipeline + API on 127.0.0.1:8080
  archive   run one tiering pass now (asks the running instance, or runs alone)
  check     validate the config and PostgreSQL's prerequisites, print what to fix
  version   print the version

Every config key can be overridden by DUCKTAIL_<SECTION>_<KEY>, e.g. DUCKTAIL_SOURCE_URL.
`;
