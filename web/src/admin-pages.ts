// What each dashboard page shows and does: the PageSpecs, and the pages of their own (the pool
// wizard, a pool's page, media with ISO upload).
import { Me, Row, api, enc, listAll, token } from './api.js';
import { Child, badge, clear, formatBytes, h, toast, when } from './dom.js';
import { buildForm } from './forms.js';
import * as live from './live.js';
import type { Cleanup, View } from './app.js';
import { PageCtx, PageSpec, bar, formPanel, nameOf, openPanel, resourcePage, text } from './admin.js';

const state = (r: Row) => badge(String(r.state ?? ''));
const mb = (n: number) => formatBytes(n * 1048576);

// ---- operations: a progress bar that follows one until it ends ------------------------------

const cancellable = (op: Row) => op.state === 'running' && (op.kind === 'migrate' || op.kind === 'drain');
const remaining = (op: Row) => (op.bytes_total ? ` · ${formatBytes(Number(op.bytes_remaining) || 0)} of ${formatBytes(Number(op.bytes_total))} to copy, pass ${text(op.iteration)}` : '');

// Live migration of a running desktop or guest to the scheduler's choice, followed in a panel.
async function migrate(kind: 'desktops' | 'guests', r: Row, where: HTMLElement): Promise<void> {
    const op = await api<Row>('POST', `/${kind}/${r.id}/migrate`, {});
    void followOperation(Number(op.id), where, `Migrate ${r.name}`);
}

export function followOperation(id: number, where: HTMLElement, label: string): Promise<Row> {
    const meter = h('progress', { max: 100, value: 0, 'aria-label': label });
    const msg = h('span', { class: 'muted' }, 'starting…');
    const cancel = h('button', { type: 'button', class: 'small', hidden: true, 'aria-label': `Cancel ${label}`, onclick: async () => {
        cancel.disabled = true;
        await api('POST', `/operations/${id}/cancel`, {}).catch((e) => toast(e.message, 'error'));
    } }, 'Cancel');
    const box = h('div', { class: 'operation', role: 'status', 'aria-live': 'polite', 'data-operation': id }, h('strong', null, label), ' ', meter, ' ', msg, ' ', cancel);
    where.append(box);
    return new Promise((resolve) => {
        let timer: number | undefined;
        const check = async () => {
            try {
                const op = await api<Row>('GET', `/operations/${id}`);
                meter.value = Number(op.percent) || 0;
                msg.textContent = `${op.percent ?? 0}% ${text(op.message)}${remaining(op)}`;
                cancel.hidden = !cancellable(op);
                if (op.state !== 'running') {
                    cancel.hidden = true;
                    msg.textContent = `${op.state}: ${text(op.message)}`;
                    box.classList.add(String(op.state));
                    unsub();
                    clearInterval(timer);
                    resolve(op);
                }
            } catch { /* next time */ }
        };
        const unsub = live.onChange((t) => { if (t.has('operations')) void check(); });
        timer = window.setInterval(check, 3000);
        void check();
    });
}

// ---- hosts and join tokens -----------------------------------------------------------------

async function joinTokens(ctx: PageCtx): Promise<HTMLElement | null> {
    if (ctx.me.role !== 'admin') return null;
    const list = h('div');
    const issued = h('div', { 'aria-live': 'polite' });
    const load = async () => {
        const rows = await listAll('join-tokens');
        clear(list, rows.length ? h('ul', { class: 'plain' }, rows.map((t) => h('li', null,
            `#${t.id} · expires ${when(String(t.expires_at))} · `, t.used_at ? `used by ${text(t.host_name)}` : 'unused',
            ' ', h('button', { type: 'button', class: 'small danger', 'aria-label': `Delete join token ${t.id}`, onclick: async () => {
                await api('DELETE', `/join-tokens/${t.id}`).catch((e) => toast(e.message, 'error'));
                void load();
            } }, 'Delete')))) : h('p', { class: 'muted' }, 'No join token.'));
    };
    const ttl = h('input', { id: 'jt-ttl', type: 'number', min: 60, max: 604800, value: 3600, step: 1 });
    const issue = h('button', { type: 'button', onclick: async () => {
        try {
            const r = await api<Row>('POST', '/join-tokens', { ttl_seconds: Number(ttl.value) });
            clear(issued, h('div', { class: 'notice' }, h('p', null, 'Run this on the new host (shown once):'),
                h('pre', { class: 'copy', tabindex: '0' }, text(r.command))));
            void load();
        } catch (e) {
            toast((e as Error).message, 'error');
        }
    } }, 'Issue a join token');
    await load();
    return h('section', { class: 'sub' }, h('h2', null, 'Join a host'),
        h('p', { class: 'muted' }, 'A single-use token: the command it prints joins a host running atriumd --role agent.'),
        h('div', { class: 'page-tools' }, h('label', { class: 'inline', for: 'jt-ttl' }, 'Valid for (seconds) ', ttl), issue), issued, list);
}

