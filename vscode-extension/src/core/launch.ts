/**
 * How to start `codeswift lsp`: which executable, which arguments, and whether it exists.
 * Pure: file-system and environment access come in as arguments.
 */
import * as path from 'node:path';
import type { Settings } from './settings';

/** Runs the console-script entry point without needing `codeswift/__main__.py`. */
export const PYTHON_BOOTSTRAP =
  "import sys; from codeswift.cli import main; sys.argv[0] = 'codeswift'; sys.exit(main())";

export interface Launch {
  command: string;
  args: string[];
  /** Which setting chose the command, for error messages. */
  via: 'serverPath' | 'pythonPath' | 'PATH';
}

export interface PathContext { home: string; workspaceFolder?: string }

/** Expands a leading `~` and `${workspaceFolder}` (VS Code users write both in settings). */
export function expandPath(p: string, ctx: PathContext): string {
  let out = p;
  if (ctx.workspaceFolder !== undefined) out = out.split('${workspaceFolder}').join(ctx.workspaceFolder);
  if (out === '~' || out.startsWith('~/')) out = ctx.home + out.slice(1);
  return out;
}

export function serverLaunch(s: Settings, ctx: PathContext): Launch {
  if (s.serverPath !== '') {
    return { command: expandPath(s.serverPath, ctx), args: ['lsp'], via: 'serverPath' };
  }
  if (s.pythonPath !== '') {
    return { command: expandPath(s.pythonPath, ctx), args: ['-c', PYTHON_BOOTSTRAP, 'lsp'], via: 'pythonPath' };
  }
  return { command: 'codeswift', args: ['lsp'], via: 'PATH' };
}

export interface Env { PATH?: string; PATHEXT?: string }

/**
 * Absolute path of `command`, looked up on PATH when it has no directory part
 * (what spawn would do), or undefined when there is no such file.
 */
export function findExecutable(command: string, env: Env, platform: string,
  isFile: (p: string) => boolean): string | undefined {
  const p = platform === 'win32' ? path.win32 : path.posix;
  const exts = platform === 'win32'
    ? ['', ...(env.PATHEXT ?? '.EXE;.CMD;.BAT').split(';').filter((e) => e !== '')]
    : [''];
  const candidates = (base: string) => exts.map((e) => base + e);
  if (command.includes('/') || (platform === 'win32' && command.includes('\\'))) {
    return candidates(command).find(isFile);
  }
  for (const dir of (env.PATH ?? '').split(p.delimiter)) {
    if (dir === '') continue;
    const hit = candidates(p.join(dir, command)).find(isFile);
    if (hit !== undefined) return hit;
  }
  return undefined;
}

/** Quotes one word for a POSIX shell, leaving plain words alone so commands stay readable. */
export function shellQuote(word: string): string {
  if (/^[\w@%+=:,./-]+$/.test(word)) return word;
  return `'${word.split("'").join("'\\''")}'`;
}
