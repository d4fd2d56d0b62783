// The desktop in the browser: stock noVNC (loaded only here) over the gateway's WebSocket,
// wss://<this origin>/console?ticket=..., with full screen, scaling, Ctrl-Alt-Del, the
// clipboard as the pool allows, and automatic reconnection with a fresh ticket when the tunnel
// drops (tickets are single-use; a new one comes from POST /desktops/{id}/connect).
import { ApiError, Me, api } from './api.js';
import { clear, h } from './dom.js';
import { ConnectReply, PoolItem, connectMessage, handoff, vvPassword } from './portal.js';
import type { Cleanup } from './app.js';

const NOVNC = '/novnc/core/rfb.js';
const MAX_RETRIES = 6;
// A desktop whose host went down is restarted on another: the page waits for it this long,
// asking every RECOVERY_POLL_MS, then reconnects by itself.
const RECOVERY_WAIT_MS = 5 * 60 * 1000;
const RECOVERY_POLL_MS = 2000;
const MOVE_POLL_MS = 100; // a live migration's switch-over lasts well under a second: ask often

// The manager's answer while the desktop is being restarted on another host.
export function beingRestarted(err: ApiError): boolean {
    return err.status === 503 && /being (restarted on|moved to) another host/.test(err.message);
}
// A console that takes the connection but never completes the VNC handshake is given up on.
const HANDSHAKE_MS = 15000;

// What the page is doing, for people (status line) and for tests (data-console on <main>).
type State = 'connecting' | 'connected' | 'reconnecting' | 'ended' | 'failed' | 'closed';

interface Opened { name: string; ticket: string; password: string }

