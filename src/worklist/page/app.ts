/**
 * The worklist page (runs in the browser; bundled by src/worklist/bundle.ts with esbuild). Every value from the
 * server reaches the DOM through textContent or a DOM property, never innerHTML: patient names are data from
 * outside (a Patient Name may hold markup), and the page's Content-Security-Policy allows no inline script either.
 */

import { viewerUrl } from './viewer-url.ts';

type Priority = 'urgent' | 'positive' | 'failed' | 'pending' | 'negative' | 'unprocessed';
type Decision = 'agree' | 'disagree' | 'dismissed';
type Row = {
  study: string;
  patientName: string | null;
  patientId: string | null;
  accessionNumber: string | null;
  modalities: string[];
  detectors: string[];
  priority: Priority;
  studyScore: number | null;
  keyFinding: string | null;
  hasHeatmap: boolean;
  arrivedAt: string;
  resultAt: string | null;
  review: { state: 'new' | 'opened' | 'reviewed'; decision: Decision | null; reader: string | null; reason: string | null };
  secondReview: { decision: Decision; reader: string } | null;
};
type ListAnswer = { version: number; total: number; offset: number; limit: number; rows: Row[]; facets: { modalities: string[]; detectors: string[] } };
type PageConfig = { viewerUrlPattern: string; viewerPort: number; viewerEnabled: boolean; user: string };

const PRIORITY_LABEL: Record<Priority, string> = { urgent: 'urgent', positive: 'positive', failed: 'failed', pending: 'pending', negative: 'negative', unprocessed: 'not processed' };
const PAGE = 50;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const state = {
  tab: 'all' as 'all' | 'second',
  offset: 0,
  rows: [] as Row[],
  total: 0,
  selected: null as string | null,
  etag: '' as string,
  etagUrl: '' as string,
  config: { viewerUrlPattern: '', viewerPort: 0, user: '' } as PageConfig,
  reviewing: null as { study: string; stage: 'first' | 'second' } | null,
};

function el<K extends keyof HTMLElementTagNameMap>(tag: K, cls?: string, text?: string | null): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = text;
  return e;
}

/**
 * DICOM PN "Family^Given^Middle^Prefix^Suffix" as a reader says it. Ideographic and phonetic groups after '=' stay
 * as they are: dropping them could hide part of a name a reader needs to match the patient.
 */
function personName(pn: string | null): string {
  if (!pn) return '';
  const [family = '', given = '', middle = ''] = pn.split('^');
  return [family, [given, middle].filter(Boolean).join(' ')].filter(Boolean).join(', ');
}

