/**
 * A real pseudo-terminal for tests: an interactive bash inside a private tmux server. Keys are
 * typed as a user types them (Ctrl-C included, delivered by the terminal to its foreground
 * process group); the screen is read back with capture-pane. tmux comes from Debian
 * (scripts/ci-install.sh installs it).
 */
const PROMPT = 'PROMPT$';

export const tmuxPath = Bun.which('tmux');

export interface Terminal {
  /** Types `keys` (tmux key names: "C-c", "Enter", or literal text). */
  keys(...keys: string[]): Promise<void>;
  /** The screen's text. */
  screen(): Promise<string>;
  /** Waits until the screen matches `pattern`; throws with the screen after `timeoutMs`. */
  waitFor(pattern: RegExp, timeoutMs: number): Promise<void>;
  /** Whether the shell's prompt is the last line on the screen (the foreground job ended). */
  atPrompt(): Promise<boolean>;
  /** The pid of the terminal's shell, which leads the terminal's session. */
  shellPid(): Promise<number>;
  /** Kills the tmux server and everything still running in it. */
  close(): Promise<void>;
}

/** Opens a terminal running `bash --norc -i` in `cwd` with `env` exported. */
export async function openTerminal(opts: { cwd: string; env: Record<string, string> }): Promise<Terminal> {
  if (!tmuxPath) throw new Error('tmux is not installed: run scripts/ci-install.sh (Debian package tmux)');
  const socket = `ducktail-test-${process.pid}-${Math.floor(Math.random() * 1e9)}`;
  const tmux = async (...args: string[]) => {
    const p = Bun.spawn([tmuxPath!, '-L', socket, ...args], { stdout: 'pipe', stderr: 'pipe' });
    const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    if (code !== 0) throw new Error(`tmux ${args[0]}: ${err.trim()}`);
    return out;
  };
  const exports = Object.entries({ ...opts.env, PS1: `${PROMPT} ` })
    .map(([k, v]) => `${k}='${v.replaceAll("'", "'\\''")}'`)
    .join(' ');
  await tmux('new-session', '-d', '-s', 't', '-x', '200', '-y', '50', '-c', opts.cwd, `env ${exports} bash --norc -i`);
  const screen = () => tmux('capture-pane', '-p', '-t', 't');
  const term: Terminal = {
    async keys(...keys) {
      await tmux('send-keys', '-t', 't', ...keys);
    },
    screen,
    async waitFor(pattern, timeoutMs) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const text = await screen();
        if (pattern.test(text)) return;
        if (Date.now() > until) throw new Error(`terminal: ${pattern} not seen in ${timeoutMs} ms; screen:\n${text}`);
        await Bun.sleep(100);
      }
    },
    async atPrompt() {
      const lines = (await screen()).split('\n').filter((l) => l.trim() !== '');
      return lines.at(-1)?.trim() === PROMPT;
    },
    async shellPid() {
      return Number((await tmux('display-message', '-p', '-t', 't', '#{pane_pid}')).trim());
    },
    async close() {
      await tmux('kill-server').catch(() => {});
    },
  };
  await term.waitFor(/PROMPT\$/, 10_000);
  return term;
}
