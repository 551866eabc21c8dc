/**
 * Extension settings: reading them defensively, and turning them into what the server needs.
 * Pure: no `vscode` import, so it runs under `node --test`.
 */

export interface Settings {
  enable: boolean;
  /** Path to the `codeswift` executable; '' = use pythonPath, else `codeswift` on PATH. */
  serverPath: string;
  /** Python interpreter that has codeswift installed; used when serverPath is ''. */
  pythonPath: string;
  model: string;
  device: string;
  dtype: string;
  backend: string;
  maxTokens: number;
  debounceMs: number;
  languages: string[];
  /** URL of a shared `codeswift serve`; '' = run the model inside the local server. */
  serverUrl: string;
  index: boolean;
  /** 0 = greedy (identical to plain greedy decoding); > 0 samples the model's own distribution. */
  temperature: number;
  /** Typing along a suggestion: false shows its rest at once; true has the model verify it. */
  verifyCached: boolean;
  /** General corpus: 'auto' (stdlib + site-packages, built in the background), 'off' or a folder. */
  corpus: string;
}

export const DEFAULT_SETTINGS: Readonly<Settings> = Object.freeze({
  enable: true,
  serverPath: '',
  pythonPath: '',
  model: 'qwen2.5-coder-0.5b',
  device: 'auto',
  dtype: 'auto',
  backend: 'auto',
  maxTokens: 64,
  debounceMs: 75,
  languages: ['python', 'javascript', 'javascriptreact', 'typescript', 'typescriptreact',
    'go', 'rust', 'java', 'c', 'cpp'],
  serverUrl: '',
  index: true,
  temperature: 0,
  verifyCached: true,
  corpus: 'auto',
});

export const SETTING_KEYS = Object.keys(DEFAULT_SETTINGS) as (keyof Settings)[];

export const DEVICES = ['auto', 'cuda', 'mps', 'cpu'];
export const DTYPES = ['auto', 'bfloat16', 'float16', 'float32'];
export const BACKENDS = ['auto', 'transformers', 'llamacpp'];
// The server's own bounds (lsp/options.py).
const MAX_TOKENS_LIMIT = 4096;
const DEBOUNCE_LIMIT_MS = 10000;

/** Reads one setting (`codeswift.<key>`); returns undefined when unset. */
export type SettingReader = (key: keyof Settings) => unknown;

export interface ReadResult {
  settings: Settings;
  /** One line per bad value that fell back to its default. */
  warnings: string[];
}

type Check = (value: unknown) => boolean;

const isString: Check = (v) => typeof v === 'string';
const isBool: Check = (v) => typeof v === 'boolean';
const oneOf = (choices: string[]): Check => (v) => isString(v) && choices.includes((v as string).trim());
const intIn = (lo: number, hi: number): Check =>
  (v) => typeof v === 'number' && Number.isInteger(v) && v >= lo && v <= hi;

const CHECKS: Record<keyof Settings, [Check, string]> = {
  enable: [isBool, 'true or false'],
  serverPath: [isString, 'a path'],
  pythonPath: [isString, 'a path'],
  model: [(v) => isString(v) && (v as string).trim() !== '', 'a model name, folder or .gguf file'],
  device: [(v) => oneOf(DEVICES)(v) || (isString(v) && /^cuda:\d+$/.test((v as string).trim())),
    `one of ${DEVICES.join(', ')} (or cuda:N)`],
  dtype: [oneOf(DTYPES), `one of ${DTYPES.join(', ')}`],
  backend: [oneOf(BACKENDS), `one of ${BACKENDS.join(', ')}`],
  maxTokens: [intIn(1, MAX_TOKENS_LIMIT), `an integer from 1 to ${MAX_TOKENS_LIMIT}`],
  debounceMs: [intIn(0, DEBOUNCE_LIMIT_MS), `an integer from 0 to ${DEBOUNCE_LIMIT_MS}`],
  languages: [(v) => Array.isArray(v) && v.length > 0 &&
    v.every((x) => isString(x) && x !== ''), 'a non-empty list of language ids'],
  serverUrl: [(v) => isString(v) && (v === '' || /^https?:\/\/\S+$/.test(v as string)),
    'an http(s) URL or ""'],
  index: [isBool, 'true or false'],
  temperature: [(v) => typeof v === 'number' && v >= 0 && v <= 5, 'a number from 0 to 5'],
  verifyCached: [isBool, 'true or false'],
  corpus: [(v) => isString(v) && (v as string).trim() !== '', '"auto", "off" or a corpus folder'],
};

/** Reads every setting; a missing value takes its default, a bad one its default plus a warning. */
export function readSettings(get: SettingReader): ReadResult {
  const settings = { ...DEFAULT_SETTINGS, languages: [...DEFAULT_SETTINGS.languages] } as Settings;
  const warnings: string[] = [];
  for (const key of SETTING_KEYS) {
    const value = get(key);
    if (value === undefined || value === null) continue;
    const [ok, expected] = CHECKS[key];
    if (ok(value)) {
      (settings as unknown as Record<string, unknown>)[key] = typeof value === 'string' ? value.trim() : value;
    } else {
      warnings.push(`codeswift.${key}: expected ${expected}, got ${JSON.stringify(value)}; ` +
        `using ${JSON.stringify(DEFAULT_SETTINGS[key])}`);
    }
  }
  return { settings, warnings };
}

/** The `initializationOptions` of docs/protocol.md. */
export interface InitializationOptions {
  model: string;
  device: string;
  dtype: string;
  backend: string;
  maxTokens: number;
  debounceMs: number;
  index: boolean;
  serverUrl: string | null;
  temperature: number;
  verifyCached: boolean;
  corpus: string;
}

export function toInitializationOptions(s: Settings): InitializationOptions {
  return {
    model: s.model,
    device: s.device,
    dtype: s.dtype,
    backend: s.backend,
    maxTokens: s.maxTokens,
    debounceMs: s.debounceMs,
    index: s.index,
    serverUrl: s.serverUrl === '' ? null : s.serverUrl,
    temperature: s.temperature,
    verifyCached: s.verifyCached,
    corpus: s.corpus,
  };
}

export interface DocumentFilter { scheme: string; language?: string }

/** Documents the server completes in: files and unsaved buffers of the chosen languages ('*' = all). */
export function documentSelector(languages: string[]): DocumentFilter[] {
  const schemes = ['file', 'untitled'];
  if (languages.includes('*')) return schemes.map((scheme) => ({ scheme }));
  return languages.flatMap((language) => schemes.map((scheme) => ({ scheme, language })));
}

/** Keys whose values differ; any change restarts the server (all of them shape its startup). */
export function changedKeys(before: Settings, after: Settings): (keyof Settings)[] {
  return SETTING_KEYS.filter((k) => JSON.stringify(before[k]) !== JSON.stringify(after[k]));
}
