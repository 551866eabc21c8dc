import assert from 'node:assert/strict';
import { test } from 'node:test';
import { expandPath, findExecutable, PYTHON_BOOTSTRAP, serverLaunch, shellQuote } from '../src/core/launch';
import { DEFAULT_SETTINGS, type Settings } from '../src/core/settings';

const ctx = { home: '/home/ann', workspaceFolder: '/work/proj' };
const settings = (over: Partial<Settings>): Settings => ({ ...DEFAULT_SETTINGS, ...over });

test('default launch runs codeswift from PATH', () => {
  assert.deepEqual(serverLaunch(settings({}), ctx), { command: 'codeswift', args: ['lsp'], via: 'PATH' });
});

test('serverPath wins over pythonPath and is expanded', () => {
  assert.deepEqual(serverLaunch(settings({ serverPath: '${workspaceFolder}/.venv/bin/codeswift', pythonPath: '/usr/bin/python3' }), ctx),
    { command: '/work/proj/.venv/bin/codeswift', args: ['lsp'], via: 'serverPath' });
});

test('pythonPath runs the CLI entry point through the interpreter', () => {
  assert.deepEqual(serverLaunch(settings({ pythonPath: '~/venv/bin/python' }), ctx),
    { command: '/home/ann/venv/bin/python', args: ['-c', PYTHON_BOOTSTRAP, 'lsp'], via: 'pythonPath' });
  assert.equal(PYTHON_BOOTSTRAP,
    "import sys; from codeswift.cli import main; sys.argv[0] = 'codeswift'; sys.exit(main())");
});

test('expandPath only touches a leading ~ and ${workspaceFolder}', () => {
  assert.equal(expandPath('~', ctx), '/home/ann');
  assert.equal(expandPath('/opt/~x/bin', ctx), '/opt/~x/bin');
  assert.equal(expandPath('${workspaceFolder}/bin', { home: '/h' }), '${workspaceFolder}/bin');
});

test('findExecutable searches PATH in order and skips empty entries', () => {
  const files = new Set(['/b/codeswift', '/c/codeswift']);
  const isFile = (p: string) => files.has(p);
  assert.equal(findExecutable('codeswift', { PATH: '/a::/b:/c' }, 'linux', isFile), '/b/codeswift');
  assert.equal(findExecutable('codeswift', { PATH: '/a' }, 'linux', isFile), undefined);
  assert.equal(findExecutable('codeswift', {}, 'linux', isFile), undefined);
  assert.equal(findExecutable('/c/codeswift', { PATH: '' }, 'linux', isFile), '/c/codeswift');
  assert.equal(findExecutable('./codeswift', { PATH: '/b' }, 'linux', isFile), undefined);
});

test('findExecutable tries PATHEXT on Windows', () => {
  const isFile = (p: string) => p === 'C:\\py\\Scripts\\codeswift.EXE';
  assert.equal(findExecutable('codeswift', { PATH: 'C:\\x;C:\\py\\Scripts', PATHEXT: '.COM;.EXE' }, 'win32', isFile),
    'C:\\py\\Scripts\\codeswift.EXE');
});

test('shellQuote leaves plain words and quotes the rest', () => {
  assert.equal(shellQuote('/usr/bin/python3.11'), '/usr/bin/python3.11');
  assert.equal(shellQuote('/My Venv/bin/python'), "'/My Venv/bin/python'");
  assert.equal(shellQuote("it's"), "'it'\\''s'");
});
