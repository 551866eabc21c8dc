/**
 * Turns a failed server start (or an `error` status) into one clear sentence plus the exact
 * command that fixes it. Pure: takes what was observed, returns what to show.
 */
import { type Launch, shellQuote } from './launch';
import type { Settings } from './settings';

export interface Failure {
  /** Node's spawn error code (ENOENT, EACCES), also set when the PATH lookup found nothing. */
  spawnError?: string;
  exitCode?: number | null;
  /** The tail of the server's stderr, or the message of an `error` status. */
  output: string;
}

export type DiagnosisKind = 'serverNotFound' | 'pythonNotFound' | 'notExecutable'
  | 'packageMissing' | 'dependencyMissing' | 'modelMissing' | 'serverError';

export interface Diagnosis {
  kind: DiagnosisKind;
  message: string;
  /** A shell command that fixes it, shown verbatim and offered to run in a terminal. */
  fixCommand?: string;
  /** The setting to open when the fix is a settings change. */
  setting?: string;
}

const MODEL_ERROR = new RegExp(['ModelLoadError', 'model\\b.*\\bnot (found|pulled)', 'unknown model',
  'cannot load (model|tokenizer)', 'GGUF file not found', 'not a model folder'].join('|'), 'i');
const PULL_COMMAND = /codeswift models pull [^\s`'"]+/;
const NO_MODULE = /No module named '?([\w.]+)'?/;
const MAX_DETAIL = 200;

/** Local folders and .gguf files can't be pulled; names and hub ids can. */
export function isModelPath(model: string): boolean {
  return /^(\/|\.{1,2}[\\/]|~|[A-Za-z]:[\\/])/.test(model) || model.toLowerCase().endsWith('.gguf');
}

/** The last non-empty line, without the CLI's `codeswift: error:` prefix. */
export function lastLine(output: string): string {
  const lines = output.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '');
  const line = lines.length > 0 ? lines[lines.length - 1].replace(/^codeswift: (error: )?/, '') : '';
  return line.length > MAX_DETAIL ? line.slice(0, MAX_DETAIL - 1) + '…' : line;
}

function pipInstall(launch: Launch, extra = ''): string {
  const pip = launch.via === 'pythonPath' ? `${shellQuote(launch.command)} -m pip` : 'pip';
  return `${pip} install ${extra}codeswift`;
}

function codeswiftCommand(launch: Launch): string {
  return launch.via === 'serverPath' ? shellQuote(launch.command) : 'codeswift';
}

function notFound(launch: Launch): Diagnosis {
  if (launch.via === 'pythonPath') {
    return { kind: 'pythonNotFound', setting: 'codeswift.pythonPath',
      message: `Python interpreter ${launch.command} (codeswift.pythonPath) does not exist.` };
  }
  if (launch.via === 'serverPath') {
    return { kind: 'serverNotFound', fixCommand: pipInstall(launch), setting: 'codeswift.serverPath',
      message: `codeswift.serverPath is ${launch.command}, which does not exist.` };
  }
  return { kind: 'serverNotFound', fixCommand: pipInstall(launch), setting: 'codeswift.serverPath',
    message: 'codeswift is not installed: no `codeswift` executable on PATH ' +
      '(or set codeswift.serverPath / codeswift.pythonPath).' };
}

function modelMissing(launch: Launch, settings: Settings, output: string): Diagnosis {
  const suggested = PULL_COMMAND.exec(output);
  if (suggested !== null) {
    const cmd = suggested[0].replace(/^codeswift/, codeswiftCommand(launch));
    return { kind: 'modelMissing', fixCommand: cmd, setting: 'codeswift.model',
      message: `Model ${settings.model} is not available: ${lastLine(output)}` };
  }
  if (/unknown model/i.test(output)) {
    return { kind: 'modelMissing', setting: 'codeswift.model',
      message: `Model ${settings.model} (codeswift.model) is unknown: ${lastLine(output)}` };
  }
  if (isModelPath(settings.model)) {
    return { kind: 'modelMissing', setting: 'codeswift.model',
      message: `Model ${settings.model} (codeswift.model) could not be loaded: ${lastLine(output)}` };
  }
  return { kind: 'modelMissing', setting: 'codeswift.model',
    fixCommand: `${codeswiftCommand(launch)} models pull ${shellQuote(settings.model)}`,
    message: `Model ${settings.model} is not downloaded: ${lastLine(output)}` };
}

export function diagnose(launch: Launch, settings: Settings, f: Failure): Diagnosis {
  if (f.spawnError === 'ENOENT') return notFound(launch);
  if (f.spawnError === 'EACCES') {
    return { kind: 'notExecutable', fixCommand: `chmod +x ${shellQuote(launch.command)}`,
      message: `${launch.command} is not executable.` };
  }
  const module = NO_MODULE.exec(f.output);
  if (module !== null && (module[1] === 'codeswift' || module[1].startsWith('codeswift.'))) {
    const where = launch.via === 'pythonPath' ? `Python ${launch.command}` : 'This Python';
    const upgrade = module[1] !== 'codeswift';
    return { kind: 'packageMissing', fixCommand: pipInstall(launch, upgrade ? '--upgrade ' : ''),
      message: upgrade
        ? `The installed codeswift is too old or broken (no module ${module[1]}).`
        : `${where} does not have the codeswift package installed.` };
  }
  if (module !== null) {
    return { kind: 'dependencyMissing', fixCommand: pipInstall(launch),
      message: `codeswift cannot start: its dependency ${module[1]} is missing.` };
  }
  if (MODEL_ERROR.test(f.output) || PULL_COMMAND.test(f.output)) {
    return modelMissing(launch, settings, f.output);
  }
  const detail = lastLine(f.output);
  const head = f.exitCode !== undefined && f.exitCode !== null
    ? `codeswift server exited with code ${f.exitCode}`
    : 'codeswift server error';
  return { kind: 'serverError', message: detail === '' ? `${head}.` : `${head}: ${detail}` };
}
