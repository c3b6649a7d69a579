// An engine killed with SIGKILL cannot end its units, and a unit whose `spawned` record had not reached the
// journal cannot be found by the next run. So each engine starts one watcher: a small bash that reads, on
// its own stdin (a pipe from the engine, nothing a unit can write to), which units run now: `+ N` before
// unit N is spawned, `= N PGID` once it runs, `- N` when its end is recorded, `bye` when the engine ends
// normally. When its stdin reaches
// end-of-file without `bye` — the engine is gone, however it died — it ends the units still running:
// SIGTERM to their groups and to every process carrying their markers (also those that left the group),
// SIGKILL to what is left 3 s later. Daemons of units that finished are not in its list and are left alone.
import { type ChildProcess, spawn } from 'node:child_process';
import { TRACKING_VAR } from './marker.js';
import { resolveProgram } from './process.js';

const SCRIPT = `
trap '' INT TERM HUP PIPE
declare -A live
while IFS=' ' read -r op n pg; do
  case $op in
    +) live[$n]=\${pg:-0} ;;
    =) live[$n]=$pg ;;
    -) unset "live[$n]" ;;
    bye) exit 0 ;;
  esac
done
[ \${#live[@]} -eq 0 ] && exit 0
marked() {
  local pats=() n f
  for n in "\${!live[@]}"; do pats+=(-e "$1=$2.$n"); done
  while IFS= read -r f; do f=\${f#/proc/}; printf '%s\\n' "\${f%/environ}"; done \\
    < <(grep -lzxF "\${pats[@]}" /proc/[0-9]*/environ 2>/dev/null)
}
end() {
  for n in "\${!live[@]}"; do [ "\${live[$n]}" -gt 1 ] && kill -"$1" -- "-\${live[$n]}" 2>/dev/null; done
  for p in $(marked "$2" "$3"); do kill -"$1" "$p" 2>/dev/null; done
}
end TERM "$1" "$2"
for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30; do
  alive=
  for n in "\${!live[@]}"; do [ "\${live[$n]}" -gt 1 ] && kill -0 -- "-\${live[$n]}" 2>/dev/null && alive=1; done
  [ -z "$alive" ] && [ -z "$(marked "$1" "$2")" ] && exit 0
  sleep 0.1
done
end KILL "$1" "$2"
`;

export class Watcher {
  readonly #child: ChildProcess | undefined;
  readonly #prefix: string;
  #closed = false;

  /** `prefix`: the engine's marker prefix (units' markers are `<prefix>.<n>`). */
  constructor(prefix: string, env: NodeJS.ProcessEnv) {
    this.#prefix = `${prefix}.`;
    const bash = resolveProgram('bash', env.PATH);
    const own: NodeJS.ProcessEnv = { ...env };
    delete own[TRACKING_VAR];
    try {
      this.#child = spawn(bash, ['-c', SCRIPT, 'checkpoint-watcher', TRACKING_VAR, prefix], {
        env: own,
        cwd: '/',
        // Its own group: a Ctrl-C to the terminal's foreground group reaches the engine, not the watcher.
        detached: true,
        stdio: ['pipe', 'ignore', 'ignore'],
      });
      this.#child.on('error', () => undefined);
      this.#child.stdin?.on('error', () => undefined);
      // The engine never waits for it.
      this.#child.unref();
    } catch {
      this.#child = undefined;
    }
  }

  /**
   * A unit is about to start: `marker` is one of this engine's (`<prefix>.<n>`). Told before the process
   * exists, so an engine killed right after the spawn still leaves the watcher knowing of it (it then finds
   * it by its marker).
   */
  starting(marker: string): void {
    this.#send(`+ ${this.#n(marker)}\n`);
  }

  /** The unit's process exists and leads process group `pgid`. */
  started(marker: string, pgid: number): void {
    this.#send(`= ${this.#n(marker)} ${pgid}\n`);
  }

  /** A unit's end is recorded: what it left running is the user's from now on. */
  ended(marker: string): void {
    this.#send(`- ${this.#n(marker)}\n`);
  }

  #n(marker: string): string {
    return marker.startsWith(this.#prefix) ? marker.slice(this.#prefix.length) : marker;
  }

  /** The engine ends normally: the watcher exits without ending anything. */
  close(): void {
    if (this.#closed) return;
    this.#send('bye\n');
    this.#closed = true;
    this.#child?.stdin?.end();
  }

  #send(line: string): void {
    if (this.#closed) return;
    this.#child?.stdin?.write(line);
  }
}
