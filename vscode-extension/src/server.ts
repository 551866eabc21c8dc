/**
 * One run of `codeswift lsp`: spawns it, connects vscode-languageclient over stdio, keeps the
 * tail of its stderr, and reports a diagnosed failure when it cannot start or keeps crashing.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as readline from 'node:readline';
import * as vscode from 'vscode';
import {
  CloseAction, ErrorAction, LanguageClient, type LanguageClientOptions, MessageType, type Middleware,
  ProgressType, ShowMessageNotification,
} from 'vscode-languageclient/node';
import { type Diagnosis, diagnose } from './core/errors';
import { findExecutable, type Launch } from './core/launch';
import { documentSelector, type Settings, toInitializationOptions } from './core/settings';
import { parseStatus, type Status } from './core/status';

const STDERR_TAIL_LINES = 60;
const CRASH_WINDOW_MS = 3 * 60_000;
const MAX_CRASHES = 3;
/** How long to wait for a dead server's last stderr lines before diagnosing. */
const EXIT_GRACE_MS = 3000;

export interface GenerateReply {
  text: string;
  finishReason: string;
  tokens: number;
  stats: Record<string, number | null>;
}

export interface SessionHooks {
  onStatus(status: Status): void;
  onFailure(diagnosis: Diagnosis): void;
  /** A `window/showMessage` of type Error: diagnosed like a failure instead of shown raw. */
  onServerError(message: string): void;
  middleware: Middleware;
}

const isFile = (p: string): boolean => {
  try { return fs.statSync(p).isFile(); } catch { return false; }
};

function logLine(log: vscode.LogOutputChannel, line: string): void {
  if (/\b(error|traceback|exception)\b/i.test(line)) log.error(line);
  else if (/\bwarn(ing)?\b/i.test(line)) log.warn(line);
  else log.info(line);
}

export class ServerSession {
  private client: LanguageClient | undefined;
  private child: ChildProcess | undefined;
  private childClosed: Promise<void> = Promise.resolve();
  private stderrTail: string[] = [];
  private exitCode: number | null | undefined;
  private started = false;
  private stopping = false;
  private crashes: number[] = [];

  constructor(
    private readonly settings: Settings,
    private readonly launch: Launch,
    private readonly cwd: string | undefined,
    private readonly log: vscode.LogOutputChannel,
    private readonly hooks: SessionHooks,
  ) {}

  /** Starts the server; false (after hooks.onFailure) when it could not start. */
  async start(): Promise<boolean> {
    const command = findExecutable(this.launch.command, process.env, process.platform, isFile);
    if (command === undefined) {
      this.fail({ spawnError: 'ENOENT', output: '' });
      return false;
    }
    this.log.info(`Starting ${command} ${this.launch.args.join(' ')}`);
    const client = new LanguageClient('codeswift', 'codeswift', () => this.spawn(command), this.clientOptions());
    client.onNotification('codeswift/status', (raw: unknown) => {
      const status = parseStatus(raw);
      if (status !== undefined) this.hooks.onStatus(status);
    });
    // Registered before start, so it replaces the client's default showMessage handler.
    client.onNotification(ShowMessageNotification.type, ({ type, message }) => {
      if (type === MessageType.Error) this.hooks.onServerError(message);
      else if (type === MessageType.Warning) void vscode.window.showWarningMessage(message);
      else void vscode.window.showInformationMessage(message);
    });
    this.client = client;
    try {
      await client.start();
    } catch (err) {
      this.log.error(`Server did not start: ${String(err)}`);
      await Promise.race([this.childClosed, new Promise((r) => setTimeout(r, EXIT_GRACE_MS))]);
      this.fail({ exitCode: this.exitCode, output: this.stderrTail.join('\n') });
      await this.stop();
      return false;
    }
    this.started = true;
    this.refreshStatus();
    return true;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    const client = this.client;
    this.client = undefined;
    if (client?.needsStop()) {
      try { await client.stop(2000); } catch (err) { this.log.warn(`Stopping the server: ${String(err)}`); }
    }
    if (this.child !== undefined && this.child.exitCode === null) this.child.kill();
  }

  get running(): boolean {
    return this.client?.isRunning() ?? false;
  }

