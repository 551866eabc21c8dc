/**
 * Works out how much of a shown suggestion the user accepted, for `codeswift/completionAccepted`.
 *
 * Tab runs the item's `codeswift.accepted` command (whole item). Accept-word / accept-line are
 * VS Code's own commands and tell the extension nothing, so they are recognised from the edits:
 * text inserted exactly where the suggestion continues and equal to its next characters.
 * Single typed characters that happen to match are the user typing along, not accepting, so a
 * partial acceptance counts only once a multi-character insertion has matched.
 */

export interface Shown {
  uri: string;
  id: string;
  /** Document offset of the cursor when the suggestion was shown. */
  offset: number;
  /** The suggestion's text from the cursor on. */
  text: string;
}

export interface Edit {
  uri: string;
  offset: number;
  removed: number;
  inserted: string;
}

export interface Accepted {
  uri: string;
  id: string;
  /** null = the whole item. */
  acceptedChars: number | null;
}

interface Tracked extends Shown {
  accepted: number;
  sawMultiChar: boolean;
}

export class AcceptanceTracker {
  private current: Tracked | undefined;

  /**
   * A suggestion is on screen. Returns whether it is new (→ send `completionShown`) and
   * the partial acceptance of the previous one, if any, to report.
   */
  shown(item: Shown): { isNew: boolean; flushed: Accepted | undefined } {
    const cur = this.current;
    if (cur !== undefined && cur.uri === item.uri && cur.id === item.id) {
      return { isNew: false, flushed: undefined };
    }
    const flushed = this.flush();
    this.current = { ...item, accepted: 0, sawMultiChar: false };
    return { isNew: true, flushed };
  }

  /** A document changed; returns a finished partial acceptance when the edit leaves the suggestion. */
  edit(e: Edit): Accepted | undefined {
    const cur = this.current;
    if (cur === undefined || cur.uri !== e.uri) return undefined;
    const at = cur.offset + cur.accepted;
    const rest = cur.text.slice(cur.accepted);
    if (e.offset === at && e.removed === 0 && e.inserted !== '' && rest.startsWith(e.inserted)) {
      cur.accepted += e.inserted.length;
      cur.sawMultiChar ||= e.inserted.length > 1;
      return undefined;
    }
    return this.flush();
  }

  /** The item's command ran: the whole item went in. */
  acceptedWhole(uri: string, id: string): Accepted {
    this.current = undefined;
    return { uri, id, acceptedChars: null };
  }

  /** Ends tracking; reports a partial acceptance if there was one. */
  flush(): Accepted | undefined {
    const cur = this.current;
    this.current = undefined;
    if (cur === undefined || cur.accepted === 0 || !cur.sawMultiChar) return undefined;
    const whole = cur.accepted >= cur.text.length;
    return { uri: cur.uri, id: cur.id, acceptedChars: whole ? null : cur.accepted };
  }
}
