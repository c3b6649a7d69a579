// The `checkpoint` program: argument parsing; named errors carry their exit codes (src/errors.ts). Commands live
// in their own modules and return an exit code; nothing here knows how a command works.
import { Command, CommanderError, Option } from 'commander';
import { classify, EXIT_USAGE } from '../errors.js';
import { approveCommand, markDoneCommand, resetCommand, rollbackCommand } from '../session/manage.js';
import { statusCommand } from '../session/status.js';
import { explainCommand } from './explain.js';
import { reportCommand } from './report.js';
import { type Io, runCommand } from './run.js';
import { pruneCommand, runsCommand } from './runs.js';

// Replaced by scripts/build.mjs with package.json's version.
const version = '__CHECKPOINT_VERSION__';

function common(cmd: Command): Command {
  return cmd
    .option('-f, --file <path>', 'the plan file', 'checkpoint.yml')
    .option('--dir <path>', 'the checkpoint directory (default: .checkpoints beside the plan)');
}

const collect = (v: string, prev: string[] = []) => [...prev, ...v.split(',').filter(Boolean)];

export async function main(argv: string[], io: Io): Promise<number> {
  let code = 0;
  const program = new Command('checkpoint')
    .description('Resumable step runner: records finished steps and chunks, re-runs only what is incomplete.')
    .version(version)
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.out.write(s),
      writeErr: (s) => io.err.write(s),
    })
    .showSuggestionAfterError(true);
  const act =
    <A extends unknown[]>(fn: (...args: A) => Promise<number>) =>
    async (...args: A) => {
      code = await fn(...args);
    };

  common(program.command('run'))
    .description('run the plan, resuming the latest unfinished run')
    .option('--run <id>', 'resume (or create) this run')
    .option('--new', 'start a fresh run')
    .option('--time-budget <duration>', 'stop before this much time has passed (e.g. 5h30m); exit 75')
    .option('--concurrency <n>', 'most units at once (overrides the plan)')
    .option('--only <step...>', 'run only these steps (and what they need that is not done)', collect)
    .option('--shard <I/N>', 'this job runs part I of N of every batch step')
    .option('--dry-run', 'print what would run and exit')
    .option('--trace <file>', 'append OpenTelemetry spans of the run to this file (OTLP JSON lines)')
    .action(act((o: Parameters<typeof runCommand>[0]) => runCommand(o, io)));

  common(program.command('status'))
    .description('steps, states, done/failed ranges, progress and ETA')
    .option('--run <id>', 'the run to show (default: latest)')
    .option('--json', 'machine-readable output (see docs/cli.md)')
    .action(act((o: Parameters<typeof statusCommand>[0]) => statusCommand(o, io)));

  common(program.command('explain'))
    .description('what would run and why')
    .option('--run <id>', 'explain against this run (default: latest)')
    .action(act((o: Parameters<typeof explainCommand>[0]) => explainCommand(o, io)));

  common(program.command('reset'))
    .description('make work pending again (and its dependents); --unit/--item: only some units of one step')
    .argument('[steps...]', 'steps to reset')
    .option('--all', 'every step')
    .option('--failed', 'only failed units, with fresh tries')
    .option(
      '--unit <n...>',
      'only these chunk indices of the one named batch step: 3, 3,5, 3-7 or 3..7',
      collect,
    )
    .option('--item <name...>', 'only the units holding these items of the one named item-list step')
    .option('--by <name>', 'who resets (recorded; default: $GITHUB_ACTOR, else $USER)')
    .option('--run <id>', 'the run (default: latest)')
    .action(act((steps: string[], o: Parameters<typeof resetCommand>[1]) => resetCommand(steps, o, io)));

  common(program.command('mark-done'))
    .description('accept steps, or some units of one step, as done (manual intervention)')
    .argument('<steps...>', 'steps to mark done')
    .option(
      '--unit <n...>',
      'only these chunk indices of the one named batch step: 3, 3,5, 3-7 or 3..7',
      collect,
    )
    .option('--item <name...>', 'only the units holding these items of the one named item-list step')
    .option('--by <name>', 'who marks them (recorded; default: $GITHUB_ACTOR, else $USER)')
    .option('--run <id>', 'the run (default: latest)')
    .action(
      act((steps: string[], o: Parameters<typeof markDoneCommand>[1]) => markDoneCommand(steps, o, io)),
    );

  common(program.command('approve'))
    .description('approve steps with `approval: true` so the next run starts them (manual intervention)')
    .argument('<steps...>', 'steps to approve')
    .option('--by <name>', 'who approves (default: $GITHUB_ACTOR, else $USER)')
    .option('--run <id>', 'the run (default: latest)')
    .action(act((steps: string[], o: Parameters<typeof approveCommand>[1]) => approveCommand(steps, o, io)));

  common(program.command('rollback'))
    .description('run the rollback commands of done steps, newest first')
    .option('--to <step>', 'stop after rolling back this step')
    .option('--run <id>', 'the run (default: latest)')
    .action(act((o: Parameters<typeof rollbackCommand>[0]) => rollbackCommand(o, io)));

  program
    .command('report')
    .description("gather the checkpoints of a --shard run's shards into one report")
    .argument('[dirs...]', "each shard's checkpoint directory (its --dir) or run folder")
    .option('-f, --file <path>', 'the plan file (for step names and order; optional)', 'checkpoint.yml')
    .option(
      '--dir <path>',
      'a shard checkpoint directory or run folder (repeatable)',
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option('--json', 'machine-readable output (see docs/cli.md)')
    .option('--markdown', 'GitHub-flavoured Markdown (for $GITHUB_STEP_SUMMARY)')
    .option(
      '--merge <dir>',
      'also write the union of the shards’ done work as one checkpoint in this directory (any shard count resumes it)',
    )
    .action(act((dirs: string[], o: Parameters<typeof reportCommand>[1]) => reportCommand(dirs, o, io)));

  common(program.command('runs'))
    .description('list runs in the checkpoint directory')
    .option('--json', 'machine-readable output')
    .action(act((o: Parameters<typeof runsCommand>[0]) => runsCommand(o, io)));

  common(program.command('prune'))
    .description('delete old runs')
    .addOption(new Option('--older-than <duration>', 'remove runs not updated for this long (default 7d)'))
    .option('--keep <n>', 'keep the newest N runs')
    .option('--dry-run', 'only print what would be removed')
    .action(act((o: Parameters<typeof pruneCommand>[0]) => pruneCommand(o, io)));

  try {
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end here too, with exit code 0.
      return err.exitCode === 0 ? 0 : EXIT_USAGE;
    }
    const { code: c, message } = classify(err, io.env.CHECKPOINT_DEBUG === '1');
    io.err.write(`checkpoint: ${message}\n`);
    return c;
  }
}