  async request<R>(method: string, params?: unknown): Promise<R> {
    if (this.client === undefined || !this.client.isRunning()) throw new Error('the codeswift server is not running');
    // Always with params: a request without them (codeswift/status, codeswift/reindex) fails to
    // parse in the Python server (pygls: "malformed params"), though JSON-RPC allows leaving them out.
    return this.client.sendRequest<R>(method, params ?? {});
  }

  /** `codeswift/generate`: `onPiece` gets each streamed piece (partial results on the request's
   * partialResultToken); the reply has the whole text. Cancelling `cancel` sends $/cancelRequest. */
  async generate(params: Record<string, unknown>, onPiece: (text: string) => void,
    cancel: vscode.CancellationToken): Promise<GenerateReply> {
    if (this.client === undefined || !this.client.isRunning()) throw new Error('the codeswift server is not running');
    const token = params.partialResultToken as string;
    const sub = this.client.onProgress(new ProgressType<{ text: string }>(), token, (v) => onPiece(v.text));
    try {
      return await this.client.sendRequest<GenerateReply>('codeswift/generate', params, cancel);
    } finally {
      sub.dispose();
    }
  }

  notify(method: string, params: unknown): void {
    if (this.client?.isRunning()) {
      this.client.sendNotification(method, params).catch((err) => this.log.warn(`${method}: ${String(err)}`));
    }
  }

  /** Diagnoses an error message from the running server the same way as a failed start. */
  diagnoseMessage(message: string): Diagnosis {
    return diagnose(this.launch, this.settings, { output: message });
  }

  private refreshStatus(): void {
    this.request<unknown>('codeswift/status').then((raw) => {
      const status = parseStatus(raw);
      if (status !== undefined) this.hooks.onStatus(status);
    }, (err) => this.log.warn(`codeswift/status: ${String(err)}`));
  }

  private async spawn(command: string): Promise<ChildProcess> {
    this.stderrTail = [];
    this.exitCode = undefined;
    const child = spawn(command, this.launch.args, {
      cwd: this.cwd,
      // Unbuffered so log lines reach the output channel as they happen.
      env: { ...process.env, PYTHONUNBUFFERED: '1' },
    });
    this.child = child;
    this.childClosed = new Promise((resolve) => child.on('close', (code) => {
      this.exitCode = code;
      this.log.info(`Server exited with code ${code}`);
      resolve();
    }));
    child.on('error', (err) => this.log.error(`Server process: ${err.message}`));
    return child;
  }

  private clientOptions(): LanguageClientOptions {
    const keepTail = (line: string) => {
      this.stderrTail.push(line);
      if (this.stderrTail.length > STDERR_TAIL_LINES) this.stderrTail.shift();
    };
    return {
      documentSelector: documentSelector(this.settings.languages),
      initializationOptions: toInitializationOptions(this.settings),
      outputChannel: this.log,
      middleware: this.hooks.middleware,
      initializationFailedHandler: () => false,
      stdioOptions: {
        stdout: () => undefined,
        stderr: (input) => {
          readline.createInterface({ input, crlfDelay: Infinity, terminal: false })
            .on('line', (line) => { keepTail(line); logLine(this.log, line); });
        },
      },
      errorHandler: {
        error: () => ({ action: ErrorAction.Continue }),
        closed: () => this.onClosed(),
      },
    };
  }

  /** Restarts after a crash unless it is crashing in a loop; a failed start never restarts. */
  private async onClosed(): Promise<{ action: CloseAction; handled: boolean }> {
    if (this.stopping || !this.started) return { action: CloseAction.DoNotRestart, handled: true };
    const now = Date.now();
    this.crashes = [...this.crashes.filter((t) => now - t < CRASH_WINDOW_MS), now];
    if (this.crashes.length <= MAX_CRASHES) {
      this.log.warn(`Server stopped unexpectedly; restarting (${this.crashes.length}/${MAX_CRASHES})`);
      return { action: CloseAction.Restart, handled: true };
    }
    await Promise.race([this.childClosed, new Promise((r) => setTimeout(r, EXIT_GRACE_MS))]);
    this.fail({ exitCode: this.exitCode, output: this.stderrTail.join('\n') });
    return { action: CloseAction.DoNotRestart, handled: true };
  }

  private fail(failure: Parameters<typeof diagnose>[2]): void {
    this.hooks.onFailure(diagnose(this.launch, this.settings, failure));
  }
}
