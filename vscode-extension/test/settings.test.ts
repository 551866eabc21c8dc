import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  changedKeys, DEFAULT_SETTINGS, documentSelector, readSettings, type Settings, toInitializationOptions,
} from '../src/core/settings';

const reader = (values: Record<string, unknown>) => (key: keyof Settings) => values[key];

test('unset settings take the documented defaults', () => {
  const { settings, warnings } = readSettings(reader({}));
  assert.deepEqual(warnings, []);
  assert.deepEqual(toInitializationOptions(settings), {
    model: 'qwen2.5-coder-0.5b', device: 'auto', dtype: 'auto', backend: 'auto', maxTokens: 64, debounceMs: 75,
    index: true, serverUrl: null, temperature: 0, verifyCached: true, corpus: 'auto',
  });
});

test('set values reach initializationOptions, strings trimmed', () => {
  const { settings, warnings } = readSettings(reader({
    model: ' /tmp/tiny ', device: 'cuda:1', dtype: 'float32', backend: 'llamacpp', maxTokens: 4096, debounceMs: 0,
    index: false, serverUrl: 'http://gpu-box:8000', temperature: 0.4, verifyCached: false, corpus: ' off ',
  }));
  assert.deepEqual(warnings, []);
  assert.deepEqual(toInitializationOptions(settings), {
    model: '/tmp/tiny', device: 'cuda:1', dtype: 'float32', backend: 'llamacpp', maxTokens: 4096, debounceMs: 0,
    index: false, serverUrl: 'http://gpu-box:8000', temperature: 0.4, verifyCached: false, corpus: 'off',
  });
});

test('bad values fall back to defaults with one warning each', () => {
  const { settings, warnings } = readSettings(reader({
    device: 'tpu', dtype: 'fp8', backend: 'onnx', maxTokens: 4097, debounceMs: -1, languages: [], serverUrl: 'gpu-box', enable: 'yes', model: '  ', temperature: -1,
  }));
  assert.equal(settings.device, 'auto');
  assert.equal(settings.dtype, 'auto');
  assert.equal(settings.backend, 'auto');
  assert.equal(settings.maxTokens, 64);
  assert.equal(settings.debounceMs, 75);
  assert.deepEqual(settings.languages, DEFAULT_SETTINGS.languages);
  assert.equal(settings.serverUrl, '');
  assert.equal(settings.enable, true);
  assert.equal(settings.model, 'qwen2.5-coder-0.5b');
  assert.deepEqual(warnings, [
    'codeswift.enable: expected true or false, got "yes"; using true',
    'codeswift.model: expected a model name, folder or .gguf file, got "  "; using "qwen2.5-coder-0.5b"',
    'codeswift.device: expected one of auto, cuda, mps, cpu (or cuda:N), got "tpu"; using "auto"',
    'codeswift.dtype: expected one of auto, bfloat16, float16, float32, got "fp8"; using "auto"',
    'codeswift.backend: expected one of auto, transformers, llamacpp, got "onnx"; using "auto"',
    'codeswift.maxTokens: expected an integer from 1 to 4096, got 4097; using 64',
    'codeswift.debounceMs: expected an integer from 0 to 10000, got -1; using 75',
    'codeswift.languages: expected a non-empty list of language ids, got []; using ' +
      '["python","javascript","javascriptreact","typescript","typescriptreact","go","rust","java","c","cpp"]',
    'codeswift.serverUrl: expected an http(s) URL or "", got "gpu-box"; using ""',
    'codeswift.temperature: expected a number from 0 to 5, got -1; using 0',
  ]);
});

test('readSettings does not share the default languages array', () => {
  const { settings } = readSettings(reader({}));
  settings.languages.push('cobol');
  assert.equal(DEFAULT_SETTINGS.languages.includes('cobol'), false);
});

test('document selector covers files and untitled buffers per language', () => {
  assert.deepEqual(documentSelector(['python', 'go']), [
    { scheme: 'file', language: 'python' }, { scheme: 'untitled', language: 'python' },
    { scheme: 'file', language: 'go' }, { scheme: 'untitled', language: 'go' },
  ]);
  assert.deepEqual(documentSelector(['python', '*']), [{ scheme: 'file' }, { scheme: 'untitled' }]);
});

test('changedKeys lists exactly the keys that differ', () => {
  const a = readSettings(reader({})).settings;
  const b = readSettings(reader({ model: '/tmp/tiny', languages: ['python'] })).settings;
  assert.deepEqual(changedKeys(a, a), []);
  assert.deepEqual(changedKeys(a, b), ['model', 'languages']);
});
