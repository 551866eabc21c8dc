import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GENERATE_DEFAULTS, generateParams, StreamInsertion } from '../src/core/generate';

test('the request carries the cursor, the partial result token and the defaults', () => {
  assert.deepEqual(generateParams('file:///a.py', 3, 4, 'tok-1'), {
    textDocument: { uri: 'file:///a.py' }, position: { line: 3, character: 4 }, partialResultToken: 'tok-1',
    maxTokens: GENERATE_DEFAULTS.maxTokens, stop: 'block', repetitionPenalty: 1,
  });
});

test('pieces are inserted one after another from the cursor', () => {
  const s = new StreamInsertion(10);
  assert.equal(s.add('def '), 10);
  assert.equal(s.add('f():\n'), 14);
  assert.equal(s.offset, 19);
  assert.equal(s.rest('def f():\n    pass\n'), '    pass\n');
  assert.equal(s.rest('def f():\n'), '');
});

test('a reply that does not start with the streamed text is reported, not spliced', () => {
  const s = new StreamInsertion(0);
  s.add('abc');
  assert.equal(s.rest('abd'), undefined);
});
