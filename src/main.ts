#!/usr/bin/env bun
/** ducktail's entry point: parses the command line and runs one command. */
import { parseArgs, USAGE } from './cli/args.ts';
import { AppError, ConfigError, errorMessage } from './errors.ts';
import { VERSION } from './version.ts';

async function main(argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  switch (args.command) {
    case 'version':
      console.log(`ducktail ${VERSION}`);
      return 0;
    case 'run': {
      const { runCommand } = await import('./cli/run.ts');
      return runCommand(args);
    }
    case 'check': {
      const { checkCommand } = await import('./cli/run.ts');
      return checkCommand(args);
    }
    case 'archive': {
      const { archiveCommand } = await import('./cli/archive.ts');
      return archiveCommand(args);
    }
    case 'demo': {
      const { demoCommand } = await import('./cli/demo.ts');
      return demoCommand(args);
    }
    case 'selftest': {
      const { selftestCommand } = await import('./cli/run.ts');
      return selftestCommand();
    }
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return 0;
    default:
      process.stderr.write(`unknown command "${args.command}"\n\n${USAGE}`);
      return 2;
  }
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (e) {
  if (e instanceof ConfigError) {
    process.stderr.write(`${e.message}\n`);
    process.exitCode = 2;
  } else {
    const code = e instanceof AppError ? ` [${e.code}]` : '';
    process.stderr.write(`ducktail: ${errorMessage(e)}${code}\n`);
    process.exitCode = e instanceof AppError && e.code === 'USAGE' ? 2 : 1;
  }
}
// Open sockets or timers of a failed start must not keep the process alive.
process.exit(process.exitCode ?? 0);
