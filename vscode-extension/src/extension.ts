/** Entry point: reads settings, runs one server session at a time, wires commands and UI. */
import * as os from 'node:os';
import * as vscode from 'vscode';
import type { Diagnosis } from './core/errors';
import { serverLaunch } from './core/launch';
import { GENERATE_DEFAULTS, generateParams, StreamInsertion } from './core/generate';
import { changedKeys, readSettings, type Settings } from './core/settings';
import { clientStateView, parseStatus, type Status, statsReport, statusView } from './core/status';
import { CompletionFeedback } from './feedback';
import { ServerSession } from './server';
import { runInTerminal, showFailure, showMenu, StatusBar } from './ui';

let stopCurrent: (() => Promise<void>) | undefined;

function currentSettings(log: vscode.LogOutputChannel): Settings {
  const config = vscode.workspace.getConfiguration('codeswift');
  const { settings, warnings } = readSettings((key) => config.get(key));
  for (const w of warnings) log.warn(w);
  if (warnings.length > 0) void vscode.window.showWarningMessage(`codeswift: ${warnings.join('; ')}`);
  return settings;
}

export function activate(context: vscode.ExtensionContext): void {
  const log = vscode.window.createOutputChannel('codeswift', { log: true });
  const statusBar = new StatusBar();
  let session: ServerSession | undefined;
  let settings = currentSettings(log);
  let lastStatus: Status | undefined;
  let diagnosis: Diagnosis | undefined;
  // The same failure often arrives twice (an error status and the server's own showMessage):
  // one notification per distinct diagnosis and server run.
  const shownMessages = new Set<string>();
  const feedback = new CompletionFeedback((method, params) => session?.notify(method, params));

  const report = (d: Diagnosis) => {
    diagnosis = d;
    if (shownMessages.has(d.message)) return;
    shownMessages.add(d.message);
    void showFailure(d, log);
  };
  const onStatus = (status: Status) => {
    lastStatus = status;
    statusBar.show(statusView(status));
    if (status.state !== 'error') diagnosis = undefined;
    else if (session !== undefined) report(session.diagnoseMessage(status.message));
  };
  const onServerError = (message: string) => {
    if (session !== undefined) report(session.diagnoseMessage(message));
  };
  const onFailure = (d: Diagnosis) => {
    statusBar.show(clientStateView('failed', d.fixCommand !== undefined ? `${d.message}\nFix: ${d.fixCommand}` : d.message));
    report(d);
  };

  // Sessions start and stop strictly one after another, however fast settings change.
  let queue: Promise<void> = Promise.resolve();
  const restart = (): Promise<void> => {
    queue = queue.then(async () => {
      await session?.stop();
      session = undefined;
      lastStatus = undefined;
      diagnosis = undefined;
      shownMessages.clear();
      if (!settings.enable) {
        statusBar.show(clientStateView('disabled'));
        return;
      }
      statusBar.show(clientStateView('starting'));
      const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
      const launch = serverLaunch(settings, { home: os.homedir(), workspaceFolder: folder });
      session = new ServerSession(settings, launch, folder, log,
        { onStatus, onServerError, onFailure, middleware: feedback.middleware });
      await session.start();
    }).catch((err) => log.error(`Restarting the server: ${String(err)}`));
    return queue;
  };
  stopCurrent = async () => { await queue; await session?.stop(); };

  const command = (id: string, fn: (...args: unknown[]) => unknown) =>
    context.subscriptions.push(vscode.commands.registerCommand(id, fn));

  command('codeswift.accepted', (uri, id) => feedback.accepted(uri, id));
  command('codeswift.menu', () => showMenu(settings.enable, diagnosis));
  command('codeswift.showLog', () => log.show());
  command('codeswift.restart', () => restart());
  command('codeswift.runFix', (cmd) => { if (typeof cmd === 'string') runInTerminal(cmd); });
  command('codeswift.toggle', async () => {
    const config = vscode.workspace.getConfiguration('codeswift');
    const inWorkspace = config.inspect('enable')?.workspaceValue !== undefined;
    await config.update('enable', !settings.enable,
      inWorkspace ? vscode.ConfigurationTarget.Workspace : vscode.ConfigurationTarget.Global);
  });
  command('codeswift.reindex', async () => {
    try {
      if (session === undefined) throw new Error('codeswift is disabled');
      await session.request('codeswift/reindex');
      void vscode.window.showInformationMessage('codeswift: re-indexing the workspace');
    } catch (err) {
      void vscode.window.showErrorMessage(`codeswift: cannot re-index: ${err instanceof Error ? err.message : String(err)}`);
    }
  });
  command('codeswift.generate', async () => {
    const editor = vscode.window.activeTextEditor;
    if (editor === undefined) return;
    if (session === undefined || !session.running) {
      void vscode.window.showErrorMessage('codeswift: cannot generate: the server is not running');
      return;
    }
    const running = session;
    const doc = editor.document;
    const cursor = editor.selection.active;
    const insertion = new StreamInsertion(doc.offsetAt(cursor));
    // Edits apply one after another, each where the previous piece ended.
    let edits: Thenable<unknown> = Promise.resolve();
    const put = (text: string) => {
      const at = insertion.add(text);
      edits = edits.then(() => editor.edit((b) => b.insert(doc.positionAt(at), text),
        { undoStopBefore: false, undoStopAfter: false }));
    };
    const params = generateParams(doc.uri.toString(), cursor.line, cursor.character,
      `codeswift-generate-${Date.now()}`, { ...GENERATE_DEFAULTS, maxTokens: Math.max(settings.maxTokens, GENERATE_DEFAULTS.maxTokens) });
    await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: 'codeswift: generating',
      cancellable: true }, async (_progress, cancel) => {
      const t0 = Date.now();
      try {
        const reply = await running.generate(params, put, cancel);
        await edits;
        const rest = insertion.rest(reply.text);
        if (rest === undefined) log.warn('codeswift/generate: the streamed text and the reply differ; kept the streamed text');
        else if (rest !== '') put(rest);
        await edits;
        const s = (Date.now() - t0) / 1000;
        log.info(`Generated ${reply.tokens} tokens in ${s.toFixed(1)} s (${(reply.tokens / s).toFixed(1)} tokens/s, `
          + `${reply.stats.accepted_per_step ?? '?'} tokens/step; ${reply.finishReason})`);
      } catch (err) {
        await edits;
        if (cancel.isCancellationRequested) log.info('Generation stopped; the text streamed so far is kept');
        else void vscode.window.showErrorMessage(`codeswift: generation failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    });
  });
  command('codeswift.showStats', async () => {
    let status = lastStatus;
    if (session?.running) status = parseStatus(await session.request('codeswift/status').catch(() => undefined)) ?? status;
    if (status === undefined) {
      void vscode.window.showInformationMessage('codeswift: no stats yet — the server is not running.');
      return;
    }
    const doc = await vscode.workspace.openTextDocument({ language: 'markdown', content: statsReport(status) });
    await vscode.window.showTextDocument(doc, { preview: true });
  });

  // Where the cursor rests (LSP has no such message): the server prefills the prompt there
  // before the user types (`codeswift/cursor`, docs/protocol.md). Debounced; the server itself
  // ignores moves within the region it already warmed.
  let cursorTimer: ReturnType<typeof setTimeout> | undefined;
  const onSelection = (e: vscode.TextEditorSelectionChangeEvent) => {
    const sel = e.selections[0];
    if (sel === undefined || !sel.isEmpty || e.textEditor.document.uri.scheme !== 'file') return;
    const uri = e.textEditor.document.uri.toString();
    const position = { line: sel.active.line, character: sel.active.character };
    if (cursorTimer !== undefined) clearTimeout(cursorTimer);
    cursorTimer = setTimeout(() => session?.notify('codeswift/cursor', { textDocument: { uri }, position }), 250);
  };

  context.subscriptions.push(log, statusBar, feedback,
    vscode.window.onDidChangeTextEditorSelection(onSelection),
    { dispose: () => { if (cursorTimer !== undefined) clearTimeout(cursorTimer); } },
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (!e.affectsConfiguration('codeswift')) return;
      const next = currentSettings(log);
      const changed = changedKeys(settings, next);
      settings = next;
      if (changed.length === 0) return;
      log.info(`Settings changed (${changed.join(', ')}); restarting the server`);
      void restart();
    }));

  void restart();
}

export async function deactivate(): Promise<void> {
  await stopCurrent?.();
}
