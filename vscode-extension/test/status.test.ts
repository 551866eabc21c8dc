import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clientStateView, parseStatus, speedLine, statsReport, statusView } from '../src/core/status';

const READY = {
  state: 'ready', message: '', model: 'qwen2.5-coder-0.5b', device: 'cpu', dtype: 'bfloat16', backend: 'transformers',
  indexProgress: null,
  stats: { completions: 12, p50Ms: 180.0, p95Ms: 540.4, lastMs: 149.6, lastTokens: 14,
    acceptedPerStep: 2.94, speedup: 2.36, cacheHitRate: 0.35 },
};

test('parseStatus rejects non-status payloads', () => {
  assert.equal(parseStatus(null), undefined);
  assert.equal(parseStatus({ state: 'sleeping' }), undefined);
});

test('parseStatus fills missing fields with empty values', () => {
  assert.deepEqual(parseStatus({ state: 'loading', stats: { lastMs: 'fast' } }), {
    state: 'loading', message: '', model: '', device: '', dtype: '', backend: '', indexProgress: null,
    stats: { completions: null, p50Ms: null, p95Ms: null, lastMs: null, lastTokens: null,
      acceptedPerStep: null, speedup: null, cacheHitRate: null },
  });
});

test('ready with stats shows the last completion speed', () => {
  assert.deepEqual(statusView(parseStatus(READY)!), {
    text: '$(zap) codeswift 150 ms · 2.9 tok/step · 2.4×',
    tooltip: 'codeswift: ready\nqwen2.5-coder-0.5b · cpu · bfloat16 · transformers\n' +
      '12 completions: p50 180 ms, p95 540 ms\nlast: 150 ms · 2.9 tok/step · 2.4× (14 tokens)\n' +
      'cache hits 35%\nClick for codeswift commands',
    severity: 'normal',
  });
});

test('speedLine leaves out what the server did not send', () => {
  const s = parseStatus({ state: 'ready', stats: { lastMs: 80, speedup: 1.04 } })!;
  assert.equal(speedLine(s.stats), '80 ms · 1.0×');
  assert.equal(statusView(parseStatus({ state: 'ready' })!).text, '$(check) codeswift');
});

test('loading, indexing and error texts', () => {
  assert.equal(statusView(parseStatus({ state: 'loading' })!).text, '$(loading~spin) codeswift: loading model');
  assert.equal(statusView(parseStatus({ state: 'indexing', indexProgress: 0.426 })!).text,
    '$(loading~spin) codeswift: indexing 43%');
  assert.equal(statusView(parseStatus({ state: 'indexing' })!).text, '$(loading~spin) codeswift: indexing');
  assert.deepEqual(statusView(parseStatus({ state: 'error', message: 'CUDA out of memory' })!), {
    text: '$(error) codeswift: error',
    tooltip: 'codeswift: error — CUDA out of memory\nClick for codeswift commands',
    severity: 'error',
  });
});

test('client-side states', () => {
  assert.deepEqual(clientStateView('disabled'), { text: '$(circle-slash) codeswift: off',
    tooltip: 'codeswift is disabled (codeswift.enable)\nClick for codeswift commands', severity: 'normal' });
  assert.deepEqual(clientStateView('failed', 'codeswift is not installed'), { text: '$(error) codeswift: error',
    tooltip: 'codeswift is not installed\nClick for codeswift commands', severity: 'error' });
  assert.equal(clientStateView('starting').text, '$(loading~spin) codeswift: starting');
});

test('stats report table', () => {
  assert.equal(statsReport(parseStatus(READY)!), [
    '# codeswift stats', '', 'State: **ready**', '',
    'Model `qwen2.5-coder-0.5b` on cpu (bfloat16, transformers)', '',
    '| metric | value |', '|---|---|',
    '| completions | 12 |', '| latency p50 | 180 ms |', '| latency p95 | 540 ms |',
    '| last latency | 150 ms |', '| last tokens | 14 |', '| accepted tokens per step | 2.94 |',
    '| speedup vs. greedy | 2.36× |', '| cache hit rate | 35% |', '',
  ].join('\n'));
  assert.match(statsReport(parseStatus({ state: 'loading' })!), /\| completions \| – \|/);
});
