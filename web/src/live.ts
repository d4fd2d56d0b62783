// Live updates: GET /api/v1/stream (server-sent events) read with fetch, which can send the
// bearer token (EventSource cannot). Views subscribe to the tables they show; the stream
// reconnects by itself, backing off, and stops at logout or when the login expires.
import { authHeaders, forgetToken, token } from './api.js';

type ChangeFn = (tables: Set<string>) => void;
type EventsFn = (rows: Record<string, unknown>[]) => void;

const changeSubs = new Set<ChangeFn>();
const eventSubs = new Set<EventsFn>();
let controller: AbortController | null = null;
let lastEvent = 0;
let expired: (() => void) | null = null;
export let connected = false;

export function onChange(fn: ChangeFn): () => void {
    changeSubs.add(fn);
    return () => changeSubs.delete(fn);
}

export function onEvents(fn: EventsFn): () => void {
    eventSubs.add(fn);
    return () => eventSubs.delete(fn);
}

function setConnected(on: boolean): void {
    connected = on;
    document.getElementById('live-dot')?.classList.toggle('on', on);
    const dot = document.getElementById('live-dot');
    if (dot) dot.title = on ? 'Live updates on' : 'Live updates reconnecting…';
}

function dispatch(name: string, data: string): void {
    let d: any;
    try {
        d = JSON.parse(data);
    } catch {
        return;
    }
    if (name === 'change') {
        const tables = new Set<string>(d.tables ?? []);
        changeSubs.forEach((fn) => fn(tables));
    } else if (name === 'events' && Array.isArray(d)) {
        if (d.length) lastEvent = Number(d[d.length - 1].id) || lastEvent;
        eventSubs.forEach((fn) => fn(d));
    } else if (name === 'hello') {
        lastEvent = Number(d.last_event) || lastEvent;
    } else if (name === 'expired') {
        stop();
        forgetToken();
        expired?.();
    }
}

async function run(signal: AbortSignal): Promise<void> {
    const q = lastEvent ? `?after=${lastEvent}` : '';
    const res = await fetch(`/api/v1/stream${q}`, { headers: authHeaders(), signal, cache: 'no-store' });
    if (res.status === 401) {
        forgetToken();
        expired?.();
        throw new Error('expired');
    }
    if (!res.ok || !res.body) throw new Error(`stream: ${res.status}`);
    setConnected(true);
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let end: number;
        while ((end = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, end);
            buf = buf.slice(end + 2);
            let name = 'message';
            const data: string[] = [];
            for (const line of block.split('\n')) {
                if (line.startsWith('event: ')) name = line.slice(7);
                else if (line.startsWith('data: ')) data.push(line.slice(6));
            }
            if (data.length) dispatch(name, data.join('\n'));
        }
    }
}

export function start(onExpired: () => void): void {
    expired = onExpired;
    if (controller) return;
    const c = new AbortController();
    controller = c;
    let delay = 1000;
    (async () => {
        while (!c.signal.aborted && token()) {
            try {
                await run(c.signal);
                delay = 1000;
            } catch (e) {
                if ((e as Error).message === 'expired') break;
            }
            setConnected(false);
            if (c.signal.aborted) break;
            await new Promise((r) => setTimeout(r, delay));
            delay = Math.min(delay * 2, 30000);
        }
    })();
}

export function stop(): void {
    controller?.abort();
    controller = null;
    setConnected(false);
}
