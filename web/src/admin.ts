// The admin dashboard: the overview, and one page per kind of object built from a PageSpec
// (columns, the create and edit forms from the OpenAPI schema, row actions, extra panels).
// Every page follows the live stream: when a table it shows changes, it fetches it again.
import { Me, Row, api, enc, listAll } from './api.js';
import { Child, badge, clear, formatBytes, h, toast, when } from './dom.js';
import { FieldOpt, buildForm, labelOf } from './forms.js';
import * as live from './live.js';
import { atLeast } from './app.js';
import type { Cleanup } from './app.js';
import { PAGES } from './admin-pages.js';

export interface Col { key: string; label?: string; render?: (r: Row) => Child }
export interface Action {
    label: string;
    show?: (r: Row) => boolean;
    confirm?: (r: Row) => string;
    danger?: boolean;
    run: (r: Row, page: PageCtx) => Promise<unknown>;
}
export interface PageSpec {
    title: string;
    plural: string;            // API collection
    schema: string;            // OpenAPI schema of its objects
    tables?: string[];         // live tables that refresh it (default: plural with _ for -)
    intro?: string;
    columns: Col[];
    create?: (string | FieldOpt)[];
    createLabel?: string;
    createHref?: string;       // a page of its own (the pool wizard)
    edit?: (string | FieldOpt)[];
    deletable?: boolean;
    actions?: Action[];
    filters?: { name: string; label: string; choices?: string[] }[];
    search?: boolean;
    params?: Record<string, string>;
    role?: 'helpdesk' | 'operator' | 'admin';
    link?: (r: Row) => string; // the row's own page
    extra?: (ctx: PageCtx) => Promise<HTMLElement | null>;
}
export interface PageCtx { panel: HTMLElement; reload: () => Promise<void>; me: Me }

export function nameOf(r: Row): string {
    return String(r.name ?? r.id);
}

export function text(v: unknown): string {
    if (v === null || v === undefined) return '';
    if (typeof v === 'boolean') return v ? 'yes' : 'no';
    return String(v);
}

// ---- panels: forms open above the table, focus moves into them ------------------------------

export function openPanel(panel: HTMLElement, title: string, body: HTMLElement): void {
    const close = h('button', { type: 'button', class: 'link close', 'aria-label': 'Close', onclick: () => clear(panel) }, '×');
    clear(panel, h('section', { class: 'panel', 'aria-labelledby': 'panel-h' },
        h('div', { class: 'panel-head' }, h('h2', { id: 'panel-h', tabindex: '-1' }, title), close), body));
    panel.querySelector<HTMLElement>('input, select, textarea, button:not(.close)')?.focus();
}

export async function formPanel(ctx: PageCtx, title: string, schemaName: string,
                                fields: (string | FieldOpt)[], submitLabel: string,
                                submit: (body: Record<string, unknown>) => Promise<unknown>,
                                values?: Row, done?: (r: unknown) => void): Promise<void> {
    const form = await buildForm({
        schema: schemaName, fields, values, submitLabel, onSubmit: submit,
        onCancel: () => clear(ctx.panel),
        onDone: (r) => { clear(ctx.panel); toast(`${title}: done.`); void ctx.reload(); done?.(r); },
    });
    openPanel(ctx.panel, title, form);
}

export function bar(used: number, total: number, label: string, unit: (n: number) => string): HTMLElement {
    const pct = total > 0 ? Math.min(100, Math.round((used * 100) / total)) : 0;
    return h('div', { class: 'cap' },
        h('span', { class: 'cap-label' }, label),
        h('meter', { min: 0, max: total || 1, value: used, low: total * 0.7, high: total * 0.9, optimum: 0, 'aria-label': `${label} ${pct}% used` }),
        h('span', { class: 'cap-text' }, total > 0 ? `${unit(used)} of ${unit(total)} (${pct}%)` : 'not reported'));
}

// ---- tables -------------------------------------------------------------------------------

function table(spec: PageSpec, rows: Row[], ctx: PageCtx): HTMLElement {
    const cols = spec.columns;
    const hasActions = !!(spec.actions?.length || spec.edit || spec.deletable);
    return h('div', { class: 'table-wrap' }, h('table', null,
        h('caption', { class: 'sr-only' }, spec.title),
        h('thead', null, h('tr', null, cols.map((c) => h('th', { scope: 'col' }, c.label ?? labelOf(c.key))),
            hasActions ? h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'Actions')) : null)),
        h('tbody', null, rows.length === 0
            ? h('tr', null, h('td', { colspan: cols.length + 1, class: 'empty' }, `No ${spec.title.toLowerCase()} yet.`))
            : rows.map((r) => h('tr', { 'data-name': nameOf(r) },
                cols.map((c, i) => {
                    const v = c.render ? c.render(r) : text(r[c.key]);
                    const content = i === 0 && spec.link ? h('a', { href: spec.link(r) }, v) : v;
                    return i === 0 ? h('th', { scope: 'row' }, content) : h('td', null, content);
                }),
                hasActions ? h('td', { class: 'row-actions' }, rowActions(spec, r, ctx)) : null)))));
}

