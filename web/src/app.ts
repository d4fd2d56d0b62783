// The single-page app: hash routes, the page frame (header, navigation by role) and login.
// A request that finds the login expired sends the person to the login page, and back to the
// page they were on once logged in again.
import { ApiError, Me, api, login, logout, onExpired, token } from './api.js';
import { announce, clear, h } from './dom.js';
import * as live from './live.js';
import { portalView } from './portal.js';
import { consoleView } from './console.js';
import { adminView } from './admin.js';
import { accountView } from './account.js';

export type Cleanup = (() => void) | void;
export type View = (main: HTMLElement, args: string[], query: URLSearchParams, me: Me) =>
    Promise<Cleanup>;

let me: Me | null = null;
let cleanup: Cleanup;
let expiredNotice = '';

const ROLE_RANK = { user: 0, helpdesk: 1, operator: 2, admin: 3 } as const;
export function atLeast(m: Me, role: keyof typeof ROLE_RANK): boolean {
    return ROLE_RANK[m.role] >= ROLE_RANK[role];
}

function route(): { path: string; query: URLSearchParams } {
    const raw = location.hash.replace(/^#\/?/, '');
    const [path, q] = raw.split('?', 2);
    return { path: path.replace(/\/$/, ''), query: new URLSearchParams(q ?? '') };
}

export function go(path: string): void {
    location.hash = `#/${path}`;
}

function toLogin(): void {
    const { path } = route();
    if (path === 'login') return;
    expiredNotice = me ? 'Your session has expired. Log in again to go on where you were.' : '';
    me = null;
    live.stop();
    const here = location.hash.replace(/^#\/?/, '');
    location.hash = `#/login${here ? `?next=${encodeURIComponent(here)}` : ''}`;
}

function header(m: Me): HTMLElement {
    const nav = h('nav', { 'aria-label': 'Main' },
        h('a', { href: '#/', 'data-nav': '' }, 'My desktops'),
        atLeast(m, 'helpdesk') ? h('a', { href: atLeast(m, 'operator') ? '#/admin' : '#/admin/sessions', 'data-nav': 'admin' }, 'Dashboard')
            : m.pool_roles?.length ? h('a', { href: '#/admin/pools', 'data-nav': 'admin' }, 'My pools') : null);
    return h('header', { class: 'top' },
        h('a', { class: 'brand', href: '#/' }, h('span', { class: 'logo', 'aria-hidden': 'true' }), 'Atrium'),
        nav,
        h('div', { class: 'who' },
            h('span', { id: 'live-dot', class: live.connected ? 'live-dot on' : 'live-dot', title: 'Live updates', role: 'img', 'aria-label': 'live updates' }),
            h('a', { class: 'user-name', href: '#/account', title: 'My account' }, m.display_name || m.name, ' ', h('small', null, `(${m.role})`)),
            h('button', { type: 'button', class: 'link', onclick: async () => { live.stop(); await logout().catch(() => {}); me = null; go('login'); } }, 'Log out')));
}

async function loginView(main: HTMLElement, query: URLSearchParams): Promise<void> {
    const next = query.get('next') ?? '';
    const err = h('p', { class: 'form-error', role: 'alert', id: 'login-error' });
    const name = h('input', { id: 'login-name', name: 'username', autocomplete: 'username', required: true, autocapitalize: 'off', spellcheck: 'false' });
    const pw = h('input', { id: 'login-password', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
    const otp = h('input', { id: 'login-otp', name: 'otp', inputmode: 'numeric', autocomplete: 'one-time-code', maxlength: 11 });
    const otpField = h('div', { class: 'field', hidden: true }, h('label', { for: 'login-otp' }, 'One-time code'), otp,
        h('p', { class: 'help' }, 'The 6 digits your authenticator app shows, or a recovery code.'));
    const submit = h('button', { type: 'submit', class: 'primary' }, 'Log in');
    const form = h('form', { class: 'form login', novalidate: true, 'aria-describedby': 'login-error' },
        h('h1', null, 'Log in to Atrium'),
        expiredNotice ? h('p', { class: 'notice', role: 'status' }, expiredNotice) : null,
        h('div', { class: 'field' }, h('label', { for: 'login-name' }, 'User name'), name),
        h('div', { class: 'field' }, h('label', { for: 'login-password' }, 'Password'), pw),
        otpField, err, h('div', { class: 'actions' }, submit));
    form.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        err.textContent = '';
        if (!name.value.trim() || !pw.value) {
            err.textContent = !name.value.trim() ? 'Enter your user name.' : 'Enter your password.';
            (!name.value.trim() ? name : pw).focus();
            return;
        }
        submit.disabled = true;
        try {
            await login(name.value.trim(), pw.value, otpField.hidden ? undefined : otp.value.trim());
            me = null; // read again from /me: the role in effect and the pools it runs
            expiredNotice = '';
            go(sessionStorage.getItem('atrium.enrol') ? 'account' : next && !next.startsWith('login') ? next : '');
        } catch (e) {
            const a = e as ApiError;
            if (a.code === 'otp_required') {
                otpField.hidden = false;
                err.textContent = 'Enter the one-time code from your authenticator app.';
                otp.focus();
                return;
            }
            err.textContent = a.code === 'bad_credentials'
                ? (otpField.hidden ? 'Wrong user name or password.' : 'Wrong password or one-time code.') : a.message;
            if (!otpField.hidden) {
                otp.select();
                otp.focus();
                return;
            }
            pw.select();
            pw.focus();
        } finally {
            submit.disabled = false;
        }
    });
    clear(main, h('div', { class: 'login-page' }, form));
    name.focus();
}

async function render(): Promise<void> {
    const root = document.getElementById('app')!;
    const { path, query } = route();
    if (typeof cleanup === 'function') cleanup();
    cleanup = undefined;
    if (path === 'login') {
        const main = h('main', { id: 'main', class: 'narrow' });
        clear(root, main);
        document.title = 'Log in · Atrium';
        await loginView(main, query);
        return;
    }
    if (!token()) return toLogin();
    if (!me) {
        try {
            me = await api<Me>('GET', '/me');
        } catch (e) {
            if ((e as ApiError).status === 401) return toLogin();
            clear(root, h('main', { id: 'main', class: 'narrow' }, h('p', { class: 'form-error', role: 'alert' }, (e as Error).message)));
            return;
        }
    }
    live.start(toLogin);
    const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
    const main = h('main', { id: 'main', tabindex: '-1' });
    clear(root, h('a', { class: 'skip', href: '#main', onclick: (e: Event) => { e.preventDefault(); main.focus(); } }, 'Skip to content'),
        header(me), main);
    for (const a of root.querySelectorAll<HTMLAnchorElement>('nav a')) {
        const sect = a.dataset.nav ?? '';
        if ((sect === '' && (parts[0] ?? '') === '') || (sect !== '' && parts[0] === sect))
            a.setAttribute('aria-current', 'page');
    }
    try {
        if (sessionStorage.getItem('atrium.enrol') || parts[0] === 'account') cleanup = await accountView(main, parts.slice(1), query, me);
        else if (parts[0] === 'console') cleanup = await consoleView(main, parts.slice(1), query, me);
        else if (parts[0] === 'admin' && (atLeast(me, 'helpdesk') || me.pool_roles?.length)) cleanup = await adminView(main, parts.slice(1), query, me);
        else cleanup = await portalView(main, parts, query, me);
    } catch (e) {
        if ((e as ApiError).status === 401) return;
        main.append(h('p', { class: 'form-error', role: 'alert' }, (e as Error).message));
    }
    const h1 = main.querySelector('h1');
    document.title = `${h1?.textContent ?? 'Atrium'} · Atrium`;
    announce(h1?.textContent ?? '');
}

onExpired(toLogin);
window.addEventListener('hashchange', () => { void render(); });
void render();