function age(iso: string): string {
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (s < 60) return `${Math.round(s)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${(s / 3600).toFixed(1)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

function query(): URLSearchParams {
  const f = new FormData($<HTMLFormElement>('filters'));
  const p = new URLSearchParams();
  p.set('tab', state.tab);
  for (const k of ['priority', 'modality', 'detector', 'from', 'to', 'review']) {
    const v = f.get(k);
    if (typeof v === 'string' && v) p.set(k, v);
  }
  // The day filters are the reader's calendar days, not UTC ones.
  if (p.has('from') || p.has('to')) p.set('tz', Intl.DateTimeFormat().resolvedOptions().timeZone);
  p.set('limit', String(PAGE));
  p.set('offset', String(state.offset));
  return p;
}

async function api(path: string, init?: RequestInit): Promise<Response> {
  const r = await fetch(path, { credentials: 'same-origin', ...init });
  if (!r.ok && r.status !== 304) throw new Error(`${init?.method ?? 'GET'} ${path}: ${r.status}`);
  return r;
}

function fillFacet(name: 'modality' | 'detector', values: string[]): void {
  const sel = document.querySelector<HTMLSelectElement>(`select[name="${name}"]`)!;
  const current = sel.value;
  const have = new Set([...sel.options].map((o) => o.value));
  for (const v of values) if (!have.has(v)) sel.append(new Option(v, v));
  sel.value = current;
}

let loading: Promise<void> | null = null;
let again = false;
/** Loads the current page; calls while one is in flight coalesce into one more load. */
function load(): Promise<void> {
  if (loading) {
    again = true;
    return loading;
  }
  loading = (async () => {
    try {
      const url = `/api/worklist?${query()}`;
      const headers: Record<string, string> = url === state.etagUrl && state.etag ? { 'if-none-match': state.etag } : {};
      const r = await api(url, { headers });
      if (r.status !== 304) {
        const body = (await r.json()) as ListAnswer;
        state.etag = r.headers.get('etag') ?? '';
        state.etagUrl = url;
        state.rows = body.rows;
        state.total = body.total;
        fillFacet('modality', body.facets.modalities);
        fillFacet('detector', body.facets.detectors);
        render();
      }
    } catch (err) {
      $('live').textContent = `error: ${(err as Error).message}`;
    } finally {
      loading = null;
      if (again) {
        again = false;
        void load();
      }
    }
  })();
  return loading;
}

function reviewText(r: Row): string {
  const rv = r.review;
  let t = rv.state === 'reviewed' ? `${rv.decision} (${rv.reader})` : rv.state;
  if (r.secondReview) t += ` · 2nd: ${r.secondReview.decision} (${r.secondReview.reader})`;
  return t;
}

function openLink(r: Row): HTMLAnchorElement {
  const open = el('a', 'open', 'Open');
  open.href = viewerUrl(state.config.viewerUrlPattern, r, location.hostname, state.config.viewerPort);
  open.target = '_blank';
  open.rel = 'noopener';
  open.addEventListener('click', (ev) => {
    ev.stopPropagation();
    void api(`/api/worklist/${encodeURIComponent(r.study)}/open`, { method: 'POST' }).catch(() => undefined);
  });
  return open;
}

function renderRow(r: Row): HTMLTableRowElement {
  const tr = el('tr');
  tr.dataset.study = r.study;
  tr.dataset.priority = r.priority;
  tr.tabIndex = -1;
  if (r.study === state.selected) tr.classList.add('selected');

  const badge = el('td');
  badge.append(el('span', `badge p-${r.priority}`, PRIORITY_LABEL[r.priority]));
  const thumb = el('td');
  if (r.hasHeatmap) {
    const img = el('img', 'thumb');
    img.alt = 'heatmap';
    img.loading = 'lazy';
    img.src = `/api/worklist/${encodeURIComponent(r.study)}/heatmap.png`;
    thumb.append(img);
  } else thumb.append(el('div', 'nothumb', '—'));
  const name = el('td', 'patient-name', personName(r.patientName));
  const pid = el('td', 'mono patient-id', r.patientId);
  const acc = el('td', 'mono', r.accessionNumber);
  const mod = el('td', undefined, r.modalities.join(' '));
  const finding = el('td', 'finding', r.keyFinding ?? (r.priority === 'pending' ? 'processing…' : ''));
  finding.title = r.detectors.join(', ');
  const score = el('td', 'mono', r.studyScore === null ? '' : r.studyScore.toFixed(2));
  const arrived = el('td', 'muted', age(r.arrivedAt));
  arrived.title = r.arrivedAt;
  const result = el('td', 'muted', r.resultAt ? age(r.resultAt) : '');
  if (r.resultAt) result.title = r.resultAt;
  const review = el('td', 'review-state', reviewText(r));
  const actions = el('td', 'review-actions');
  // The default pattern points at the built-in viewer: with it switched off the link would lead nowhere.
  if (!state.config.viewerEnabled && state.config.viewerUrlPattern.includes('{viewerPort}')) {
    const none = el('span', 'open muted', 'No viewer');
    none.title = 'No viewer is configured: set viewer.enabled or worklist.viewerUrlPattern (docs/configuration.md)';
    actions.append(none);
  } else actions.append(openLink(r));
  for (const [d, label] of [['agree', 'Agree'], ['disagree', 'Disagree'], ['dismissed', 'Dismiss']] as const) {
    const b = el('button', undefined, label);
    b.type = 'button';
    b.dataset.decision = d;
    b.addEventListener('click', (ev) => {
      ev.stopPropagation();
      openReview(r.study, d);
    });
    actions.append(b);
  }
  tr.append(badge, thumb, name, pid, acc, mod, finding, score, arrived, result, review, actions);
  tr.addEventListener('click', () => select(r.study));
  tr.addEventListener('dblclick', () => actions.querySelector<HTMLAnchorElement>('a.open')?.click());
  return tr;
}

function render(): void {
  const body = $('rows');
  body.replaceChildren(...state.rows.map(renderRow));
  $('empty').hidden = state.rows.length > 0;
  const last = Math.min(state.offset + state.rows.length, state.total);
  $('page').textContent = state.total ? `${state.offset + 1}–${last} of ${state.total}` : '';
  $<HTMLButtonElement>('prev').disabled = state.offset === 0;
  $<HTMLButtonElement>('next').disabled = last >= state.total;
  if (state.selected && !state.rows.some((r) => r.study === state.selected)) state.selected = null;
  if (!state.selected && state.rows.length) select(state.rows[0].study, false);
}

function select(study: string, focus = true): void {
  state.selected = study;
  for (const tr of $('rows').querySelectorAll<HTMLTableRowElement>('tr')) {
    const on = tr.dataset.study === study;
    tr.classList.toggle('selected', on);
    if (on && focus) {
      tr.focus({ preventScroll: true });
      tr.scrollIntoView({ block: 'nearest' });
    }
  }
}

function move(delta: number): void {
  if (!state.rows.length) return;
  const i = state.rows.findIndex((r) => r.study === state.selected);
  const next = Math.max(0, Math.min(state.rows.length - 1, (i < 0 ? 0 : i) + delta));
  select(state.rows[next].study);
}

function openReview(study: string, decision: Decision): void {
  const dlg = $<HTMLDialogElement>('review');
  const form = $<HTMLFormElement>('review-form');
  form.reset();
  const stage = state.tab === 'second' ? 'second' : 'first';
  state.reviewing = { study, stage };
  $('review-title').textContent = stage === 'second' ? 'Second-reader decision' : 'Review of the AI result';
  $('review-study').textContent = study;
  const radio = form.querySelector<HTMLInputElement>(`input[name="decision"][value="${decision}"]`);
  if (radio) radio.checked = true;
  dlg.showModal();
}

async function saveReview(): Promise<void> {
  const r = state.reviewing;
  if (!r) return;
  const f = new FormData($<HTMLFormElement>('review-form'));
  const decision = f.get('decision');
  const reason = f.get('reason');
  await api(`/api/worklist/${encodeURIComponent(r.study)}/review`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ decision, reason: typeof reason === 'string' && reason.trim() ? reason.trim() : null, stage: r.stage }),
  });
  state.reviewing = null;
  await load();
}

function setTab(tab: 'all' | 'second'): void {
  state.tab = tab;
  state.offset = 0;
  for (const b of document.querySelectorAll<HTMLButtonElement>('nav button')) b.setAttribute('aria-selected', String(b.dataset.tab === tab));
  document.body.dataset.tab = tab;
  void load();
}

function onKey(ev: KeyboardEvent): void {
  const t = ev.target as HTMLElement | null;
  if ($<HTMLDialogElement>('review').open || (t && /^(INPUT|SELECT|TEXTAREA)$/.test(t.tagName)) || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const row = state.rows.find((r) => r.study === state.selected);
  switch (ev.key) {
    case 'j':
    case 'ArrowDown':
      move(1);
      break;
    case 'k':
    case 'ArrowUp':
      move(-1);
      break;
    case 'Enter':
      if (!row) return;
      $('rows').querySelector<HTMLTableRowElement>(`tr.selected a.open`)?.click();
      break;
    case 'a':
    case 'd':
    case 'x':
      if (!row) return;
      openReview(row.study, ev.key === 'a' ? 'agree' : ev.key === 'd' ? 'disagree' : 'dismissed');
      break;
    default:
      return;
  }
  ev.preventDefault();
}

function connect(): void {
  const live = $('live');
  const es = new EventSource('/api/worklist/events');
  es.addEventListener('open', () => {
    live.textContent = 'live';
    live.className = 'live on';
    void load(); // catch up on anything missed while disconnected
  });
  es.addEventListener('change', () => void load());
  es.addEventListener('error', () => {
    live.textContent = 'reconnecting…';
    live.className = 'live off';
  });
}

async function main(): Promise<void> {
  state.config = (await (await api('/api/worklist/config')).json()) as PageConfig;
  for (const b of document.querySelectorAll<HTMLButtonElement>('nav button')) b.addEventListener('click', () => setTab(b.dataset.tab === 'second' ? 'second' : 'all'));
  $<HTMLFormElement>('filters').addEventListener('change', () => {
    state.offset = 0;
    void load();
  });
  $<HTMLFormElement>('filters').addEventListener('submit', (ev) => ev.preventDefault());
  $('prev').addEventListener('click', () => {
    state.offset = Math.max(0, state.offset - PAGE);
    void load();
  });
  $('next').addEventListener('click', () => {
    state.offset += PAGE;
    void load();
  });
  $<HTMLDialogElement>('review').addEventListener('close', () => {
    if ($<HTMLDialogElement>('review').returnValue === 'save') void saveReview().catch((err: Error) => ($('live').textContent = `review failed: ${err.message}`));
    else state.reviewing = null;
  });
  document.addEventListener('keydown', onKey);
  // Relative ages stay true without a reload.
  setInterval(() => render(), 30_000);
  await load();
  connect();
}

void main();