function rowActions(spec: PageSpec, r: Row, ctx: PageCtx): Child[] {
    const out: Child[] = [];
    const who = nameOf(r);
    for (const a of spec.actions ?? []) {
        if (a.show && !a.show(r)) continue;
        out.push(h('button', {
            type: 'button', class: a.danger ? 'small danger' : 'small', 'aria-label': `${a.label} ${who}`,
            onclick: async (ev: Event) => {
                if (a.confirm && !confirm(a.confirm(r))) return;
                const b = ev.currentTarget as HTMLButtonElement;
                b.disabled = true;
                try {
                    await a.run(r, ctx);
                    await ctx.reload();
                } catch (e) {
                    toast(`${a.label} ${who}: ${(e as Error).message}`, 'error');
                } finally {
                    b.disabled = false;
                }
            },
        }, a.label));
    }
    if (spec.edit) {
        out.push(h('button', { type: 'button', class: 'small', 'aria-label': `Edit ${who}`, onclick: () =>
            formPanel(ctx, `Edit ${who}`, spec.schema, spec.edit!, 'Save',
                (body) => api('PATCH', `/${spec.plural}/${enc(r.id)}`, body), r) }, 'Edit'));
    }
    if (spec.deletable) {
        out.push(h('button', { type: 'button', class: 'small danger', 'aria-label': `Delete ${who}`, onclick: async () => {
            if (!confirm(`Delete ${who}? This cannot be undone.`)) return;
            try {
                await api('DELETE', `/${spec.plural}/${enc(r.id)}`);
                toast(`Deleted ${who}.`);
                await ctx.reload();
            } catch (e) {
                toast(`Delete ${who}: ${(e as Error).message}`, 'error');
            }
        } }, 'Delete'));
    }
    return out;
}

async function resourcePage(main: HTMLElement, spec: PageSpec, me: Me): Promise<Cleanup> {
    const panel = h('div', { class: 'panel-slot' });
    const body = h('div', { class: 'table-slot', 'aria-live': 'polite', 'aria-busy': 'true' });
    const extraSlot = h('div', { class: 'extra-slot' });
    const filterVals: Record<string, string> = {};
    const search = h('input', { type: 'search', id: 'search', placeholder: 'Search…', 'aria-label': `Search ${spec.title.toLowerCase()}` });
    let rows: Row[] = [];
    const ctx: PageCtx = { panel, me, reload: async () => {} };

    let drawn = '';
    const draw = () => {
        const q = search.value.trim().toLowerCase();
        const key = JSON.stringify([q, rows]);
        if (key === drawn) return; // unchanged: keep the focus where it is
        drawn = key;
        const shown = q ? rows.filter((r) => JSON.stringify(r).toLowerCase().includes(q)) : rows;
        clear(body, table(spec, shown, ctx));
        body.setAttribute('aria-busy', 'false');
    };
    ctx.reload = async () => {
        rows = await listAll(spec.plural, { ...(spec.params ?? {}), ...filterVals }, 2000);
        draw();
    };
    const tools = h('div', { class: 'page-tools' });
    if (spec.create && (!spec.role || atLeast(me, spec.role))) {
        tools.append(h('button', { type: 'button', class: 'primary', onclick: () =>
            formPanel(ctx, spec.createLabel ?? `New ${spec.schema.toLowerCase()}`, spec.schema, spec.create!, 'Create',
                (b) => api('POST', `/${spec.plural}`, b)) }, spec.createLabel ?? `New ${spec.schema.toLowerCase()}`));
    }
    if (spec.createHref) tools.append(h('a', { class: 'button primary', href: spec.createHref }, spec.createLabel ?? 'New'));
    for (const f of spec.filters ?? []) {
        const id = `filter-${f.name}`;
        const input = f.choices
            ? h('select', { id }, h('option', { value: '' }, 'all'), f.choices.map((c) => h('option', { value: c }, c)))
            : h('input', { id, type: 'text', placeholder: 'any' });
        input.addEventListener('change', () => {
            if (input.value) filterVals[f.name] = input.value;
            else delete filterVals[f.name];
            void ctx.reload().catch((e) => toast((e as Error).message, 'error'));
        });
        tools.append(h('label', { class: 'inline', for: id }, f.label, ' ', input));
    }
    if (spec.search !== false) {
        search.addEventListener('input', draw);
        tools.append(search);
    }
    clear(main, h('h1', null, spec.title), spec.intro ? h('p', { class: 'muted' }, spec.intro) : null,
        tools, panel, extraSlot, body);
    await ctx.reload();
    if (spec.extra) {
        const x = await spec.extra(ctx);
        if (x) extraSlot.append(x);
    }
    const tables = spec.tables ?? [spec.plural.replace(/-/g, '_')];
    let t: number | undefined;
    const unsub = live.onChange((changed) => {
        if (!tables.some((x) => changed.has(x))) return;
        clearTimeout(t);
        t = window.setTimeout(() => { void ctx.reload().catch(() => {}); }, 400);
    });
    return () => { unsub(); clearTimeout(t); };
}

