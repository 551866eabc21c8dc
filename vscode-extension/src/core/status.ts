/**
 * The server's `codeswift/status` payload (docs/protocol.md) and how the status bar shows it.
 * Pure: returns strings, the vscode glue puts them on screen.
 */

export type ServerState = 'loading' | 'indexing' | 'ready' | 'error';
/** States the client knows before (or without) a server status. */
export type ClientState = 'starting' | 'disabled' | 'failed';

export interface Stats {
  completions: number | null;
  p50Ms: number | null;
  p95Ms: number | null;
  lastMs: number | null;
  lastTokens: number | null;
  acceptedPerStep: number | null;
  speedup: number | null;
  cacheHitRate: number | null;
}

export interface Status {
  state: ServerState;
  message: string;
  model: string;
  device: string;
  dtype: string;
  backend: string;
  indexProgress: number | null;
  stats: Stats;
}

const STATES: ServerState[] = ['loading', 'indexing', 'ready', 'error'];
const STAT_KEYS: (keyof Stats)[] = ['completions', 'p50Ms', 'p95Ms', 'lastMs', 'lastTokens',
  'acceptedPerStep', 'speedup', 'cacheHitRate'];

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const str = (v: unknown): string => (typeof v === 'string' ? v : '');

/** Accepts whatever arrived on the wire; missing or mistyped fields become ''/null. */
export function parseStatus(raw: unknown): Status | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const r = raw as Record<string, unknown>;
  if (!STATES.includes(r.state as ServerState)) return undefined;
  const rawStats = (typeof r.stats === 'object' && r.stats !== null ? r.stats : {}) as Record<string, unknown>;
  const stats = Object.fromEntries(STAT_KEYS.map((k) => [k, num(rawStats[k])])) as unknown as Stats;
  return {
    state: r.state as ServerState, message: str(r.message), model: str(r.model), device: str(r.device),
    dtype: str(r.dtype), backend: str(r.backend), indexProgress: num(r.indexProgress), stats,
  };
}

export interface StatusView {
  text: string;
  tooltip: string;
  severity: 'normal' | 'warning' | 'error';
}

const ms = (v: number): string => `${Math.round(v)} ms`;
const one = (v: number): string => v.toFixed(1);
const pct = (v: number): string => `${Math.round(v * 100)}%`;

/** "150 ms · 2.9 tok/step · 2.4×" from the last completion; '' before the first one. */
export function speedLine(stats: Stats): string {
  const parts: string[] = [];
  if (stats.lastMs !== null) parts.push(ms(stats.lastMs));
  if (stats.acceptedPerStep !== null) parts.push(`${one(stats.acceptedPerStep)} tok/step`);
  if (stats.speedup !== null) parts.push(`${one(stats.speedup)}×`);
  return parts.join(' · ');
}

function stateText(s: Status): string {
  switch (s.state) {
    case 'loading': return '$(loading~spin) codeswift: loading model';
    case 'indexing': return s.indexProgress === null
      ? '$(loading~spin) codeswift: indexing'
      : `$(loading~spin) codeswift: indexing ${pct(s.indexProgress)}`;
    case 'error': return '$(error) codeswift: error';
    case 'ready': {
      const speed = speedLine(s.stats);
      return speed === '' ? '$(check) codeswift' : `$(zap) codeswift ${speed}`;
    }
  }
}

/** Tooltip lines: what runs where, and the latency/acceptance numbers so far. */
export function tooltipLines(s: Status): string[] {
  const lines = [`codeswift: ${s.state}${s.message !== '' ? ` — ${s.message}` : ''}`];
  const engine = [s.model, s.device, s.dtype, s.backend].filter((x) => x !== '').join(' · ');
  if (engine !== '') lines.push(engine);
  const st = s.stats;
  if (st.completions !== null && st.completions > 0) {
    const lat = [st.p50Ms !== null ? `p50 ${ms(st.p50Ms)}` : '', st.p95Ms !== null ? `p95 ${ms(st.p95Ms)}` : '']
      .filter((x) => x !== '').join(', ');
    lines.push(`${st.completions} completions${lat !== '' ? `: ${lat}` : ''}`);
    const speed = speedLine(st);
    if (speed !== '') lines.push(`last: ${speed}${st.lastTokens !== null ? ` (${st.lastTokens} tokens)` : ''}`);
    if (st.cacheHitRate !== null) lines.push(`cache hits ${pct(st.cacheHitRate)}`);
  }
  lines.push('Click for codeswift commands');
  return lines;
}

export function statusView(s: Status): StatusView {
  return {
    text: stateText(s),
    tooltip: tooltipLines(s).join('\n'),
    severity: s.state === 'error' ? 'error' : 'normal',
  };
}

export function clientStateView(state: ClientState, detail = ''): StatusView {
  switch (state) {
    case 'starting': return { text: '$(loading~spin) codeswift: starting',
      tooltip: 'Starting the codeswift server\nClick for codeswift commands', severity: 'normal' };
    case 'disabled': return { text: '$(circle-slash) codeswift: off',
      tooltip: 'codeswift is disabled (codeswift.enable)\nClick for codeswift commands', severity: 'normal' };
    case 'failed': return { text: '$(error) codeswift: error',
      tooltip: `${detail !== '' ? detail : 'The codeswift server is not running'}\nClick for codeswift commands`,
      severity: 'error' };
  }
}

/** The "show stats" report, a small Markdown document. */
export function statsReport(s: Status): string {
  const st = s.stats;
  const row = (name: string, v: number | null, fmt: (x: number) => string) =>
    `| ${name} | ${v === null ? '–' : fmt(v)} |`;
  return [
    '# codeswift stats', '',
    `State: **${s.state}**${s.message !== '' ? ` — ${s.message}` : ''}`, '',
    `Model \`${s.model || '?'}\` on ${s.device || '?'} (${s.dtype || '?'}, ${s.backend || '?'})`, '',
    '| metric | value |', '|---|---|',
    row('completions', st.completions, String),
    row('latency p50', st.p50Ms, ms),
    row('latency p95', st.p95Ms, ms),
    row('last latency', st.lastMs, ms),
    row('last tokens', st.lastTokens, String),
    row('accepted tokens per step', st.acceptedPerStep, (v) => v.toFixed(2)),
    row('speedup vs. greedy', st.speedup, (v) => `${v.toFixed(2)}×`),
    row('cache hit rate', st.cacheHitRate, pct),
    '',
  ].join('\n');
}