async function drain(r: Row, ctx: PageCtx, force: boolean): Promise<void> {
    const res = await api<Row>('PUT', `/hosts/${r.id}/maintenance`, { maintenance: true, drain: true, force });
    const box = h('div');
    openPanel(ctx.panel, `Draining ${r.name}`, box);
    void followOperation(Number(res.operation), box, `Drain ${r.name}`);
}

const hosts: PageSpec = {
    title: 'Hosts', plural: 'hosts', schema: 'Host',
    columns: [
        { key: 'name' }, { key: 'state', render: state }, { key: 'address' }, { key: 'cpus', label: 'CPUs' },
        { key: 'ram_mb', label: 'RAM', render: (r) => bar(Number(r.ram_committed_mb) || 0, Number(r.ram_mb) || 0, 'committed', mb) },
        { key: 'running' }, { key: 'accel' }, { key: 'last_seen', render: (r) => when(String(r.last_seen ?? '')) },
        { key: 'recovery', label: 'Recovery', render: (r) => text(r.recovery) },
    ],
    edit: ['description'], deletable: true,
    actions: [
        { label: 'Fence (it is off)', show: (r) => r.state !== 'down', confirm: (r) => `Declare ${r.name} down now? Do it only when it is powered off: its desktops are started on other hosts at once.`,
          run: (r) => api('POST', `/hosts/${r.id}/fence`, { yes: true }) },
        { label: 'Maintenance on', show: (r) => r.state !== 'maintenance', confirm: (r) => `Put ${r.name} in maintenance? No new desktops are placed on it.`,
          run: (r) => api('PUT', `/hosts/${r.id}/maintenance`, { maintenance: true }) },
        { label: 'Maintenance off', show: (r) => r.state === 'maintenance', run: (r) => api('PUT', `/hosts/${r.id}/maintenance`, { maintenance: false }) },
        { label: 'Drain', show: (r) => r.state === 'up' || r.state === 'maintenance',
          confirm: (r) => `Put ${r.name} in maintenance and move its running desktops and guests to other hosts (live)? What cannot move stays and is listed.`,
          run: (r, ctx) => drain(r, ctx, false) },
        { label: 'Drain, forced', danger: true, show: (r) => r.state === 'up' || r.state === 'maintenance',
          confirm: (r) => `Drain ${r.name} and shut down what cannot move (a local disk, no room elsewhere)?`,
          run: (r, ctx) => drain(r, ctx, true) },
    ],
    extra: joinTokens,
};

// ---- storage and media ---------------------------------------------------------------------

const storages: PageSpec = {
    title: 'Image storages', plural: 'storages', schema: 'ImageStorage',
    intro: 'Sets of volumes shared by hosts (shared storage).',
    columns: [{ key: 'name' }, { key: 'description' }],
    create: ['name', 'description'], edit: ['description'], deletable: true,
};

const volumes: PageSpec = {
    title: 'Volumes', plural: 'volumes', schema: 'Volume',
    intro: 'Directories of disk images (templates, desktops, guests) on an image storage.',
    columns: [{ key: 'name' }, { key: 'storage' }, { key: 'path' }, { key: 'description' }],
    create: ['name', 'storage', 'path', 'description'], edit: ['description'], deletable: true,
    actions: [{ label: 'Images', run: async (r, ctx) => {
        const v = await api<{ images: Row[]; free_bytes?: number }>('GET', `/volumes/${r.id}/images`);
        openPanel(ctx.panel, `Images in ${r.name}`, h('div', null,
            v.free_bytes !== undefined ? h('p', null, `Free: ${formatBytes(Number(v.free_bytes))}`) : null,
            h('ul', { class: 'plain' }, (v.images ?? []).map((i) => h('li', null, `${text(i.name)} · ${formatBytes(Number(i.size_bytes ?? i.bytes ?? 0))}${i.backing ? ` · on ${text(i.backing)}` : ''}`)))));
    } }],
};

