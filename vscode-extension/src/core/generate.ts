/**
 * Long generation (`codeswift/generate`, docs/protocol.md): the request, and where each streamed
 * piece goes. Pure: no `vscode` import, so it runs under `node --test`.
 */

export interface GenerateOptions {
  maxTokens: number;
  /** 'block': the rest of the block at the cursor (a function body); 'none': up to maxTokens. */
  stop: 'none' | 'line' | 'block';
  repetitionPenalty: number;
}

export const GENERATE_DEFAULTS: Readonly<GenerateOptions> = Object.freeze({
  maxTokens: 1024, stop: 'block', repetitionPenalty: 1,
});

export function generateParams(uri: string, line: number, character: number, token: string,
  options: GenerateOptions = GENERATE_DEFAULTS): Record<string, unknown> {
  return {
    textDocument: { uri }, position: { line, character }, partialResultToken: token,
    maxTokens: options.maxTokens, stop: options.stop, repetitionPenalty: options.repetitionPenalty,
  };
}

/**
 * Streamed text into a document: pieces are inserted one after another at the end of what was
 * inserted so far. The reply's whole text then settles it: only what the pieces did not bring
 * (a client that missed progress notifications) is still to insert.
 */
export class StreamInsertion {
  inserted = '';

  constructor(readonly startOffset: number) {}

  /** Where the next piece goes (document offset). */
  get offset(): number {
    return this.startOffset + this.inserted.length;
  }

  /** Record `piece` as inserted; returns the offset to insert it at. */
  add(piece: string): number {
    const at = this.offset;
    this.inserted += piece;
    return at;
  }

  /** What of the final `text` is not inserted yet ('' when the stream brought all of it);
   * undefined when the inserted text is not its start (the stream and the reply disagree). */
  rest(text: string): string | undefined {
    return text.startsWith(this.inserted) ? text.slice(this.inserted.length) : undefined;
  }
}
