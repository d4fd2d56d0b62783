// The user portal: my desktops as cards (pool, state, session), Connect in the browser,
// Download .vv for remote-viewer, and reboot / reset / end session on my own desktop when the
// pool allows. Connecting shows where it is ("starting your desktop…") from the live stream.
import { ApiError, Me, Row, api, enc, listAll } from './api.js';
import { append, badge, clear, downloadText, h, toast } from './dom.js';
import * as live from './live.js';
import type { Cleanup } from './app.js';

export interface PoolItem {
    id: number; pool: string; description: string; mode: string; maintenance: boolean;
    user_actions: boolean; clipboard: string; protocols: string[];
    desktops: { id: number; name: string; state: string }[];
}

export interface ConnectReply {
    desktop_id: number; desktop: string; session: number; protocol: string; ticket: string;
    expires_at: number; console_url: string; vv: string;
}

// A connect's answer handed to the console page (in memory only: tickets are single-use).
export const handoff = new Map<number, { reply: ConnectReply; pool: PoolItem }>();

export function vvPassword(vv: string): string {
    return /^password=(.*)$/m.exec(vv)?.[1] ?? '';
}

export function connectMessage(e: ApiError, pool: string): string {
    if (e.status === 503 && /exhausted/.test(e.message))
        return `Every desktop of '${pool}' is in use: the pool is full. Try again in a few minutes, or ask your administrator.`;
    if (e.status === 409 && /maintenance/.test(e.message))
        return `'${pool}' is in maintenance: new connections are paused for now. Try again later.`;
    if (e.status === 503)
        return `Your desktop did not become ready in time (${e.message}). Try again.`;
    return e.message;
}

export async function connect(pool: PoolItem, protocol: 'vnc' | 'spice',
                              desktopId?: number): Promise<ConnectReply> {
    const path = desktopId ? `/desktops/${desktopId}/connect` : `/pools/${enc(pool.id)}/connect`;
    return api<ConnectReply>('POST', path, { protocol });
}

const STAGES: Record<string, [number, string]> = {
    '': [1, 'Choosing a desktop for you…'],
    provisioning: [1, 'Preparing your desktop…'],
    stopped: [2, 'Starting your desktop…'],
    starting: [2, 'Starting your desktop…'],
    running: [3, 'Signing you in…'],
    recovering: [2, 'Your desktop is being restarted on another host…'],
};

// The "starting your desktop…" panel: a progress bar moved by the desktop's state.
function progressPanel(pool: PoolItem): { el: HTMLElement; update: () => Promise<void>; done: () => void } {
    const bar = h('progress', { max: 4, value: 0, 'aria-label': 'Connecting' });
    const text = h('p', { class: 'stage' }, STAGES[''][1]);
    const started = Date.now();
    const secs = h('span', { class: 'muted' }, '0 s');
    const el = h('div', { class: 'progress-panel', role: 'status', 'aria-live': 'polite' },
        h('h2', null, `Starting your desktop…`), text, bar, h('p', { class: 'muted' }, `Pool ${pool.pool} · `, secs));
    const timer = setInterval(() => { secs.textContent = `${Math.round((Date.now() - started) / 1000)} s`; }, 1000);
    const update = async () => {
        try {
            const r = await api<{ items: PoolItem[] }>('GET', '/me/desktops');
            const d = r.items.find((p) => p.id === pool.id)?.desktops[0];
            const [n, label] = STAGES[d?.state ?? ''] ?? STAGES[''];
            bar.value = Math.max(bar.value, n);
            text.textContent = label;
        } catch { /* the connect's own answer tells */ }
    };
    return { el, update, done: () => clearInterval(timer) };
}

async function startConnect(card: HTMLElement, pool: PoolItem, desktopId?: number): Promise<void> {
    const panel = progressPanel(pool);
    const slot = card.querySelector('.card-status')!;
    clear(slot, panel.el);
    card.setAttribute('aria-busy', 'true');
    const unsub = live.onChange((t) => { if (t.has('desktops')) void panel.update(); });
    try {
        const reply = await connect(pool, 'vnc', desktopId);
        panel.el.querySelector('progress')!.value = 4;
        handoff.set(reply.desktop_id, { reply, pool });
        location.hash = `#/console/${reply.desktop_id}`;
    } catch (e) {
        clear(slot, h('p', { class: 'form-error', role: 'alert' }, connectMessage(e as ApiError, pool.pool)));
    } finally {
        unsub();
        panel.done();
        card.removeAttribute('aria-busy');
    }
}

async function downloadVv(pool: PoolItem, desktopId?: number): Promise<void> {
    try {
        const r = await connect(pool, 'spice', desktopId);
        downloadText(`${r.desktop}.vv`, 'application/x-virt-viewer', r.vv);
        toast(`Opened a connection file for ${r.desktop}: open it with remote-viewer within a minute.`);
    } catch (e) {
        toast(connectMessage(e as ApiError, pool.pool), 'error');
    }
}