// Upload with a progress bar: PUT /api/v1/media/{id}/isos/{file} (raw body).
function upload(mediaId: number, file: File, meter: HTMLProgressElement, msg: HTMLElement): Promise<void> {
    return new Promise((resolve, reject) => {
        const x = new XMLHttpRequest();
        x.open('PUT', `/api/v1/media/${mediaId}/isos/${enc(file.name)}`);
        x.setRequestHeader('Authorization', `Bearer ${token()}`);
        x.setRequestHeader('Content-Type', 'application/octet-stream');
        x.upload.onprogress = (e) => {
            if (!e.lengthComputable) return;
            meter.max = e.total;
            meter.value = e.loaded;
            msg.textContent = `${formatBytes(e.loaded)} of ${formatBytes(e.total)}`;
        };
        x.onload = () => {
            if (x.status >= 200 && x.status < 300) return resolve();
            let m = `${x.status}`;
            try { m = JSON.parse(x.responseText).error.message; } catch { /* status only */ }
            reject(new Error(m));
        };
        x.onerror = () => reject(new Error('the upload was interrupted'));
        x.send(file);
    });
}

async function isoPanel(r: Row, ctx: PageCtx): Promise<void> {
    const list = h('ul', { class: 'plain isos' });
    const load = async () => {
        try {
            const d = await api<{ isos: Row[] }>('GET', `/media/${r.id}/isos`);
            clear(list, (d.isos ?? []).length ? d.isos.map((i) => h('li', null, `${text(i.name)} · ${formatBytes(Number(i.size_bytes ?? i.bytes ?? 0))}`))
                : h('li', { class: 'muted' }, 'No ISO image yet.'));
        } catch (e) {
            clear(list, h('li', { class: 'form-error' }, (e as Error).message));
        }
    };
    const file = h('input', { type: 'file', id: 'iso-file', accept: '.iso,application/x-iso9660-image' });
    const meter = h('progress', { max: 1, value: 0, 'aria-label': 'Upload progress' });
    const msg = h('span', { class: 'muted', role: 'status' });
    const go = h('button', { type: 'button', class: 'primary', onclick: async () => {
        const f = file.files?.[0];
        if (!f) { msg.textContent = 'Choose an ISO file first.'; return; }
        if (!/^[A-Za-z0-9][A-Za-z0-9._-]*\.iso$/i.test(f.name)) { msg.textContent = 'The file name must end in .iso and use only letters, digits, ".", "_" and "-".'; return; }
        go.disabled = true;
        try {
            await upload(Number(r.id), f, meter, msg);
            msg.textContent = `Uploaded ${f.name}.`;
            void load();
        } catch (e) {
            msg.textContent = `Upload failed: ${(e as Error).message}`;
        } finally {
            go.disabled = false;
        }
    } }, 'Upload');
    openPanel(ctx.panel, `ISO images in ${r.name}`, h('div', null, list,
        h('div', { class: 'field' }, h('label', { for: 'iso-file' }, 'Upload an ISO image'), file), h('div', { class: 'actions' }, go, meter, msg)));
    await load();
}

const media: PageSpec = {
    title: 'Media', plural: 'media', schema: 'MediaStorage',
    intro: 'Directories of ISO images that guests boot or install from.',
    columns: [{ key: 'name' }, { key: 'path' }, { key: 'description' }],
    create: ['name', 'path', 'description'], edit: ['description'], deletable: true,
    actions: [{ label: 'ISO images', run: isoPanel }],
};

// ---- guests and templates ------------------------------------------------------------------

const guests: PageSpec = {
    title: 'Guests', plural: 'guests', schema: 'Guest',
    intro: 'Virtual machines an operator installs and prepares; templates are made from them.',
    columns: [{ key: 'name' }, { key: 'state', render: state }, { key: 'host' }, { key: 'cpus', label: 'CPUs' },
        { key: 'ram_mb', label: 'RAM (MiB)' }, { key: 'disk' }, { key: 'iso', label: 'ISO' }],
    create: ['name', 'volume', 'disk', 'disk_gb', 'cpus', 'ram_mb', 'os_type', 'media', 'iso', 'boot_cdrom', 'host', 'description'],
    createLabel: 'New guest',
    edit: ['cpus', 'ram_mb', 'media', 'iso', 'boot_cdrom', 'description'], deletable: true,
    actions: [
        { label: 'Start', show: (r) => r.state !== 'running', run: (r) => api('POST', `/guests/${r.id}/start`, {}) },
        { label: 'Console', show: (r) => r.state === 'running', run: async (r) => { location.hash = `#/console/guest/${r.id}`; } },
        { label: 'Migrate', show: (r) => r.state === 'running' && !r.migrating_to, confirm: (r) => `Move ${r.name} live to another host (the scheduler chooses)?`,
          run: async (r, ctx) => {
              const box = h('div');
              openPanel(ctx.panel, `Migrating ${r.name}`, box);
              await migrate('guests', r, box);
          } },
        { label: 'Stop', show: (r) => r.state === 'running', confirm: (r) => `Shut ${r.name} down?`, run: (r) => api('POST', `/guests/${r.id}/stop`, {}) },
        { label: 'Power off', danger: true, show: (r) => r.state === 'running', confirm: (r) => `Power ${r.name} off at once?`, run: (r) => api('POST', `/guests/${r.id}/destroy`, {}) },
    ],
};