export async function consoleView(main: HTMLElement, args: string[], _q: URLSearchParams,
                                  _me: Me): Promise<Cleanup> {
    // #/console/ID: my desktop; #/console/guest/ID and #/console/desktop/ID: an operator's.
    const kind = args.length > 1 ? args[0] : 'mine';
    const desktopId = Number(args.length > 1 ? args[1] : args[0]);
    const status = h('p', { class: 'console-status', role: 'status', 'aria-live': 'polite' }, 'Connecting…');
    const screen = h('div', { id: 'screen', class: 'screen', 'aria-label': 'Desktop screen' });
    const scale = h('input', { type: 'checkbox', id: 'scale', checked: true });
    const clipText = h('textarea', { id: 'clip-text', rows: 3, 'aria-describedby': 'clip-help' });
    const clipHelp = h('p', { id: 'clip-help', class: 'help' });
    const sendClip = h('button', { type: 'button' }, 'Send to desktop');
    const retry = h('button', { type: 'button', class: 'primary', hidden: true }, 'Reconnect');
    const title = h('h1', { class: 'console-title' }, 'Desktop');
    const frame = h('section', { class: 'console', 'aria-labelledby': 'console-h' });
    title.id = 'console-h';

    let rfb: any = null;
    let pool: PoolItem | undefined;
    let leaving = false;
    let retries = 0;
    let timer: number | undefined;

    const setState = (s: State, text: string) => {
        main.dataset.console = s;
        status.textContent = text;
        retry.hidden = !(s === 'failed' || s === 'closed');
    };

    if (!Number.isInteger(desktopId) || desktopId <= 0) {
        clear(main, h('h1', null, 'Desktop'), h('p', { class: 'form-error', role: 'alert' }, 'No such desktop.'));
        return;
    }
    const ctrlAltDel = h('button', { type: 'button', onclick: () => rfb?.sendCtrlAltDel() }, 'Ctrl-Alt-Del');
    const full = h('button', { type: 'button', onclick: () => {
        if (document.fullscreenElement) void document.exitFullscreen();
        else void frame.requestFullscreen().catch(() => {});
    } }, 'Full screen');
    let backHref = kind === 'mine' ? '#/' : kind === 'guest' ? '#/admin/guests' : '#/admin/pools';
    const back = h('a', { href: backHref, class: 'button' }, kind === 'mine' ? '← My desktops' : `← ${kind === 'guest' ? 'Guests' : 'Pools'}`);
    const disconnectBtn = h('button', { type: 'button', onclick: () => { leaving = true; rfb?.disconnect(); location.hash = backHref; } }, 'Disconnect');
    const clip = h('details', { class: 'clipboard' }, h('summary', null, 'Clipboard'),
        h('label', { for: 'clip-text' }, 'Clipboard text'), clipText, clipHelp, sendClip);
    const toolbar = h('div', { class: 'toolbar', role: 'toolbar', 'aria-label': 'Console' },
        back, h('label', { class: 'inline' }, scale, ' Scale to window'), full, ctrlAltDel, clip, disconnectBtn, retry);
    frame.append(h('div', { class: 'console-head' }, title, status), toolbar, screen);
    clear(main, frame);
    main.classList.add('wide');

    const applyClipboardPolicy = () => {
        const policy = pool?.clipboard ?? 'both';
        const toGuest = policy === 'both' || policy === 'to-guest';
        const fromGuest = policy === 'both' || policy === 'from-guest';
        clip.hidden = !toGuest && !fromGuest;
        sendClip.hidden = !toGuest;
        clipText.readOnly = !toGuest;
        clipHelp.textContent = toGuest && fromGuest ? 'Text copied in the desktop appears here; text typed here can be sent to it.'
            : toGuest ? 'Text typed here can be sent to the desktop (the pool does not share its clipboard back).'
                : 'Text copied in the desktop appears here (the pool does not take text from here).';
    };
    sendClip.addEventListener('click', () => { rfb?.clipboardPasteFrom(clipText.value); rfb?.focus(); });
    scale.addEventListener('change', () => { if (rfb) rfb.scaleViewport = scale.checked; });

    const RFB = (await import(NOVNC as string)).default;

    const ticket = async (): Promise<Opened> => {
        if (kind === 'guest' || kind === 'desktop') {
            const plural = `${kind}s`;
            const [obj, c] = await Promise.all([
                api<{ name: string; pool?: string }>('GET', `/${plural}/${desktopId}`),
                api<{ ticket: string; password: string }>('POST', `/${plural}/${desktopId}/console`, { protocol: 'vnc', ttl: 60 })]);
            if (obj.pool) { // back to the desktop's pool
                backHref = `#/admin/pools/${encodeURIComponent(obj.pool)}`;
                back.href = backHref;
                back.textContent = `← Pool ${obj.pool}`;
            }
            return { name: obj.name, ticket: c.ticket, password: c.password };
        }
        const handed = handoff.get(desktopId);
        let reply: ConnectReply;
        if (handed && handed.reply.expires_at * 1000 > Date.now() + 2000) {
            handoff.delete(desktopId);
            pool = handed.pool;
            reply = handed.reply;
        } else {
            if (handed) {
                // Tickets live a minute: one left waiting (a slow page) is replaced, and said so.
                handoff.delete(desktopId);
                pool = handed.pool;
                status.textContent = 'The console ticket had expired: getting a new one…';
            }
            if (!pool) {
                const r = await api<{ items: PoolItem[] }>('GET', '/me/desktops');
                pool = r.items.find((p) => p.desktops.some((d) => d.id === desktopId));
            }
            reply = await api<ConnectReply>('POST', `/desktops/${desktopId}/connect`, { protocol: 'vnc' });
        }
        return { name: reply.desktop, ticket: reply.ticket, password: vvPassword(reply.vv) };
    };

    let recoveringSince = 0;
    let reconnecting = false; // a tunnel dropped: this open is a reconnect
    const open = async () => {
        clearTimeout(timer);
        let reply: Opened;
        try {
            reply = await ticket();
        } catch (e) {
            const err = e as ApiError;
            if (beingRestarted(err) && Date.now() - (recoveringSince ||= Date.now()) < RECOVERY_WAIT_MS) {
                setState('reconnecting', /being moved/.test(err.message)
                    ? 'Your desktop is being moved to another host (you keep your work). It reconnects by itself in a moment…'
                    : 'Your desktop is being restarted on another host (its host went down). It reconnects by itself once it is back…');
                timer = window.setTimeout(() => { void open(); }, /being moved/.test(err.message) ? MOVE_POLL_MS : RECOVERY_POLL_MS);
                return;
            }
            if (err.status === 503 && reconnecting && retries < MAX_RETRIES) {
                // its host is not answering (yet judged down): try again, as for a dropped tunnel
                const wait = Math.min(1000 * 2 ** retries, 15000);
                retries++;
                setState('reconnecting', `Your desktop's host does not answer: trying again in ${Math.round(wait / 1000)} s (attempt ${retries} of ${MAX_RETRIES})…`);
                timer = window.setTimeout(() => { void open(); }, wait);
                return;
            }
            if (err.status === 404 && kind === 'mine') setState('ended', 'This desktop is no longer yours: its session has ended. Go back to My desktops to connect again.');
            else if (err.status === 401) return;
            else setState('failed', connectMessage(err, pool?.pool ?? 'the pool'));
            return;
        }
        recoveringSince = 0;
        reconnecting = false;
        applyClipboardPolicy();
        title.textContent = reply.name;
        document.title = `${reply.name} · Atrium`;
        const url = `wss://${location.host}/console?ticket=${encodeURIComponent(reply.ticket)}`;
        rfb = new RFB(screen, url, { credentials: { password: reply.password }, wsProtocols: ['binary'] });
        rfb.scaleViewport = scale.checked;
        rfb.resizeSession = false;
        rfb.focusOnClick = true;
        const handshake = window.setTimeout(() => {
            status.textContent = "The desktop's console did not answer.";
            rfb?.disconnect();
        }, HANDSHAKE_MS);
        rfb.addEventListener('connect', () => {
            clearTimeout(handshake);
            retries = 0;
            setState('connected', `Connected to ${reply.name}.`);
            rfb.focus();
        });
        rfb.addEventListener('clipboard', (e: CustomEvent) => {
            const policy = pool?.clipboard ?? 'both';
            if (policy === 'both' || policy === 'from-guest') clipText.value = e.detail.text;
        });
        rfb.addEventListener('securityfailure', () => { /* followed by disconnect: a new ticket */ });
        rfb.addEventListener('disconnect', () => {
            clearTimeout(handshake);
            rfb = null;
            if (leaving) return;
            if (retries >= MAX_RETRIES) {
                setState('failed', 'The connection to your desktop was lost and could not be made again.');
                return;
            }
            // the first attempt at once (a migration's switch-over, a gateway restarted), then backing off
            const wait = retries === 0 ? 100 : Math.min(1000 * 2 ** retries, 15000);
            retries++;
            reconnecting = true;
            setState('reconnecting', `The connection dropped: reconnecting${wait < 1000 ? '' : ` in ${Math.round(wait / 1000)} s`} (attempt ${retries} of ${MAX_RETRIES})…`);
            timer = window.setTimeout(() => { void open(); }, wait);
        });
    };
    retry.addEventListener('click', () => { retries = 0; setState('connecting', 'Connecting…'); void open(); });
    setState('connecting', 'Connecting…');
    await open();
    return () => {
        leaving = true;
        clearTimeout(timer);
        rfb?.disconnect();
        main.classList.remove('wide');
    };
}
