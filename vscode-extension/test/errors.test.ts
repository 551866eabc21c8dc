import assert from 'node:assert/strict';
import { test } from 'node:test';
import { diagnose, isModelPath, lastLine } from '../src/core/errors';
import { type Launch, PYTHON_BOOTSTRAP } from '../src/core/launch';
import { DEFAULT_SETTINGS, type Settings } from '../src/core/settings';

const onPath: Launch = { command: 'codeswift', args: ['lsp'], via: 'PATH' };
const viaPython: Launch = { command: '/opt/my env/bin/python', args: ['-c', PYTHON_BOOTSTRAP, 'lsp'], via: 'pythonPath' };
const viaServer: Launch = { command: '/venv/bin/codeswift', args: ['lsp'], via: 'serverPath' };
const settings = (over: Partial<Settings> = {}): Settings => ({ ...DEFAULT_SETTINGS, ...over });

const TRACEBACK = `Traceback (most recent call last):
  File "<string>", line 1, in <module>
ModuleNotFoundError: No module named 'codeswift'
`;

test('codeswift missing from PATH: pip install codeswift', () => {
  assert.deepEqual(diagnose(onPath, settings(), { spawnError: 'ENOENT', output: '' }), {
    kind: 'serverNotFound', fixCommand: 'pip install codeswift', setting: 'codeswift.serverPath',
    message: 'codeswift is not installed: no `codeswift` executable on PATH ' +
      '(or set codeswift.serverPath / codeswift.pythonPath).',
  });
});

test('serverPath pointing nowhere names the path', () => {
  assert.deepEqual(diagnose(viaServer, settings(), { spawnError: 'ENOENT', output: '' }), {
    kind: 'serverNotFound', fixCommand: 'pip install codeswift', setting: 'codeswift.serverPath',
    message: 'codeswift.serverPath is /venv/bin/codeswift, which does not exist.',
  });
});

test('missing python interpreter points at the setting', () => {
  assert.deepEqual(diagnose(viaPython, settings(), { spawnError: 'ENOENT', output: '' }), {
    kind: 'pythonNotFound', setting: 'codeswift.pythonPath',
    message: 'Python interpreter /opt/my env/bin/python (codeswift.pythonPath) does not exist.',
  });
});

test('not executable: chmod', () => {
  assert.deepEqual(diagnose(viaServer, settings(), { spawnError: 'EACCES', output: '' }), {
    kind: 'notExecutable', fixCommand: 'chmod +x /venv/bin/codeswift',
    message: '/venv/bin/codeswift is not executable.',
  });
});

test('python without the package: install into that interpreter, quoted', () => {
  assert.deepEqual(diagnose(viaPython, settings(), { exitCode: 1, output: TRACEBACK }), {
    kind: 'packageMissing', fixCommand: "'/opt/my env/bin/python' -m pip install codeswift",
    message: 'Python /opt/my env/bin/python does not have the codeswift package installed.',
  });
});

test('old codeswift without the CLI module: upgrade', () => {
  const out = "ModuleNotFoundError: No module named 'codeswift.cli'";
  assert.deepEqual(diagnose(onPath, settings(), { exitCode: 1, output: out }), {
    kind: 'packageMissing', fixCommand: 'pip install --upgrade codeswift',
    message: 'The installed codeswift is too old or broken (no module codeswift.cli).',
  });
});

test('missing dependency: reinstall codeswift', () => {
  const out = "ModuleNotFoundError: No module named 'torch'";
  assert.deepEqual(diagnose(viaServer, settings(), { exitCode: 1, output: out }), {
    kind: 'dependencyMissing', fixCommand: 'pip install codeswift',
    message: 'codeswift cannot start: its dependency torch is missing.',
  });
});

test('model not downloaded: codeswift models pull <model>', () => {
  const out = "codeswift.errors.ModelLoadError: model 'qwen2.5-coder-1.5b' is not in the local cache";
  assert.deepEqual(diagnose(onPath, settings({ model: 'qwen2.5-coder-1.5b' }), { exitCode: 1, output: out }), {
    kind: 'modelMissing', fixCommand: 'codeswift models pull qwen2.5-coder-1.5b', setting: 'codeswift.model',
    message: "Model qwen2.5-coder-1.5b is not downloaded: codeswift.errors.ModelLoadError: model " +
      "'qwen2.5-coder-1.5b' is not in the local cache",
  });
});