async function templateVersions(ctx: PageCtx): Promise<HTMLElement> {
    const box = h('section', { class: 'sub' }, h('h2', null, 'Versions'));
    const rows = await listAll('template-versions');
    box.append(h('div', { class: 'table-wrap' }, h('table', null,
        h('thead', null, h('tr', null, ['Version', 'Template', 'Image', 'Volume', 'Made'].map((c) => h('th', { scope: 'col' }, c)), h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'Actions')))),
        h('tbody', null, rows.map((v) => h('tr', null, h('th', { scope: 'row' }, text(v.name)), h('td', null, text(v.template)),
            h('td', null, text(v.image)), h('td', null, text(v.volume)), h('td', null, when(String(v.created_at))),
            h('td', null, h('button', { type: 'button', class: 'small danger', 'aria-label': `Delete version ${v.name}`, onclick: async () => {
                if (!confirm(`Delete version ${v.name} and its image?`)) return;
                await api('DELETE', `/template-versions/${v.id}`).then(() => ctx.reload(), (e) => toast(e.message, 'error'));
            } }, 'Delete'))))))));
    return box;
}

const templates: PageSpec = {
    title: 'Templates', plural: 'templates', schema: 'Template', tables: ['templates', 'template_versions'],
    intro: 'Base images pools clone their desktops from; each update from a guest is a new version.',
    columns: [{ key: 'name' }, { key: 'version' }, { key: 'volume' }, { key: 'guest' }, { key: 'cpus', label: 'CPUs' }, { key: 'ram_mb', label: 'RAM (MiB)' }],
    create: [{ name: 'name' }, { name: 'volume' }, { name: 'guest', sendAs: 'from_guest', label: 'From guest', required: true, help: 'The stopped guest whose disk becomes version 1.' }, 'cpus', 'ram_mb', 'description'],
    createLabel: 'New template',
    edit: ['cpus', 'ram_mb', 'description'], deletable: true,
    actions: [{ label: 'New version', run: async (r, ctx) => {
        const gs = await listAll('guests');
        const sel = h('select', { id: 'nv-guest', required: true }, gs.map((g) => h('option', { value: String(g.name) }, String(g.name))));
        const err = h('p', { class: 'form-error', role: 'alert' });
        const form = h('form', { class: 'form' }, h('div', { class: 'field' }, h('label', { for: 'nv-guest' }, 'From guest'), sel,
            h('p', { class: 'help' }, 'A stopped guest: its disk becomes the next version; pools roll onto it.')), err,
            h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Make the new version')));
        form.addEventListener('submit', async (ev) => {
            ev.preventDefault();
            try {
                const res = await api<Row>('PATCH', `/templates/${r.id}`, { from_guest: sel.value });
                clear(ctx.panel);
                if (res.operation) void followOperation(Number(res.operation), ctx.panel, `Rolling ${r.name} out`);
            } catch (e) {
                err.textContent = (e as Error).message;
            }
        });
        openPanel(ctx.panel, `New version of ${r.name}`, form);
    } }],
    extra: templateVersions,
};

// ---- pools ---------------------------------------------------------------------------------

const POLICY = ['clipboard', 'usb_redir', 'audio', 'printing', 'file_transfer', 'monitors', 'user_actions',
    'idle_timeout', 'disconnect_grace', 'max_session', 'kiosk'];

const pools: PageSpec = {
    title: 'Pools', plural: 'pools', schema: 'Pool', tables: ['pools', 'desktops'],
    intro: 'Desktops cloned from a template, handed out by the broker.',
    columns: [{ key: 'name' }, { key: 'template' }, { key: 'mode' }, { key: 'size' }, { key: 'spares' },
        { key: 'max_size', label: 'Max' }, { key: 'maintenance', render: (r) => (r.maintenance ? badge('maintenance') : 'no') }, { key: 'status' }],
    link: (r) => `#/admin/pools/${enc(nameOf(r))}`,
    createHref: '#/admin/pools/new', createLabel: 'New pool',
};

const STEPS: [string, string[]][] = [
    ['Basics', ['name', 'description', 'template', 'mode']],
    ['Size', ['size', 'spares', 'max_size', 'name_pattern']],
    ['Policies', POLICY],
];

async function poolWizard(main: HTMLElement): Promise<Cleanup> {
    const progress = h('div');
    const stepNav = h('ol', { class: 'steps' });
    let step = 0;
    const form = await buildForm({
        schema: 'Pool', submitLabel: 'Create the pool', fields: STEPS.flatMap(([, f]) => f),
        onSubmit: (body) => api<Row>('POST', '/pools', body),
        onDone: async (r) => {
            const pool = r as Row;
            form.hidden = true;
            stepNav.hidden = true;
            if (pool.operation) await followOperation(Number(pool.operation), progress, `Making ${pool.name}'s desktops`);
            location.hash = `#/admin/pools/${enc(nameOf(pool))}`;
        },
        onCancel: () => { location.hash = '#/admin/pools'; },
    });
    const sets = STEPS.map(([title, fields], i) => {
        const fs = h('fieldset', { 'data-step': i }, h('legend', null, `Step ${i + 1} of ${STEPS.length}: ${title}`));
        for (const f of fields) {
            const div = form.querySelector(`[data-field="${f}"]`);
            if (div) fs.append(div);
        }
        return fs;
    });
    form.prepend(...sets);
    const back = h('button', { type: 'button' }, 'Back');
    const next = h('button', { type: 'button', class: 'primary' }, 'Next');
    const submit = form.querySelector<HTMLButtonElement>('button[type=submit]')!;
    form.querySelector('.actions')!.prepend(back, next);
    const show = (i: number) => {
        step = i;
        sets.forEach((fs, k) => { fs.hidden = k !== i; });
        back.hidden = i === 0;
        next.hidden = i === STEPS.length - 1;
        submit.hidden = i !== STEPS.length - 1;
        clear(stepNav, STEPS.map(([t], k) => h('li', { 'aria-current': k === i ? 'step' : undefined }, t)));
    };
    next.addEventListener('click', () => {
        const bad = [...sets[step].querySelectorAll<HTMLInputElement | HTMLSelectElement>('input, select, textarea')].find((x) => !x.checkValidity());
        if (bad) {
            form.requestSubmit(); // shows every message; the focus goes to the first bad field
            return;
        }
        show(step + 1);
        sets[step].querySelector<HTMLElement>('input, select')?.focus();
    });
    back.addEventListener('click', () => show(step - 1));
    // A message for a field on another step (the browser's or the server's) brings that step.
    form.addEventListener('reveal', (e) => {
        const fs = ((e as CustomEvent).detail as HTMLElement).closest('fieldset');
        const i = fs ? Number(fs.dataset.step) : step;
        if (i !== step) show(i);
    });
    show(0);
    clear(main, h('h1', null, 'New pool'), stepNav, form, progress);
    return;
}

async function poolPage(main: HTMLElement, name: string, me: Me): Promise<Cleanup> {
    const panel = h('div', { class: 'panel-slot' });
    const facts = h('dl', { class: 'facts wide' });
    const ops = h('div');
    const desks = h('div', { 'aria-live': 'polite' });
    const ents = h('div');
    let pool: Row = await api<Row>('GET', `/pools/${enc(name)}`);
    const ctx: PageCtx = { panel, me, reload: async () => {} };
    const title = h('h1', null, `Pool ${pool.name}`);

    const entitlements = async () => {
        const rows = await listAll('entitlements', { pool: String(pool.name) });
        clear(ents, rows.length ? h('ul', { class: 'plain' }, rows.map((e) => {
            const who = e.user ? `user ${e.user}` : e.group ? `group ${e.group}` : `terminal ${e.terminal}`;
            return h('li', null, who, ' ', h('button', { type: 'button', class: 'small danger', 'aria-label': `Remove entitlement of ${who}`, onclick: async () => {
                await api('DELETE', `/entitlements/${e.id}`).catch((x) => toast(x.message, 'error'));
                void entitlements();
            } }, 'Remove'));
        })) : h('p', { class: 'muted' }, 'Nobody is entitled yet: add a user or a group.'));
    };
    let shownDesks = '';
    const desktops = async () => {
        const rows = await listAll('desktops', { pool: String(pool.name) });
        const key = JSON.stringify(rows);
        if (key === shownDesks) return; // unchanged: keep the focus
        shownDesks = key;
        clear(desks, h('div', { class: 'table-wrap' }, h('table', { id: 'pool-desktops' },
            h('caption', { class: 'sr-only' }, 'Desktops'),
            h('thead', null, h('tr', null, ['Desktop', 'State', 'Host', 'User'].map((c) => h('th', { scope: 'col' }, c)), h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'Actions')))),
            h('tbody', null, rows.length === 0 ? h('tr', null, h('td', { colspan: 5, class: 'empty' }, 'No desktop yet.')) :
                rows.map((d) => h('tr', { 'data-name': nameOf(d), 'data-state': String(d.state) },
                    h('th', { scope: 'row' }, nameOf(d)), h('td', null, state(d)), h('td', null, text(d.host)), h('td', null, text(d.user)),
                    h('td', { class: 'row-actions' }, desktopActions(d))))))));
    };
    const desktopActions = (d: Row): Child[] => {
        const act = (label: string, path: string, confirmText?: string, danger = false) =>
            h('button', { type: 'button', class: danger ? 'small danger' : 'small', 'aria-label': `${label} ${d.name}`, onclick: async () => {
                if (confirmText && !confirm(confirmText)) return;
                try {
                    const r = await api<Row>(path.startsWith('DELETE') ? 'DELETE' : 'POST', path.replace(/^DELETE /, ''), path.startsWith('DELETE') ? undefined : {});
                    if (r?.operation) void followOperation(Number(r.operation), ops, `${label} ${d.name}`);
                } catch (e) {
                    toast(`${label} ${d.name}: ${(e as Error).message}`, 'error');
                }
            } }, label);
        const running = d.state === 'running';
        return [
            running ? h('a', { class: 'button small', href: `#/console/desktop/${d.id}`, 'aria-label': `Console of ${d.name}` }, 'Console') : null,
            !running && d.state === 'stopped' ? act('Start', `/desktops/${d.id}/start`) : null,
            running && !d.migrating_to ? h('button', { type: 'button', class: 'small', 'aria-label': `Migrate ${d.name}`, onclick: async () => {
                if (!confirm(`Move ${d.name} live to another host (the scheduler chooses)? Its user keeps working.`)) return;
                await migrate('desktops', d, ops).catch((e) => toast(`Migrate ${d.name}: ${(e as Error).message}`, 'error'));
            } }, 'Migrate') : null,
            running ? act('Reboot', `/desktops/${d.id}/reboot`, `Reboot ${d.name}?`) : null,
            running ? act('Stop', `/desktops/${d.id}/stop`, `Shut ${d.name} down?`) : null,
            act('Recompose', `/desktops/${d.id}/recompose`, `Make ${d.name}'s disk anew on the newest template version? Changes on it are lost.`),
            act('Delete', `DELETE /desktops/${d.id}`, `Delete ${d.name}?`, true),
        ];
    };
    const showFacts = () => clear(facts, ['template', 'mode', 'size', 'spares', 'max_size', 'status', 'maintenance', 'clipboard', 'user_actions', 'idle_timeout', 'description']
        .flatMap((k) => [h('dt', null, k.replace(/_/g, ' ')), h('dd', null, text(pool[k]) || '—')]));
    ctx.reload = async () => {
        pool = await api<Row>('GET', `/pools/${enc(name)}`);
        showFacts();
        await Promise.all([desktops(), entitlements()]);
    };
    const recomposeAll = async () => {
        const rows = await listAll('desktops', { pool: String(pool.name) });
        if (!confirm(`Recompose the ${rows.length} desktops of ${pool.name} on the newest template version? Desktops in a session are skipped.`)) return;
        const meter = h('progress', { max: rows.length, value: 0, 'aria-label': 'Recompose progress' });
        const msg = h('span', { class: 'muted' });
        clear(ops, h('div', { class: 'operation', role: 'status' }, h('strong', null, 'Recompose '), meter, ' ', msg));
        let done = 0, skipped = 0;
        for (const d of rows) {
            try {
                await api('POST', `/desktops/${d.id}/recompose`, {});
            } catch {
                skipped++;
            }
            meter.value = ++done;
            msg.textContent = `${done} of ${rows.length}${skipped ? ` (${skipped} skipped: in a session or busy)` : ''}`;
        }
    };
    const tools = h('div', { class: 'page-tools' },
        h('button', { type: 'button', class: 'primary', onclick: () => formPanel(ctx, `Edit ${pool.name}`, 'Pool',
            ['description', 'size', 'spares', 'max_size', ...POLICY], 'Save', async (b) => {
                const r = await api<Row>('PATCH', `/pools/${enc(name)}`, b);
                if (r.operation) void followOperation(Number(r.operation), ops, `Resizing ${pool.name}`);
                return r;
            }, pool) }, 'Edit, resize, policies'),
        h('button', { type: 'button', onclick: async () => {
            await api('PATCH', `/pools/${enc(name)}`, { maintenance: !pool.maintenance }).catch((e) => toast(e.message, 'error'));
            void ctx.reload();
        } }, 'Toggle maintenance'),
        h('button', { type: 'button', onclick: recomposeAll }, 'Recompose all'),
        h('button', { type: 'button', onclick: () => formPanel(ctx, 'Entitle', 'Entitlement', ['user', 'group', 'terminal'], 'Entitle',
            (b) => api('POST', '/entitlements', { ...b, pool: pool.name })) }, 'Entitle a user or group'),
        h('button', { type: 'button', class: 'danger', onclick: async () => {
            if (!confirm(`Delete pool ${pool.name} and all its desktops?`)) return;
            try {
                await api('DELETE', `/pools/${enc(name)}`);
                location.hash = '#/admin/pools';
            } catch (e) {
                toast((e as Error).message, 'error');
            }
        } }, 'Delete pool'));
    clear(main, h('p', null, h('a', { href: '#/admin/pools' }, '← Pools')), title, tools, panel, ops, facts,
        h('h2', null, 'Desktops'), desks, h('h2', null, 'Entitled'), ents);
    await ctx.reload();
    let t: number | undefined;
    const unsub = live.onChange((c) => {
        if (!['desktops', 'pools', 'entitlements'].some((x) => c.has(x))) return;
        clearTimeout(t);
        t = window.setTimeout(() => { void ctx.reload().catch(() => {}); }, 300);
    });
    return () => { unsub(); clearTimeout(t); };
}

