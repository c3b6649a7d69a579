// The ps path as pure functions, over recorded procps listings and listings in Apple's ps format
// (fixtures/README.md): parsing, the marker read only from the environment part, and the rules that decide
// when two start times name the same process.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TRACKING_VAR } from '../../src/exec/marker.js';
import {
  compareStarts,
  describeStart,
  markerFromListing,
  markersFromListings,
  parseLstart,
  parsePsCommands,
  parsePsTable,
  psArgs,
  psFlavour,
  startKind,
  WALL_BASE,
  wallStart,
} from '../../src/exec/ps.js';
import { repoRoot } from '../support/cli.js';

const fixture = (name: string) => readFileSync(join(repoRoot, 'test/exec/fixtures', name), 'utf8');
const utc = (iso: string) => Date.parse(iso) / 1000;

describe('parseLstart', () => {
  it('reads the C locale lstart of both ps, in UTC', () => {
    expect(parseLstart('Mon Jan  6 09:12:03 2025')).toBe(utc('2025-01-06T09:12:03Z'));
    expect(parseLstart('Thu Dec  3 21:10:24 2026   ')).toBe(utc('2026-12-03T21:10:24Z'));
    expect(parseLstart('Wed Jan 15 23:59:59 2025')).toBe(utc('2025-01-15T23:59:59Z'));
  });

  it('refuses what ps did not print: other locales, impossible dates, other shapes', () => {
    for (const text of [
      'lun. janv.  6 09:12:03 2025',
      'Mon Foo  6 09:12:03 2025',
      'Mon Feb 30 09:12:03 2025',
      'Mon Jan  6 25:12:03 2025',
      'Mon Jan  6 09:12 2025',
      '09:12:03',
      '',
    ])
      expect(parseLstart(text), text).toBeUndefined();
  });
});

describe('parsePsTable', () => {
  it('reads procps rows: pid, group, parent, state letter, start as a wall time', () => {
    const t = parsePsTable(fixture('procps-table.txt'));
    expect([...t.keys()]).toEqual([1, 2, 7160, 7168, 7169, 7171, 7173]);
    expect(t.get(7160)).toEqual({
      pid: 7160,
      pgid: 7160,
      ppid: 7157,
      state: 'S',
      start: wallStart(utc('2026-12-03T21:10:24Z')),
    });
    expect(t.get(7173)).toMatchObject({ pgid: 7155, ppid: 7168 });
    expect(t.get(1)?.state).toBe('S');
  });

  it("reads Apple's rows (padded lstart, zombies)", () => {
    const t = parsePsTable(fixture('darwin-table.txt'));
    expect(t.size).toBe(8);
    expect(t.get(4102)).toEqual({
      pid: 4102,
      pgid: 4102,
      ppid: 4101,
      state: 'S',
      start: wallStart(utc('2025-01-07T14:03:27Z')),
    });
    expect(t.get(4111)?.state).toBe('Z');
    expect(t.get(10233)?.start).toBe(wallStart(utc('2025-01-15T23:59:59Z')));
  });

  it('leaves out lines it cannot read rather than guessing', () => {
    const t = parsePsTable(
      ['  PID  PGID  PPID STAT STARTED', '   12    12     1 S    someday', '   13    13     1 S', ''].join(
        '\n',
      ),
    );
    expect(t.size).toBe(0);
  });
});