test('the server\'s own pull command is used verbatim, with the configured executable', () => {
  const out = 'model qwen2.5-coder-0.5b not found; run `codeswift models pull qwen2.5-coder-0.5b`';
  assert.deepEqual(diagnose(viaServer, settings(), { output: out }), {
    kind: 'modelMissing', fixCommand: '/venv/bin/codeswift models pull qwen2.5-coder-0.5b',
    setting: 'codeswift.model', message: `Model qwen2.5-coder-0.5b is not available: ${out}`,
  });
});

test('the CLI\'s "not pulled yet" error yields its own pull command', () => {
  const out = "codeswift: error: model 'qwen2.5-coder-1.5b' is not pulled yet: run `codeswift models pull qwen2.5-coder-1.5b`";
  assert.deepEqual(diagnose(onPath, settings({ model: 'qwen2.5-coder-1.5b' }), { exitCode: 2, output: out }), {
    kind: 'modelMissing', fixCommand: 'codeswift models pull qwen2.5-coder-1.5b', setting: 'codeswift.model',
    message: "Model qwen2.5-coder-1.5b is not available: model 'qwen2.5-coder-1.5b' is not pulled yet: " +
      'run `codeswift models pull qwen2.5-coder-1.5b`',
  });
});

test('an unknown model name gets no pull command', () => {
  const out = "codeswift: error: unknown model 'qwen9': give a known name (qwen2.5-coder-0.5b, qwen2.5-coder-1.5b), " +
    'a model folder, a .gguf file or a Hugging Face id (owner/name)';
  assert.deepEqual(diagnose(onPath, settings({ model: 'qwen9' }), { exitCode: 2, output: out }), {
    kind: 'modelMissing', setting: 'codeswift.model',
    message: `Model qwen9 (codeswift.model) is unknown: ${out.replace('codeswift: error: ', '')}`,
  });
});

test('a missing .gguf file points at the setting', () => {
  const out = 'codeswift: error: GGUF file not found: /m/q.gguf';
  assert.deepEqual(diagnose(onPath, settings({ model: '/m/q.gguf' }), { exitCode: 2, output: out }), {
    kind: 'modelMissing', setting: 'codeswift.model',
    message: 'Model /m/q.gguf (codeswift.model) could not be loaded: GGUF file not found: /m/q.gguf',
  });
});

test('a model folder that fails to load gets no pull command', () => {
  const out = 'ModelLoadError: /tmp/nope: no config.json';
  assert.deepEqual(diagnose(onPath, settings({ model: '/tmp/nope' }), { exitCode: 1, output: out }), {
    kind: 'modelMissing', setting: 'codeswift.model',
    message: 'Model /tmp/nope (codeswift.model) could not be loaded: ModelLoadError: /tmp/nope: no config.json',
  });
});

test('anything else reports the exit code and last stderr line', () => {
  assert.deepEqual(diagnose(onPath, settings(), { exitCode: 2, output: 'usage: codeswift\nerror: invalid choice: \'lsp\'\n\n' }), {
    kind: 'serverError', message: "codeswift server exited with code 2: error: invalid choice: 'lsp'",
  });
  assert.deepEqual(diagnose(onPath, settings(), { output: '' }), {
    kind: 'serverError', message: 'codeswift server error.',
  });
});

test('isModelPath separates names and hub ids from files', () => {
  assert.deepEqual(['/m', './m', '../m', '~/m', 'C:\\m', 'q.GGUF', 'qwen2.5-coder-0.5b', 'Qwen/Qwen2.5-Coder-0.5B']
    .map(isModelPath), [true, true, true, true, true, true, false, false]);
});

test('lastLine skips blank lines, drops the CLI prefix and truncates long ones', () => {
  assert.equal(lastLine('a\n  b  \n\n'), 'b');
  assert.equal(lastLine('codeswift: error: no model'), 'no model');
  assert.equal(lastLine('codeswift: unknown model'), 'unknown model');
  assert.equal(lastLine(''), '');
  assert.equal(lastLine('x'.repeat(250)), 'x'.repeat(199) + '…');
});