const poolsView: View = async (main, args, _q, me) => {
    if (args[0] === 'new') return poolWizard(main);
    if (args[0]) return poolPage(main, args[0], me);
    return resourcePage(main, pools, me);
};

// ---- people, sessions, terminals, events ----------------------------------------------------

// What each role may do (GET /roles), beside the users.
async function rolesPanel(): Promise<HTMLElement> {
    const r = await api<{ items: Row[] }>('GET', '/roles');
    return h('details', { class: 'sub' }, h('summary', null, 'Roles: what each may do'),
        h('dl', { class: 'facts' }, r.items.flatMap((x) => [h('dt', null, text(x.name)), h('dd', null, text(x.description))])));
}

const users: PageSpec = {
    title: 'Users', plural: 'users', schema: 'User', role: 'admin', extra: rolesPanel,
    columns: [{ key: 'name' }, { key: 'display_name' }, { key: 'role' }, { key: 'source' }, { key: 'enabled' }, { key: 'email' }],
    filters: [{ name: 'source', label: 'Source', choices: ['local', 'directory'] }, { name: 'role', label: 'Role', choices: ['user', 'helpdesk', 'operator', 'admin'] }],
    create: ['name', 'display_name', 'email', 'password', 'role', 'enabled'], createLabel: 'New user',
    edit: ['display_name', 'email', 'role', 'enabled', { name: 'password', label: 'New password', required: false }], deletable: true,
};