describe('the marker through ps', () => {
  it('procps: only a whole word of the environment part, one value, counts', () => {
    const m = markersFromListings(
      fixture('procps-commands.txt'),
      fixture('procps-environment.txt'),
      TRACKING_VAR,
    );
    // 7160 carries it; 7168 has it in its arguments only; 7169 shows two different values; 7171 has
    // X_CHECKPOINT_TRACKING_ID; 7173 none; pid 1 and 2 show no environment.
    expect([...m]).toEqual([[7160, 'run-a.1.abcd.1']]);
  });

  it("Apple's ps: the unit and its escaped daemon, not an argument posing as a marker nor another variable", () => {
    const m = markersFromListings(
      fixture('darwin-commands.txt'),
      fixture('darwin-environment.txt'),
      TRACKING_VAR,
    );
    expect([...m]).toEqual([
      [4102, 'demo-20250107-140327.1.9f2c41aa.1'],
      [4110, 'demo-20250107-140327.1.9f2c41aa.1'],
    ]);
  });

  it('a process whose arguments changed between the two listings, or that is in only one, is nobody', () => {
    expect(markerFromListing('sleep 9 CHECKPOINT_TRACKING_ID=a', 'sleep 8', TRACKING_VAR)).toBeUndefined();
    expect(markerFromListing('sleep 80 CHECKPOINT_TRACKING_ID=a', 'sleep 8', TRACKING_VAR)).toBeUndefined();
    expect(markerFromListing('sleep 8 CHECKPOINT_TRACKING_ID=a', 'sleep 8', TRACKING_VAR)).toBe('a');
    expect(
      markerFromListing('sleep 8 CHECKPOINT_TRACKING_ID=a CHECKPOINT_TRACKING_ID=a', 'sleep 8', TRACKING_VAR),
    ).toBe('a');
    expect(markerFromListing('sleep 8 CHECKPOINT_TRACKING_ID=', 'sleep 8', TRACKING_VAR)).toBe('');
    const one = markersFromListings(
      ' 5 sleep 8\n',
      ' 5 sleep 8 CHECKPOINT_TRACKING_ID=a\n 6 x CHECKPOINT_TRACKING_ID=a\n',
      TRACKING_VAR,
    );
    expect([...one]).toEqual([[5, 'a']]);
  });

  it('parsePsCommands keeps each command as printed', () => {
    const c = parsePsCommands(fixture('darwin-commands.txt'));
    expect(c.get(4102)).toBe('bash -eo pipefail -c setsid sleep 300 &\\nsleep 300');
    expect(c.get(1)).toBe('/sbin/launchd');
  });
});

describe('start times of two kinds', () => {
  const ticks = 123_456;
  const wall = wallStart(utc('2025-01-07T14:03:27Z'));

  it('says its kind, also for values written before ps was used (ticks)', () => {
    expect(startKind(ticks)).toBe('ticks');
    expect(startKind(0)).toBe('ticks');
    expect(startKind(wall)).toBe('wall');
    expect(Number.isSafeInteger(wall)).toBe(true);
    expect(wall - WALL_BASE).toBe(utc('2025-01-07T14:03:27Z'));
    expect(describeStart(wall)).toBe('2025-01-07T14:03:27Z (ps)');
    expect(describeStart(ticks)).toMatch(/clock tick 123456/);
  });

  it('same only for equal values of one kind; other only for differing tick counts', () => {
    expect(compareStarts(ticks, ticks)).toBe('same');
    expect(compareStarts(wall, wall)).toBe('same');
    expect(compareStarts(ticks, ticks + 1)).toBe('other');
    // A wall time moves with the clock: a difference proves nothing.
    expect(compareStarts(wall, wall + 1)).toBe('unknown');
    // The other kind proves nothing, either way.
    expect(compareStarts(ticks, wall)).toBe('unknown');
    expect(compareStarts(wall, ticks)).toBe('unknown');
    expect(compareStarts(wall - WALL_BASE, wall)).toBe('unknown');
    expect(compareStarts(undefined, wall)).toBe('unknown');
    expect(compareStarts(ticks, undefined)).toBe('unknown');
  });
});

describe('psArgs', () => {
  it('asks each ps for the environment in its own spelling, never with -e (BSD: all processes)', () => {
    expect(psFlavour('darwin')).toBe('bsd');
    expect(psFlavour('linux')).toBe('procps');
    expect(psArgs('environment', 'bsd')).toEqual(['-A', '-E', '-ww', '-o', 'pid=,command=']);
    expect(psArgs('environment', 'procps')).toEqual(['-A', 'e', '-ww', '-o', 'pid=,command=']);
    expect(psArgs('commands', 'bsd')).toEqual(['-A', '-ww', '-o', 'pid=,command=']);
    expect(psArgs('table', 'bsd')).toEqual(['-A', '-o', 'pid=,pgid=,ppid=,stat=,lstart=']);
  });
});