// ---- overview -----------------------------------------------------------------------------

function hostCard(host: Row): HTMLElement {
    const mb = (n: number) => formatBytes(n * 1048576);
    let vols: { path: string; free_mb: number; total_mb?: number }[] = [];
    try { vols = JSON.parse(String(host.volumes || '[]')); } catch { vols = []; }
    const ram = Number(host.ram_mb) || 0;
    return h('article', { class: 'card host-card', 'data-host': nameOf(host) },
        h('header', null, h('h3', null, nameOf(host)), badge(String(host.state))),
        h('p', { class: 'muted' }, `${host.cpus ?? 0} CPUs · ${host.running ?? 0} running · ${host.accel ?? ''}`),
        bar(Number(host.running) || 0, Math.max(Number(host.cpus) || 0, 1) * 4, 'CPU (domains per 4 vCPU)', (n) => String(n)),
        bar(Number(host.ram_committed_mb) || 0, ram, 'RAM committed', mb),
        bar(ram - (Number(host.ram_free_mb) || 0), ram, 'RAM in use', mb),
        vols.map((v) => bar((v.total_mb ?? 0) - v.free_mb, v.total_mb ?? 0, `Storage ${v.path}`, mb)));
}

function eventItem(e: Row): HTMLElement {
    return h('li', null, h('time', { datetime: String(e.time) }, when(String(e.time))), ' ',
        h('strong', null, text(e.actor)), ' ', text(e.action), ' ',
        e.object_kind ? `${e.object_kind} ${text(e.object_name)}` : '');
}

interface Cluster {
    managers: { name: string; url: string; seen_ms_ago: number }[];
    leader: string; term: number; lease_ms_left: number; this: string; role: string; store: string;
}

// The managers (GET /cluster): which one leads, in which term; alone on SQLite.
function managersView(c: Cluster): Child {
    if (c.role === 'alone')
        return h('p', { class: 'managers', 'data-role': 'alone' },
            `One manager (${c.this}), its state in SQLite: nothing to fail over to.`);
    return h('ul', { class: 'managers', 'data-role': c.role },
        c.managers.map((m) => h('li', { 'data-manager': m.name },
            h('strong', null, m.name), ' ', badge(m.name === c.leader ? 'leader' : 'standby'), ' ',
            m.name === c.leader ? `term ${c.term}, lease ${(c.lease_ms_left / 1000).toFixed(1)} s left · ` : '',
            h('span', { class: 'muted' }, `${m.url} · seen ${(m.seen_ms_ago / 1000).toFixed(1)} s ago`),
            m.name === c.this ? ' (answered this page)' : '')));
}