const groups: PageSpec = {
    title: 'Groups', plural: 'groups', schema: 'Group', role: 'admin',
    intro: 'A group can be filled from a directory group (nested groups included) and can give its members a role.',
    columns: [{ key: 'name' }, { key: 'directory_group', label: 'Directory group' }, { key: 'role', label: 'Gives role' }, { key: 'description' }],
    create: ['name', 'directory_group', 'role', 'description'], createLabel: 'New group', edit: ['directory_group', 'role', 'description'], deletable: true,
    actions: [{ label: 'Members', run: async (g, ctx) => {
        const body = h('div');
        const draw = async () => {
            const [m, all] = await Promise.all([api<{ items: Row[] }>('GET', `/groups/${g.id}/members`), listAll('users')]);
            const members = m.items ?? [];
            const sel = h('select', { id: 'add-member' }, all.filter((u) => !members.some((x) => x.name === u.name))
                .map((u) => h('option', { value: String(u.name) }, String(u.name))));
            clear(body, h('ul', { class: 'plain' }, members.map((u) => h('li', null, String(u.name), ' ',
                h('button', { type: 'button', class: 'small danger', 'aria-label': `Remove ${u.name}`, onclick: async () => {
                    await api('DELETE', `/groups/${g.id}/members/${enc(String(u.name))}`).catch((e) => toast(e.message, 'error'));
                    void draw();
                } }, 'Remove')))),
            h('div', { class: 'page-tools' }, h('label', { for: 'add-member', class: 'inline' }, 'User ', sel),
                h('button', { type: 'button', onclick: async () => {
                    if (!sel.value) return;
                    await api('PUT', `/groups/${g.id}/members/${enc(sel.value)}`).catch((e) => toast(e.message, 'error'));
                    void draw();
                } }, 'Add')));
        };
        openPanel(ctx.panel, `Members of ${g.name}`, body);
        await draw();
    } }],
};

