// The frozen list read by index (src/journal/item-list.ts) gives exactly what JSON.parse gives, for any list
// the engine writes and any slice of it, and refuses what is not a JSON list of strings.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ItemListSyntaxError, indexItemList } from '../../src/journal/item-list.js';

describe('indexItemList', () => {
  it('any list of strings, any slice: the same items as JSON.parse', () => {
    fc.assert(
      fc.property(
        fc.array(fc.string({ unit: 'binary' }), { maxLength: 40 }),
        fc.integer({ min: -50, max: 50 }),
        fc.integer({ min: -50, max: 50 }),
        fc.boolean(),
        (items, a, b, pretty) => {
          const text = pretty ? JSON.stringify(items, null, 2) : `${JSON.stringify(items)}\n`;
          const list = indexItemList(text);
          expect(list?.length).toBe(items.length);
          expect(list?.slice()).toEqual(items);
          expect(list?.slice(a, b)).toEqual(items.slice(a, b));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('text that is not a JSON list of strings: undefined, or refused where an item is read', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 30 }), (text) => {
        let parsed: unknown;
        try {
          parsed = JSON.parse(text);
        } catch {
          parsed = undefined;
        }
        const list = indexItemList(text);
        const isList = Array.isArray(parsed) && parsed.every((x) => typeof x === 'string');
        if (isList) expect(list?.slice()).toEqual(parsed);
        else if (list !== undefined) expect(() => list.slice()).toThrow(ItemListSyntaxError);
      }),
      { numRuns: 2000 },
    );
  });

  it.each([
    ['{}', undefined],
    ['[1, 2]', undefined],
    ['["a", 1]', undefined],
    ['["a",]', undefined],
    ['["a"', undefined],
    ['["a"] x', undefined],
    ['["a\\"b", "c\\\\"]', ['a"b', 'c\\']],
    ['  [ ]  ', []],
  ])('%s', (text, expected) => {
    expect(indexItemList(text)?.slice()).toEqual(expected);
  });

  it('a raw control character or a bad escape is refused when read', () => {
    expect(() => indexItemList('["a\\qb"]')?.slice()).toThrow(ItemListSyntaxError);
    const withNewline = indexItemList('["a\nb\\n"]');
    expect(() => withNewline?.slice()).toThrow(ItemListSyntaxError);
    // Raw control characters without any escape: the fast path must refuse them too.
    expect(() => indexItemList(`["a${String.fromCharCode(1)}b"]`)?.slice()).toThrow(ItemListSyntaxError);
    expect(() => indexItemList(`["a${String.fromCharCode(10)}b"]`)?.slice()).toThrow(ItemListSyntaxError);
  });
});
