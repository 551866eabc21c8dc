/** Status bar item, its quick pick, and the error notification with its fix command. */
import * as vscode from 'vscode';
import type { Diagnosis } from './core/errors';
import type { StatusView } from './core/status';

export class StatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('codeswift.status', vscode.StatusBarAlignment.Right, 100);

  constructor() {
    this.item.name = 'codeswift';
    this.item.command = 'codeswift.menu';
    this.item.show();
  }

  show(view: StatusView): void {
    this.item.text = view.text;
    this.item.tooltip = view.tooltip;
    this.item.backgroundColor = view.severity === 'normal'
      ? undefined
      : new vscode.ThemeColor(`statusBarItem.${view.severity}Background`);
  }

  dispose(): void {
    this.item.dispose();
  }
}

interface MenuEntry extends vscode.QuickPickItem { command: string; args?: unknown[] }

/** The quick pick behind the status bar item. */
export async function showMenu(enabled: boolean, diagnosis: Diagnosis | undefined): Promise<void> {
  const entries: MenuEntry[] = [
    enabled
      ? { label: '$(circle-slash) Disable codeswift', command: 'codeswift.toggle' }
      : { label: '$(check) Enable codeswift', command: 'codeswift.toggle' },
    { label: '$(refresh) Re-index workspace', command: 'codeswift.reindex' },
    { label: '$(graph) Show stats', command: 'codeswift.showStats' },
    { label: '$(output) Open log', command: 'codeswift.showLog' },
    { label: '$(debug-restart) Restart server', command: 'codeswift.restart' },
  ];
  if (diagnosis?.fixCommand !== undefined) {
    entries.unshift({ label: `$(tools) Fix: ${diagnosis.fixCommand}`, detail: diagnosis.message,
      command: 'codeswift.runFix', args: [diagnosis.fixCommand] });
  }
  const pick = await vscode.window.showQuickPick(entries, { title: 'codeswift', placeHolder: 'codeswift command' });
  if (pick !== undefined) await vscode.commands.executeCommand(pick.command, ...(pick.args ?? []));
}

/** Types the fix into a terminal and runs it; the user sees exactly what runs. */
export function runInTerminal(command: string): void {
  const terminal = vscode.window.createTerminal('codeswift fix');
  terminal.show();
  terminal.sendText(command, true);
}

/** The error notification: what is wrong, the exact fix command, and buttons to act on it. */
export async function showFailure(d: Diagnosis, log: vscode.LogOutputChannel): Promise<void> {
  log.error(d.message);
  if (d.fixCommand !== undefined) log.error(`To fix it, run: ${d.fixCommand}`);
  const RUN = 'Run in terminal', COPY = 'Copy command', SETTINGS = 'Open settings', LOG = 'Open log', RESTART = 'Restart';
  // Three buttons at most: more get truncated in the notification.
  const actions = d.fixCommand !== undefined
    ? [RUN, COPY, d.setting !== undefined ? SETTINGS : LOG]
    : [...(d.setting !== undefined ? [SETTINGS] : []), LOG, RESTART];
  const text = d.fixCommand !== undefined ? `${d.message} To fix it, run: ${d.fixCommand}` : d.message;
  const pick = await vscode.window.showErrorMessage(text, ...actions);
  if (pick === RUN) runInTerminal(d.fixCommand!);
  else if (pick === COPY) await vscode.env.clipboard.writeText(d.fixCommand!);
  else if (pick === SETTINGS) await vscode.commands.executeCommand('workbench.action.openSettings', d.setting);
  else if (pick === LOG) log.show();
  else if (pick === RESTART) await vscode.commands.executeCommand('codeswift.restart');
}