const permissions: PageSpec = {
    title: 'Pool permissions', plural: 'permissions', schema: 'Permission', role: 'admin',
    intro: 'A role on one pool only: its operator (a pool admin) or its helpdesk, for a user or a group.',
    columns: [{ key: 'id', render: (r) => `#${r.id}` }, { key: 'pool' }, { key: 'user' }, { key: 'group' }, { key: 'role' }],
    create: ['pool', 'user', 'group', 'role'], createLabel: 'New permission', deletable: true,
    filters: [{ name: 'pool', label: 'Pool' }],
};

const sessions: PageSpec = {
    title: 'Sessions', plural: 'sessions', schema: 'Session',
    columns: [{ key: 'id', render: (r) => `#${r.id}` }, { key: 'user' }, { key: 'desktop' }, { key: 'state', render: state },
        { key: 'protocol' }, { key: 'terminal' }, { key: 'started_at', render: (r) => when(String(r.started_at ?? '')) }],
    filters: [{ name: 'state', label: 'State', choices: ['connecting', 'connected', 'disconnected', 'ending'] }],
    actions: [
        { label: 'Disconnect', show: (r) => r.state === 'connected', run: (r) => api('POST', `/sessions/${r.id}/disconnect`, {}) },
        { label: 'End', danger: true, confirm: (r) => `End session #${r.id} of ${r.user ?? r.terminal}? The user is logged off.`, run: (r) => api('POST', `/sessions/${r.id}/end`, {}) },
    ],
};

