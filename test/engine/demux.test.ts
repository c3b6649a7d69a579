// The launcher's stream splitter (engine/launcher.ts): unit output, end markers and in-band event lines,
// cut into chunks at any place, come out as the same per-unit output and the same events in order.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Demux } from '../../src/engine/launcher.js';

const END = '\0checkpoint-unit-end\n';
const EV = '\0checkpoint-ev ';

interface Unit {
  out: string;
  events: string | undefined;
}

/** What the launcher writes on stdout for these units: output, end marker, then the unit's events line. */
function stream(units: Unit[]): string {
  return units.map((u) => `${u.out}${END}${u.events === undefined ? '' : `${EV}${u.events}\n`}`).join('');
}

/** Feeds `text` in pieces cut at `cuts` and returns per-unit output and the events seen, in order. */
function split(text: string, cuts: number[], withEvents: boolean): { outs: string[]; events: string[] } {
  const outs = [''];
  const events: string[] = [];
  const d = new Demux(
    (c) => {
      outs[outs.length - 1] += c.toString('latin1');
    },
    () => outs.push(''),
    withEvents ? (e) => events.push(e) : undefined,
  );
  const at = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
  let prev = 0;
  for (const c of [...at, text.length]) {
    d.push(Buffer.from(text.slice(prev, c), 'latin1'));
    prev = c;
  }
  return { outs: outs.slice(0, -1), events };
}

// Output with NULs, newlines and pieces of our own prefix, but never one of our whole lines.
const output = fc
  .array(fc.constantFrom('a', 'é', '\n', '\0', '\0c', '\0checkpoint-', 'unit-end', 'ev ', ';', 'x\0y'), {
    maxLength: 12,
  })
  .map((parts) => parts.join(''))
  .filter((s) => !s.includes(END) && !s.includes(EV));
const events = fc.option(fc.constantFrom('E 0;S 12', 'E 1;R', 'S 7', 'X 9 cwd', 'E 0'), { nil: undefined });
const units = fc.array(fc.record({ out: output, events }), { minLength: 1, maxLength: 6 });

describe('Demux', () => {
  it('stdout: per-unit output and events survive any chunking', () => {
    fc.assert(
      fc.property(units, fc.array(fc.nat(), { maxLength: 20 }), (us, cuts) => {
        const text = stream(us);
        const { outs, events: seen } = split(text, cuts, true);
        expect(outs).toEqual(us.map((u) => u.out));
        expect(seen).toEqual(us.flatMap((u) => (u.events === undefined ? [] : [u.events])));
      }),
      { seed: 42, numRuns: 2000 },
    );
  });

  it('stderr: event-looking lines are output there, not events', () => {
    const text = `a${EV}E 0;S 1\nb${END}c${END}`;
    for (let cut = 0; cut <= text.length; cut++) {
      const { outs, events } = split(text, [cut], false);
      expect(outs).toEqual([`a${EV}E 0;S 1\nb`, 'c']);
      expect(events).toEqual([]);
    }
  });

  it('a NUL-started line that never ends is output, not held back forever', () => {
    const long = `${EV}${'x'.repeat(300)}`;
    const { outs } = split(`${long}${END}`, [10, 100, 200], true);
    expect(outs).toEqual([long]);
  });
});