async function act(what: string, path: string, confirmText: string): Promise<void> {
    if (!confirm(confirmText)) return;
    try {
        await api('POST', path, {});
        toast(`${what}: done.`);
    } catch (e) {
        toast(`${what}: ${(e as Error).message}`, 'error');
    }
}

function poolCard(pool: PoolItem, sessions: Row[]): HTMLElement {
    const d = pool.desktops[0];
    const session = d ? sessions.find((s) => s.desktop === d.name || s.desktop_id === d.id) : undefined;
    const blocked = pool.maintenance;
    const card = h('article', { class: 'card desktop-card', 'data-pool': pool.pool, 'aria-labelledby': `pool-${pool.id}` });
    const connectBtn = h('button', { type: 'button', class: 'primary', disabled: blocked,
        onclick: () => startConnect(card, pool, d?.id) }, d ? `Connect to ${d.name}` : 'Connect');
    connectBtn.setAttribute('aria-label', `Connect to ${d ? d.name : `a desktop of ${pool.pool}`} in the browser`);
    const actions = h('div', { class: 'actions' }, connectBtn,
        h('button', { type: 'button', disabled: blocked, onclick: () => downloadVv(pool, d?.id),
            title: 'A connection file for remote-viewer (virt-viewer)' }, 'Download .vv'));
    if (d && pool.user_actions) {
        actions.append(
            h('button', { type: 'button', onclick: () => act('Reboot', `/desktops/${d.id}/reboot`, `Reboot ${d.name}? Unsaved work in it is lost.`) }, 'Reboot'),
            h('button', { type: 'button', onclick: () => act('Reset', `/desktops/${d.id}/reset`, `Power-cycle ${d.name} at once? Unsaved work in it is lost.`) }, 'Reset'));
    }
    if (session) {
        actions.append(h('button', { type: 'button', class: 'danger', onclick: () => act('End session', `/sessions/${session.id}/end`,
            `End your session on ${d?.name}? You are logged off${pool.mode === 'stateless' ? ' and the desktop is reset' : ''}.`) }, 'End session'));
    }
    append(card, [
        h('header', null, h('h2', { id: `pool-${pool.id}` }, pool.pool),
            h('span', { class: 'tag' }, pool.mode), blocked ? badge('maintenance') : null),
        pool.description ? h('p', { class: 'muted' }, pool.description) : null,
        h('dl', { class: 'facts' },
            h('dt', null, 'Desktop'), h('dd', null, d ? d.name : 'one is given to you when you connect'),
            h('dt', null, 'State'), h('dd', null, d ? badge(d.state) : '—'),
            h('dt', null, 'Session'), h('dd', null, session ? badge(String(session.state)) : 'none')),
        h('div', { class: 'card-status' }, blocked ? h('p', { class: 'notice' }, 'This pool is in maintenance: new connections are paused.')
            : d?.state === 'recovering' ? h('p', { class: 'notice', role: 'status' }, 'Your desktop is being restarted on another host: its host went down. Connect again in a few seconds.')
            : d?.state === 'unavailable' ? h('p', { class: 'notice' }, 'Your desktop is unavailable: its host is down and no other host reaches its disk. Your administrator has been told.')
            : null),
        actions]);
    return card;
}

export async function portalView(main: HTMLElement, _args: string[], _q: URLSearchParams,
                                 _me: Me): Promise<Cleanup> {
    const list = h('div', { class: 'cards', id: 'desktops' });
    clear(main, h('h1', null, 'My desktops'), list);
    let busy = false;
    let shown = '';
    const load = async () => {
        if (busy || list.querySelector('[aria-busy="true"]')) return;
        busy = true;
        try {
            const [r, sessions] = await Promise.all([
                api<{ items: PoolItem[] }>('GET', '/me/desktops'),
                listAll('sessions').catch(() => [] as Row[])]);
            // Drawn again only when something shown changed: a row written for another
            // reason must not take the focus (or a click) away from a button.
            const key = JSON.stringify([r.items, sessions.map((x) => [x.id, x.desktop, x.state])]);
            if (key === shown) return;
            shown = key;
            if (r.items.length === 0) {
                clear(list, h('p', { class: 'empty' }, 'No desktop is open to you yet. Ask your administrator to entitle you to a pool.'));
            } else {
                clear(list, r.items.map((p) => poolCard(p, sessions)));
            }
        } finally {
            busy = false;
        }
    };
    await load();
    let t: number | undefined;
    const unsub = live.onChange((tables) => {
        if (!tables.has('desktops') && !tables.has('sessions') && !tables.has('pools')) return;
        clearTimeout(t);
        t = window.setTimeout(() => { void load().catch(() => {}); }, 300);
    });
    return () => { unsub(); clearTimeout(t); };
}
