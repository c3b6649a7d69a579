// A frozen item list read without building it: `items/<step>.json` is the list's JSON as the engine wrote
// it (`JSON.stringify(items)`), so its text hashes like the list, and the places of its strings are found
// by one scan. `status`, `report` and the checks on a restored checkpoint name a few units' items or only
// verify the list; for two million items that is a scan of the text instead of two million strings
// (`JSON.parse` of such a list took 0.7 s and ~150 MB). An item is decoded when it is asked for.

/** What readers of a frozen list use: a plain `string[]` is one too. */
export interface ItemList {
  readonly length: number;
  slice(start?: number, end?: number): string[];
}

/** Thrown by `slice` when a string of the list is not valid JSON (the text was not the engine's). */
export class ItemListSyntaxError extends Error {}

class IndexedItems implements ItemList {
  readonly #text: string;
  /** Item k's JSON string (quotes included) is text[bounds[2k], bounds[2k + 1]). */
  readonly #bounds: Uint32Array;
  readonly length: number;

  constructor(text: string, bounds: Uint32Array, length: number) {
    this.#text = text;
    this.#bounds = bounds;
    this.length = length;
  }

  slice(start = 0, end = this.length): string[] {
    const from = clampIndex(start, this.length);
    const to = clampIndex(end, this.length);
    const out: string[] = [];
    for (let k = from; k < to; k += 1) {
      const a = this.#bounds[2 * k] as number;
      const b = this.#bounds[2 * k + 1] as number;
      const raw = this.#text.slice(a + 1, b - 1);
      // No escape and no raw control character (which JSON forbids): the text is the item.
      if (!raw.includes('\\') && !CONTROL.test(raw)) {
        out.push(raw);
        continue;
      }
      try {
        out.push(JSON.parse(this.#text.slice(a, b)) as string);
      } catch {
        throw new ItemListSyntaxError(`item ${k} is not a valid JSON string`);
      }
    }
    return out;
  }
}

function clampIndex(i: number, length: number): number {
  const n = Math.trunc(i);
  if (n < 0) return Math.max(0, length + n);
  return Math.min(n, length);
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: JSON strings may not hold them raw.
const CONTROL = /[\u0000-\u001f]/;

const isSpace = (c: number) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

function skipSpace(text: string, i: number): number {
  let j = i;
  while (j < text.length && isSpace(text.charCodeAt(j))) j += 1;
  return j;
}

/**
 * Indexes the JSON list of strings `text`; undefined when it is not one (a structure other than
 * `[ "…", "…" ]`). Strings are delimited, not decoded: a string holding a raw control character or a bad
 * escape is found only when `slice` reaches it (ItemListSyntaxError). The engine's own lists never hold one;
 * a list whose text hashes like its record is the engine's.
 */
export function indexItemList(text: string): ItemList | undefined {
  let i = skipSpace(text, 0);
  if (text.charCodeAt(i) !== 0x5b) return undefined;
  i = skipSpace(text, i + 1);
  let bounds = new Uint32Array(1024);
  let n = 0;
  if (text.charCodeAt(i) === 0x5d)
    return skipSpace(text, i + 1) === text.length ? new IndexedItems(text, bounds, 0) : undefined;
  for (;;) {
    if (text.charCodeAt(i) !== 0x22) return undefined;
    const open = i;
    // The closing quote is the first one not escaped: preceded by an even number of backslashes.
    let close = text.indexOf('"', open + 1);
    for (;;) {
      if (close < 0) return undefined;
      let slashes = 0;
      while (text.charCodeAt(close - 1 - slashes) === 0x5c) slashes += 1;
      if (slashes % 2 === 0) break;
      close = text.indexOf('"', close + 1);
    }
    if (2 * n + 2 > bounds.length) {
      const grown = new Uint32Array(bounds.length * 2);
      grown.set(bounds);
      bounds = grown;
    }
    bounds[2 * n] = open;
    bounds[2 * n + 1] = close + 1;
    n += 1;
    i = skipSpace(text, close + 1);
    const c = text.charCodeAt(i);
    if (c === 0x2c) {
      i = skipSpace(text, i + 1);
      continue;
    }
    if (c === 0x5d && skipSpace(text, i + 1) === text.length) return new IndexedItems(text, bounds, n);
    return undefined;
  }
}
