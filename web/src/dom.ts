// Small DOM helpers: an element builder, the live region screen readers hear, and toasts.

export type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, unknown>;

// h('button', {class: 'primary', onclick: fn, disabled: true}, 'Connect')
export function h<K extends keyof HTMLElementTagNameMap>(
    tag: K, attrs?: Attrs | null, ...children: (Child | Child[])[]): HTMLElementTagNameMap[K] {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs ?? {})) {
        if (v === undefined || v === null || v === false) continue;
        if (k.startsWith('on') && typeof v === 'function') {
            el.addEventListener(k.slice(2), v as EventListener);
        } else if (k === 'checked' || k === 'value' || k === 'disabled' || k === 'selected') {
            (el as unknown as Record<string, unknown>)[k] = v;
        } else {
            el.setAttribute(k, v === true ? '' : String(v));
        }
    }
    append(el, children);
    return el;
}

export function append(el: Element, children: (Child | Child[])[]): void {
    for (const c of children.flat()) {
        if (c === null || c === undefined || c === false) continue;
        el.append(typeof c === 'number' ? String(c) : c);
    }
}

export function clear(el: Element, ...children: (Child | Child[])[]): void {
    el.replaceChildren();
    append(el, children);
}

// Said by screen readers without moving the focus.
export function announce(text: string): void {
    const live = document.getElementById('live');
    if (live) live.textContent = text;
}

export function toast(text: string, kind: 'ok' | 'error' = 'ok'): void {
    const box = document.getElementById('toasts');
    if (!box) return;
    const t = h('div', { class: `toast ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, text);
    box.append(t);
    setTimeout(() => t.remove(), kind === 'error' ? 8000 : 4000);
}

export function formatBytes(n: number): string {
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return `${n < 10 && i > 0 ? n.toFixed(1) : Math.round(n)} ${units[i]}`;
}

export function when(iso: string | undefined): string {
    if (!iso) return '';
    const d = new Date(iso);
    return isNaN(d.getTime()) ? iso : d.toLocaleString();
}

// A state as a coloured badge with its text (colour is never the only cue).
export function badge(state: string): HTMLElement {
    return h('span', { class: `badge state-${state.replace(/[^a-z-]/g, '')}` }, state);
}

export function downloadText(name: string, type: string, text: string): void {
    const url = URL.createObjectURL(new Blob([text], { type }));
    const a = h('a', { href: url, download: name });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
}