async function overview(main: HTMLElement): Promise<Cleanup> {
    const stats = h('div', { class: 'stats' });
    const hosts = h('div', { class: 'cards hosts' });
    const events = h('ol', { class: 'events', 'aria-live': 'polite' });
    const managers = h('div', { class: 'managers-slot' });
    clear(main, h('h1', null, 'Overview'), stats,
        h('h2', null, 'Managers'), managers,
        h('h2', null, 'Hosts'), hosts,
        h('h2', null, 'Recent events'), events, h('p', null, h('a', { href: '#/admin/events' }, 'All events →')));
    const stat = (label: string, value: Child, href: string) =>
        h('a', { class: 'stat', href }, h('span', { class: 'stat-value' }, value), h('span', { class: 'stat-label' }, label));
    const load = async () => {
        const [hs, ds, ss] = await Promise.all([listAll('hosts'), listAll('desktops'), listAll('sessions')]);
        const byState = new Map<string, number>();
        ds.forEach((d) => byState.set(String(d.state), (byState.get(String(d.state)) ?? 0) + 1));
        const up = hs.filter((x) => x.state === 'up').length;
        clear(stats,
            stat('hosts up', `${up} / ${hs.length}`, '#/admin/hosts'),
            stat('hosts down', String(hs.filter((x) => x.state === 'down').length), '#/admin/hosts'),
            stat('hosts suspect', String(hs.filter((x) => x.state === 'suspect').length), '#/admin/hosts'),
            stat('desktops', String(ds.length), '#/admin/pools'),
            [...byState.entries()].sort().map(([s, n]) => stat(`desktops ${s}`, String(n), '#/admin/pools')),
            stat('sessions', String(ss.length), '#/admin/sessions'),
            stat('connected', String(ss.filter((x) => x.state === 'connected').length), '#/admin/sessions'));
        clear(hosts, hs.length ? hs.map(hostCard) : h('p', { class: 'empty' }, 'No host has joined yet: see Hosts for a join token.'));
        clear(managers, managersView(await api<Cluster>('GET', '/cluster')));
    };
    const r = await api<{ items: Row[] }>('GET', '/events?order=desc&limit=15');
    clear(events, r.items.map(eventItem));
    await load();
    let t: number | undefined;
    const unsub1 = live.onChange((c) => {
        if (!['hosts', 'desktops', 'sessions'].some((x) => c.has(x))) return;
        clearTimeout(t);
        t = window.setTimeout(() => { void load().catch(() => {}); }, 500);
    });
    const unsub2 = live.onEvents((rows) => {
        for (const e of rows) events.prepend(eventItem(e as Row));
        while (events.children.length > 15) events.lastElementChild?.remove();
    });
    return () => { unsub1(); unsub2(); clearTimeout(t); };
}

// ---- the section ----------------------------------------------------------------------------

const SECTIONS: [string, string][] = [
    ['', 'Overview'], ['hosts', 'Hosts'], ['storages', 'Image storages'], ['volumes', 'Volumes'],
    ['media', 'Media'], ['guests', 'Guests'],
    ['templates', 'Templates'], ['pools', 'Pools'], ['users', 'Users'], ['groups', 'Groups'],
    ['permissions', 'Pool permissions'],
    ['sessions', 'Sessions'], ['terminals', 'Terminals'], ['operations', 'Operations'], ['events', 'Events'],
];

export async function adminView(main: HTMLElement, args: string[], query: URLSearchParams,
                                me: Me): Promise<Cleanup> {
    // Someone who runs single pools only (pool permissions) sees those pools and nothing else.
    const poolOnly = !atLeast(me, 'helpdesk');
    const page = args[0] ?? (atLeast(me, 'operator') ? '' : poolOnly ? 'pools' : 'sessions');
    const side = h('nav', { class: 'side', 'aria-label': 'Dashboard' }, h('ul', null,
        poolOnly
            ? (me.pool_roles ?? []).map((p) => h('li', null, h('a', { href: `#/admin/pools/${encodeURIComponent(p.pool)}`, 'aria-current': args[1] === p.pool ? 'page' : undefined }, `Pool ${p.pool}`)))
            : SECTIONS.filter(([p]) => atLeast(me, PAGES[p]?.role ?? 'operator'))
                .map(([p, label]) => h('li', null, h('a', { href: `#/admin${p ? `/${p}` : ''}`, 'aria-current': p === page ? 'page' : undefined }, label)))));
    const content = h('div', { class: 'content' });
    main.classList.add('with-side');
    clear(main, side, content);
    let inner: Cleanup;
    if (poolOnly && page === 'pools' && !args[1]) {
        clear(content, h('h1', null, 'My pools'), h('ul', { class: 'plain' }, (me.pool_roles ?? []).map((p) =>
            h('li', null, h('a', { href: `#/admin/pools/${encodeURIComponent(p.pool)}` }, p.pool), ` (${p.role})`))));
    } else if (poolOnly && !(page === 'pools' && me.pool_roles?.some((p) => p.pool === args[1])))
        clear(content, h('h1', null, 'Not allowed'), h('p', null, 'You run single pools only: choose one on the left.'));
    else if (!poolOnly && !atLeast(me, PAGES[page]?.role ?? 'operator')) clear(content, h('h1', null, 'Not allowed'), h('p', null, `The ${me.role} role does not open this page.`));
    else if (page === '') inner = await overview(content);
    else if (PAGES[page]?.view) inner = await PAGES[page].view!(content, args.slice(1), query, me);
    else if (PAGES[page]?.spec) inner = await resourcePage(content, PAGES[page].spec!, me);
    else clear(content, h('h1', null, 'Not found'), h('p', null, 'There is no such page.'));
    return () => { if (typeof inner === 'function') inner(); main.classList.remove('with-side'); };
}

export { resourcePage };