const terminals: PageSpec = {
    title: 'Terminals', plural: 'terminals', schema: 'Terminal',
    intro: 'Registered thin clients; a kiosk pool opens to them without a login.',
    columns: [{ key: 'name' }, { key: 'pool' }, { key: 'desktop' }, { key: 'key_version', label: 'Key' }, { key: 'last_seen', render: (r) => when(String(r.last_seen ?? '')) }],
    create: ['name', 'description', 'pool', 'desktop'], createLabel: 'New terminal', edit: ['description', 'pool', 'desktop'], deletable: true,
    actions: [{ label: 'New key', confirm: (r) => `Issue a new key for ${r.name}? Its older key stops working.`, run: async (r, ctx) => {
        const k = await api<Row>('POST', `/terminals/${r.id}/key`, {});
        openPanel(ctx.panel, `Key of ${r.name}`, h('div', null, h('p', null, 'Shown once: configure the terminal with it.'), h('pre', { class: 'copy', tabindex: '0' }, text(k.key))));
    } }],
};

const operations: PageSpec = {
    title: 'Operations', plural: 'operations', schema: 'Operation', params: { order: 'desc' },
    columns: [{ key: 'id', render: (r) => `#${r.id}` }, { key: 'kind' }, { key: 'object_name', label: 'Object' }, { key: 'state', render: state },
        { key: 'percent', render: (r) => h('progress', { max: 100, value: Number(r.percent) || 0, 'aria-label': `${r.percent}%` }) }, { key: 'message' },
        { key: 'created_at', label: 'Started', render: (r) => when(String(r.created_at ?? '')) }],
    filters: [{ name: 'state', label: 'State', choices: ['running', 'done', 'failed'] }],
    actions: [{ label: 'Cancel', show: cancellable, confirm: (r) => `Cancel ${r.kind} of ${r.object_name}?`, run: (r) => api('POST', `/operations/${r.id}/cancel`, {}) }],
};

const events: PageSpec = {
    title: 'Events', plural: 'events', schema: 'Event', params: { order: 'desc' },
    intro: 'The audit trail: who changed what, when and from where. Newest first; new events appear as they happen.',
    columns: [{ key: 'time', render: (r) => when(String(r.time)) }, { key: 'actor' }, { key: 'action' }, { key: 'object_kind', label: 'Kind' },
        { key: 'object_name', label: 'Object' }, { key: 'detail' }],
    filters: [{ name: 'action', label: 'Action' }, { name: 'actor', label: 'Actor' },
        { name: 'object_kind', label: 'Kind', choices: ['user', 'group', 'host', 'guest', 'template', 'pool', 'desktop', 'session', 'terminal', 'entitlement'] },
        { name: 'object_name', label: 'Object' }],
};

export const PAGES: Record<string, { spec?: PageSpec; view?: View; role?: 'helpdesk' | 'operator' | 'admin' }> = {
    '': {},
    hosts: { spec: hosts }, storages: { spec: storages }, volumes: { spec: volumes }, media: { spec: media },
    guests: { spec: guests }, templates: { spec: templates }, pools: { view: poolsView },
    users: { spec: users, role: 'admin' }, groups: { spec: groups, role: 'admin' },
    permissions: { spec: permissions, role: 'admin' },
    sessions: { spec: sessions, role: 'helpdesk' }, terminals: { spec: terminals }, operations: { spec: operations }, events: { spec: events },
};
