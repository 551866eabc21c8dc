/**
 * Tells the server which suggestions were shown and how much of each was accepted
 * (`codeswift/completionShown`, `codeswift/completionAccepted`).
 */
import * as vscode from 'vscode';
import type { Middleware } from 'vscode-languageclient/node';
import { type Accepted, AcceptanceTracker } from './core/acceptance';

export type Notify = (method: string, params: unknown) => void;

/** The server puts [uri, id] in each item's `codeswift.accepted` command. */
function itemKey(item: vscode.InlineCompletionItem, doc: vscode.TextDocument): { uri: string; id: string } | undefined {
  const args = item.command?.command === 'codeswift.accepted' ? item.command.arguments : undefined;
  if (args === undefined || typeof args[1] !== 'string') return undefined;
  return { uri: typeof args[0] === 'string' ? args[0] : doc.uri.toString(), id: args[1] };
}

/** The part of the suggestion after the cursor (the item may also replace text before it). */
function textAfterCursor(item: vscode.InlineCompletionItem, doc: vscode.TextDocument, pos: vscode.Position): string {
  const text = typeof item.insertText === 'string' ? item.insertText : item.insertText.value;
  if (item.range === undefined || !item.range.start.isBefore(pos)) return text;
  const typed = doc.getText(new vscode.Range(item.range.start, pos));
  return text.startsWith(typed) ? text.slice(typed.length) : text;
}

export class CompletionFeedback implements vscode.Disposable {
  private readonly tracker = new AcceptanceTracker();
  private readonly uriByDoc = new Map<string, string>();
  private readonly subscription: vscode.Disposable;

  constructor(private readonly notify: Notify) {
    this.subscription = vscode.workspace.onDidChangeTextDocument((e) => this.onChange(e));
  }

  readonly middleware: Middleware = {
    // The server also answers textDocument/completion with the same suggestion, for editors
    // without ghost text; in VS Code that would be a duplicate in the suggest widget.
    provideCompletionItem: () => undefined,
    provideInlineCompletionItems: async (doc, pos, ctx, token, next) => {
      const result = await next(doc, pos, ctx, token);
      const items = Array.isArray(result) ? result : result?.items ?? [];
      if (items.length > 0 && !token.isCancellationRequested) this.onShown(doc, pos, items[0]);
      return result;
    },
  };

  /** The item's command ran: VS Code inserted the whole suggestion. */
  accepted(uri: unknown, id: unknown): void {
    if (typeof uri !== 'string' || typeof id !== 'string') return;
    this.send(this.tracker.acceptedWhole(uri, id));
  }

  dispose(): void {
    this.send(this.tracker.flush());
    this.subscription.dispose();
  }

  private onShown(doc: vscode.TextDocument, pos: vscode.Position, item: vscode.InlineCompletionItem): void {
    const key = itemKey(item, doc);
    if (key === undefined) return;
    this.uriByDoc.set(doc.uri.toString(), key.uri);
    const { isNew, flushed } = this.tracker.shown({
      ...key, offset: doc.offsetAt(pos), text: textAfterCursor(item, doc, pos),
    });
    this.send(flushed);
    if (isNew) this.notify('codeswift/completionShown', key);
  }

  private onChange(e: vscode.TextDocumentChangeEvent): void {
    const uri = this.uriByDoc.get(e.document.uri.toString());
    if (uri === undefined) return;
    for (const c of e.contentChanges) {
      this.send(this.tracker.edit({ uri, offset: c.rangeOffset, removed: c.rangeLength, inserted: c.text }));
    }
  }

  private send(accepted: Accepted | undefined): void {
    if (accepted !== undefined) this.notify('codeswift/completionAccepted', accepted);
  }
}
