// My account: who I am, and my one-time codes (TOTP): set up with a QR code an authenticator
// app scans, confirm with its first code (ten recovery codes shown once), turn off.
import { ApiError, Me, api } from './api.js';
import { clear, h, toast } from './dom.js';
import type { Cleanup } from './app.js';

const QR = '/vendor/qrcode.mjs';

interface MeFull extends Me { email?: string; source?: string; totp_enabled?: boolean; totp_required?: boolean; own_role?: string }

async function qrImage(text: string): Promise<HTMLElement> {
    const mod = await import(QR as string);
    const qr = mod.default(0, 'M');
    qr.addData(text);
    qr.make();
    const img = h('img', { src: qr.createDataURL(5, 8), alt: 'QR code of the secret, for an authenticator app', class: 'qr' });
    return img;
}

function codeForm(label: string, button: string, onCode: (code: string, err: HTMLElement) => Promise<void>): HTMLFormElement {
    const id = `code-${button.replace(/\W/g, '')}`;
    const input = h('input', { id, name: 'code', inputmode: 'numeric', autocomplete: 'one-time-code', required: true, maxlength: 11, 'aria-describedby': `${id}-err` });
    const err = h('p', { class: 'field-error', id: `${id}-err`, role: 'alert' });
    const form = h('form', { class: 'form', novalidate: true },
        h('div', { class: 'field' }, h('label', { for: id }, label), input, err),
        h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, button)));
    form.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        err.textContent = '';
        if (!input.value.trim()) {
            err.textContent = 'Enter the 6 digits the app shows.';
            input.focus();
            return;
        }
        try {
            await onCode(input.value.trim(), err);
        } catch (e) {
            err.textContent = (e as ApiError).message;
            input.select();
        }
    });
    return form;
}

export async function accountView(main: HTMLElement, _args: string[], _q: URLSearchParams,
                                  _me: Me): Promise<Cleanup> {
    const totp = h('section', { class: 'sub', 'aria-labelledby': 'totp-h' });
    const facts = h('dl', { class: 'facts' });
    clear(main, h('h1', null, 'My account'), facts, totp);
    const draw = async () => {
        const me = await api<MeFull>('GET', '/me');
        clear(facts, h('dt', null, 'User'), h('dd', null, me.name), h('dt', null, 'Name'), h('dd', null, me.display_name || '—'),
            h('dt', null, 'Role'), h('dd', null, me.role), h('dt', null, 'Account'), h('dd', null, me.source === 'directory' ? 'from the directory (its password)' : 'local'));
        const title = h('h2', { id: 'totp-h' }, 'One-time codes (TOTP)');
        if (me.totp_enabled) {
            clear(totp, title, h('p', { class: 'notice', id: 'totp-state' }, 'On: each login asks for the code your authenticator app shows.'),
                me.totp_required ? h('p', { class: 'muted' }, 'Your account must use them: ask an administrator to reset them for a new device.')
                    : codeForm('Code (or a recovery code) to turn them off', 'Turn off', async (code) => {
                        await api('POST', '/me/totp/disable', { code });
                        toast('One-time codes are off.');
                        await draw();
                    }));
            return;
        }
        const start = h('button', { type: 'button', class: 'primary' }, 'Set up one-time codes');
        clear(totp, title, h('p', { id: 'totp-state' }, me.totp_required || sessionStorage.getItem('atrium.enrol')
            ? 'Your account must use one-time codes: set them up to go on.' : 'Off. With them on, a stolen password alone does not open your desktops.'), start);
        start.addEventListener('click', async () => {
            try {
                const r = await api<{ secret: string; uri: string }>('POST', '/me/totp');
                const img = await qrImage(r.uri);
                clear(totp, title,
                    h('ol', null,
                        h('li', null, 'Scan this code with an authenticator app (or type the secret into it):'),
                        h('li', null, 'Enter the 6 digits it shows.')),
                    img, h('p', null, 'Secret: ', h('code', { id: 'totp-secret' }, r.secret)),
                    codeForm('Code from the app', 'Confirm', async (code) => {
                        const c = await api<{ recovery_codes: string[] }>('POST', '/me/totp/confirm', { code });
                        sessionStorage.removeItem('atrium.enrol');
                        clear(totp, title, h('p', { class: 'notice', id: 'totp-state' }, 'On. Keep these recovery codes somewhere safe: each one logs you in once without the app, and they are not shown again.'),
                            h('ul', { class: 'plain recovery', id: 'recovery-codes' }, c.recovery_codes.map((x) => h('li', null, h('code', null, x)))),
                            h('a', { class: 'button primary', href: '#/' }, 'Go on to my desktops'));
                    }));
                totp.querySelector('input')?.focus();
            } catch (e) {
                toast((e as Error).message, 'error');
            }
        });
    };
    await draw();
    return;
}
