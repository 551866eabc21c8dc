import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AcceptanceTracker } from '../src/core/acceptance';

const U = 'file:///a.py';
const shown = { uri: U, id: 'c1', offset: 100, text: 'return a + b\n' };

test('first show is new; showing the same id again is not', () => {
  const t = new AcceptanceTracker();
  assert.deepEqual(t.shown(shown), { isNew: true, flushed: undefined });
  assert.deepEqual(t.shown({ ...shown, offset: 107, text: 'a + b\n' }), { isNew: false, flushed: undefined });
});

test('Tab: the item command reports the whole item', () => {
  const t = new AcceptanceTracker();
  t.shown(shown);
  assert.equal(t.edit({ uri: U, offset: 100, removed: 0, inserted: 'return a + b\n' }), undefined);
  assert.deepEqual(t.acceptedWhole(U, 'c1'), { uri: U, id: 'c1', acceptedChars: null });
  assert.equal(t.flush(), undefined);
});

test('accept-word twice, then typing elsewhere reports the accepted characters', () => {
  const t = new AcceptanceTracker();
  t.shown(shown);
  assert.equal(t.edit({ uri: U, offset: 100, removed: 0, inserted: 'return ' }), undefined);
  assert.equal(t.edit({ uri: U, offset: 107, removed: 0, inserted: 'a' }), undefined);
  assert.equal(t.edit({ uri: 'file:///other.py', offset: 0, removed: 0, inserted: 'x' }), undefined);
  assert.deepEqual(t.edit({ uri: U, offset: 108, removed: 0, inserted: '*' }), { uri: U, id: 'c1', acceptedChars: 8 });
  assert.equal(t.flush(), undefined);
});

test('a new suggestion flushes the partial acceptance of the previous one', () => {
  const t = new AcceptanceTracker();
  t.shown(shown);
  t.edit({ uri: U, offset: 100, removed: 0, inserted: 'return ' });
  assert.deepEqual(t.shown({ uri: U, id: 'c2', offset: 107, text: 'b - a\n' }),
    { isNew: true, flushed: { uri: U, id: 'c1', acceptedChars: 7 } });
});

test('typing along one character at a time is not an acceptance', () => {
  const t = new AcceptanceTracker();
  t.shown(shown);
  t.edit({ uri: U, offset: 100, removed: 0, inserted: 'r' });
  t.edit({ uri: U, offset: 101, removed: 0, inserted: 'e' });
  assert.equal(t.edit({ uri: U, offset: 102, removed: 1, inserted: '' }), undefined);
});

test('accepting every piece partially counts as the whole item', () => {
  const t = new AcceptanceTracker();
  t.shown(shown);
  t.edit({ uri: U, offset: 100, removed: 0, inserted: 'return a + b' });
  t.edit({ uri: U, offset: 112, removed: 0, inserted: '\n' });
  assert.deepEqual(t.flush(), { uri: U, id: 'c1', acceptedChars: null });
});
