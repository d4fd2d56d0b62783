// Drives Atrium's web portal in Debian's headless chromium (playwright-core) against a real
// atriumd, and prints one TAP-like line per check ("ok - ..." / "not ok - ... # why") for the
// shell test that runs it. Screenshots of each page go to OUTDIR.
//   node portal.mjs SCENARIO BASE_URL OUTDIR [ARGS...]
// Scenarios:
//   login-bad  USER                a wrong password: an error, and no token stored
//   admin      ADMIN_PASSWORD ISO  every dashboard page (ISO: a file to upload), form checks, the pool wizard, live events,
//                                  an expired login going back to where it was
//   user       USER PASSWORD       the portal: cards, maintenance and full pools, a connect whose
//                                  console cannot open reconnects by itself
//   connect    USER PASSWORD SHOT  connect in the browser; the console's canvas saved to SHOT
//   pooladmin  USER PASSWORD POOL  someone who runs one pool: its page, entitling a user, nothing else
//   totp       USER PASSWORD       set up one-time codes with the QR page; log in with a code
//   totp-required USER PASSWORD    an account that must use them lands on the set-up page
//   recover    USER PASSWORD DESKTOP_ID READY_FILE
//   follow     USER PASSWORD DESKTOP_ID READY_FILE OUT.png
//                                  the console of one's desktop open; READY_FILE is written once it is
//                                  connected (the shell test then takes its host away): the page says
//                                  it is being restarted on another host, then reconnects by itself
import { chromium } from 'playwright-core';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createHmac } from 'node:crypto';

// RFC 6238 code for a base32 secret, STEPS 30 s steps from now.
function totpCode(secret, steps = 0) {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
    let bits = '';
    for (const c of secret.replace(/=+$/, '')) bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
    const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
    const counter = Buffer.alloc(8);
    counter.writeBigUInt64BE(BigInt(Math.floor(Date.now() / 30000) + steps));
    const mac = createHmac('sha1', key).update(counter).digest();
    const o = mac[19] & 15;
    return String((mac.readUInt32BE(o) & 0x7fffffff) % 1000000).padStart(6, '0');
}

const [scenario, base, outdir, ...args] = process.argv.slice(2);
mkdirSync(outdir, { recursive: true });
let failures = 0;
let failShots = 0;

function ok(cond, desc, why = '') {
    if (cond) console.log(`ok - ${desc}`);
    else { failures++; console.log(`not ok - ${desc}${why ? ` # ${String(why).replace(/\n/g, ' ')}` : ''}`); }
    return cond;
}

async function check(desc, fn) {
    try {
        await fn();
        ok(true, desc);
        return true;
    } catch (e) {
        const name = `failed-${scenario}-${++failShots}`;
        await shot(name).catch(() => {});
        return ok(false, desc, `${e.message.split('\n')[0]} (screenshot ${name}.png)`);
    }
}

const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 800 } });
const page = await context.newPage();
page.setDefaultTimeout(15000);
page.on('dialog', (d) => d.accept());
const pageErrors = [];
page.on('pageerror', (e) => pageErrors.push(e.message));

const shot = (name) => page.screenshot({ path: `${outdir}/${name}.png` });
const storedToken = () => page.evaluate(() => sessionStorage.getItem('atrium.token'));

async function login(user, password) {
    await page.goto(`${base}/`);
    await page.getByLabel('User name').fill(user);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.waitForSelector('header.top');
}

async function api(method, path, body) {
    return page.evaluate(async ([m, p, b]) => {
        const r = await fetch(`/api/v1${p}`, {
            method: m, headers: { Authorization: `Bearer ${sessionStorage.getItem('atrium.token')}`, 'Content-Type': 'application/json' },
            body: b === undefined ? undefined : JSON.stringify(b),
        });
        return { status: r.status, body: r.status === 204 ? null : await r.json() };
    }, [method, path, body]);
}

async function loginBad(user) {
    await page.goto(`${base}/`);
    await check('the portal opens on its login page', () => page.getByRole('heading', { name: 'Log in to Atrium' }).waitFor());
    await shot('login');
    await page.getByRole('button', { name: 'Log in' }).click();
    await check('an empty form is refused in the browser', async () => {
        const t = await page.locator('#login-error').textContent();
        if (t !== 'Enter your user name.') throw new Error(`got '${t}'`);
    });
    await page.getByLabel('User name').fill(user);
    await page.getByLabel('Password').fill('not-the-password');
    await page.getByRole('button', { name: 'Log in' }).click();
    await check('a wrong password shows an error', async () => {
        await page.locator('#login-error', { hasText: 'Wrong user name or password.' }).waitFor();
    });
    ok((await storedToken()) === null, '... and no token is stored');
    ok(await page.evaluate(() => localStorage.length === 0), '... nor anything in localStorage');
    ok(await page.getByLabel('User name').inputValue() === user, '... and the user name typed is kept');
    await shot('login-error');
}

const PAGES = [['hosts', 'Hosts'], ['storages', 'Image storages'], ['volumes', 'Volumes'], ['media', 'Media'],
    ['guests', 'Guests'], ['templates', 'Templates'], ['pools', 'Pools'], ['users', 'Users'], ['groups', 'Groups'],
    ['permissions', 'Pool permissions'],
    ['sessions', 'Sessions'], ['terminals', 'Terminals'], ['operations', 'Operations'], ['events', 'Events']];

async function admin(password, iso) {
    await login('admin', password);
    await page.getByRole('link', { name: 'Dashboard' }).click();
    await check('the dashboard opens on the overview', () => page.getByRole('heading', { name: 'Overview', level: 1 }).waitFor());
    await check('... with the host h1 up and its capacity bars', async () => {
        await page.locator('.host-card[data-host="h1"] .badge', { hasText: 'up' }).waitFor();
        const n = await page.locator('.host-card[data-host="h1"] meter').count();
        if (n < 3) throw new Error(`${n} bars`);
    });
    await check('... and recent events', () => page.locator('ol.events li').first().waitFor());
    await check('... and the managers (alone on SQLite; the leader on PostgreSQL)', async () => {
        const m = page.locator('.managers[data-role]');
        await m.waitFor();
        const role = await m.getAttribute('data-role');
        if (role === 'leader') await page.locator('.managers li[data-manager] .badge', { hasText: 'leader' }).waitFor();
        else if (role !== 'alone') throw new Error(`role ${role}`);
    });
    await shot('admin-overview');
    for (const [p, title] of PAGES) {
        await page.goto(`${base}/#/admin/${p}`);
        await check(`the ${title} page opens`, async () => {
            await page.getByRole('heading', { name: title, level: 1 }).waitFor();
            await page.locator('.table-slot[aria-busy="false"], #pool-desktops, table').first().waitFor();
        });
        await shot(`admin-${p}`);
    }

    // Forms: checked in the browser, then by the server, nothing typed lost.
    await page.goto(`${base}/#/admin/users`);
    await page.getByRole('button', { name: 'New user' }).click();
    await page.getByRole('button', { name: 'Create' }).click();
    await check('an empty user form: the browser names the missing fields', async () => {
        await page.locator('[data-field="name"] .field-error', { hasText: 'Name is required.' }).waitFor();
        await page.locator('[data-field="password"] .field-error', { hasText: 'Password is required.' }).waitFor();
    });
    await page.locator('[data-field="name"] input').fill('carol');
    await page.locator('[data-field="password"] input').fill('short');
    await page.getByRole('button', { name: 'Create' }).click();
    await check('a short password is refused beside the field', () =>
        page.locator('[data-field="password"] .field-error', { hasText: 'at least 8 characters' }).waitFor());
    await page.locator('[data-field="password"] input').fill('carol-pass-1');
    await page.locator('[data-field="display_name"] input').fill('Carol Jones');
    await page.getByRole('button', { name: 'Create' }).click();
    await check('a valid user is created and listed', () => page.locator('tr[data-name="carol"]').waitFor());
    await page.getByRole('button', { name: 'New user' }).click();
    await page.locator('[data-field="name"] input').fill('carol');
    await page.locator('[data-field="display_name"] input').fill('Another Carol');
    await page.locator('[data-field="password"] input').fill('carol-pass-2');
    await page.getByRole('button', { name: 'Create' }).click();
    await check("the server's refusal (name taken) is shown in the form", () =>
        page.locator('.panel .form-error, .panel .field-error', { hasText: 'already exists' }).first().waitFor());
    ok(await page.locator('[data-field="display_name"] input').inputValue() === 'Another Carol',
       '... and what was typed is still there');
    await shot('admin-user-form-error');

    // An ISO uploaded from the Media page, with its progress bar.
    await page.goto(`${base}/#/admin/media`);
    await page.getByRole('button', { name: 'ISO images isos' }).click();
    await check('the media storage lists its ISO images', () => page.locator('ul.isos li', { hasText: 'a.iso' }).waitFor());
    await page.getByLabel('Upload an ISO image').setInputFiles(iso);
    await page.getByRole('button', { name: 'Upload', exact: true }).click();
    await check('an ISO uploads from the browser, with its progress shown', async () => {
        await page.getByText('Uploaded ui-test.iso.').waitFor({ timeout: 30000 });
        const v = await page.locator('.panel progress').evaluate((p) => [p.value, p.max]);
        if (v[0] !== v[1] || v[1] < 600000) throw new Error(`progress ${v}`);
    });
    await check('... and is listed', () => page.locator('ul.isos li', { hasText: 'ui-test.iso' }).waitFor());
    await shot('admin-media-upload');

    // The pool wizard: a pool from the template, its desktops appear and the spare starts.
    await page.goto(`${base}/#/admin/pools`);
    await page.getByRole('link', { name: 'New pool' }).click();
    await page.getByRole('heading', { name: 'New pool' }).waitFor();
    await page.getByRole('button', { name: 'Next' }).click();
    await check('the wizard does not go on without a name', () =>
        page.locator('[data-field="name"] .field-error', { hasText: 'Name is required.' }).waitFor());
    await page.locator('[data-field="name"] input').fill('web');
    await page.locator('[data-field="template"] select').selectOption('tpl');
    await page.locator('[data-field="description"] input').fill('Made in the browser');
    await page.getByRole('button', { name: 'Next' }).click();
    await page.locator('[data-field="size"] input').fill('2');
    await page.locator('[data-field="spares"] input').fill('3');
    await shot('admin-pool-wizard');
    await page.getByRole('button', { name: 'Next' }).click();
    await page.locator('[data-field="user_actions"] input').check();
    await page.getByRole('button', { name: 'Create the pool' }).click();
    await check("the server's refusal (more spares than desktops) appears beside the spares field", () =>
        page.locator('[data-field="spares"] .field-error', { hasText: 'more spares' }).waitFor({ state: 'visible' }));
    ok(await page.locator('[data-field="name"] input').inputValue() === 'web' &&
       await page.locator('[data-field="user_actions"] input').isChecked(), '... nothing typed is lost');
    await page.locator('[data-field="spares"] input').fill('1');
    await page.getByRole('button', { name: 'Next' }).click();
    await page.getByRole('button', { name: 'Create the pool' }).click();
    await check("the new pool's page shows its two desktops", async () => {
        await page.getByRole('heading', { name: 'Pool web' }).waitFor({ timeout: 60000 });
        await page.waitForFunction(() => document.querySelectorAll('#pool-desktops tbody tr[data-name]').length === 2, null, { timeout: 60000 });
    });
    await check('... and the spare started', () =>
        page.locator('#pool-desktops tr[data-state="running"]').first().waitFor({ timeout: 60000 }));
    await page.getByRole('button', { name: 'Entitle a user or group' }).click();
    await page.locator('[data-field="user"] select').selectOption('bob');
    await page.getByRole('button', { name: 'Entitle', exact: true }).click();
    await check('bob is entitled from the pool page', () => page.locator('li', { hasText: 'user bob' }).waitFor());
    await shot('admin-pool');
    await page.locator('#pool-desktops tr[data-state="running"]').first().getByRole('link', { name: /^Console of / }).click();
    await check("an operator opens a running desktop's console in the browser (a gateway ticket)", async () => {
        await page.locator('main[data-console]').waitFor();
        await page.locator('.console-title', { hasText: /^web-/ }).waitFor();
    });
    await page.getByRole('button', { name: 'Disconnect' }).click();
    await page.getByRole('heading', { name: 'Pool web' }).waitFor();

    // Live updates: an event made elsewhere appears on the overview without a reload.
    await page.goto(`${base}/#/admin`);
    await page.locator('ol.events li').first().waitFor();
    await page.waitForFunction(() => document.getElementById('live-dot')?.classList.contains('on'));
    const r = await api('POST', '/groups', { name: 'live-group', description: 'made by the test' });
    ok(r.status === 201, 'a group made through the API');
    await check('... appears in the recent events at once (server-sent events)', () =>
        page.locator('ol.events li', { hasText: 'live-group' }).waitFor({ timeout: 10000 }));

    // Events: filter and search.
    await page.goto(`${base}/#/admin/events`);
    await page.locator('#filter-object_kind').selectOption('pool');
    await check('events filtered by kind show the pool made', () => page.locator('tr', { hasText: 'web' }).first().waitFor());
    await page.locator('#search').fill('live-group');
    ok(await page.locator('tbody tr').count() === 0 || !(await page.locator('tbody tr', { hasText: 'pool' }).count()),
       'a search narrows the rows shown');

    // An expired login: back to the login page, then to the page the person was on.
    await page.goto(`${base}/#/admin/templates`);
    await page.getByRole('heading', { name: 'Templates', level: 1 }).waitFor();
    await api('POST', '/auth/logout');
    // The next request the page makes (here: the page drawn again) finds the login revoked.
    await page.evaluate(() => window.dispatchEvent(new HashChangeEvent('hashchange')));
    await check('a request with an expired login sends the person to the login page', async () => {
        await page.getByRole('heading', { name: 'Log in to Atrium' }).waitFor();
        await page.getByText('Your session has expired').waitFor();
    });
    await page.getByLabel('User name').fill('admin');
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Log in' }).click();
    await check('... and after the login back to where they were', () =>
        page.getByRole('heading', { name: 'Templates', level: 1 }).waitFor());
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${base}/#/admin`);
    await page.getByRole('heading', { name: 'Overview', level: 1 }).waitFor();
    ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1),
       'the overview fits a phone screen (no sideways scrolling)');
    await shot('admin-overview-phone');
}

async function user(name, password) {
    await login(name, password);
    await check('the user portal lists the pools with their state', () =>
        page.locator('article.desktop-card[data-pool="web"]').waitFor());
    ok(await page.getByRole('link', { name: 'Dashboard' }).count() === 0, 'a plain user has no dashboard link');
    await shot('portal');
    // A pool in maintenance and a full pool say so.
    await check('a pool in maintenance says so, and its Connect is disabled', async () => {
        const card = page.locator('article.desktop-card[data-pool="closed"]');
        await card.getByText('in maintenance').first().waitFor();
        if (await card.getByRole('button', { name: /Connect/ }).isEnabled()) throw new Error('Connect enabled');
    });
    await page.locator('article.desktop-card[data-pool="full"]').getByRole('button', { name: /Connect/ }).click();
    await check('a full pool says so when connecting', () =>
        page.locator('article.desktop-card[data-pool="full"] .form-error', { hasText: 'the pool is full' }).waitFor());
    await shot('portal-states');
    // Connect: the console page; the test host has no real display, so the tunnel drops and
    // the page reconnects with a new ticket by itself.
    await page.locator('article.desktop-card[data-pool="web"]').getByRole('button', { name: /Connect/ }).click();
    await check('Connect opens the console page', () => page.locator('main[data-console]').waitFor({ timeout: 30000 }));
    await check('... which reconnects by itself when the tunnel drops', () =>
        page.locator('main[data-console="reconnecting"]').waitFor({ timeout: 30000 }));
    await check('... again with a new ticket when that one fails too (attempt 2)', () =>
        page.locator('.console-status', { hasText: 'attempt 2 of' }).waitFor({ timeout: 30000 }));
    await shot('console-reconnecting');
    await page.getByRole('button', { name: 'Disconnect' }).click();
    await check('Disconnect goes back to my desktops, now with my desktop and session', async () => {
        await page.getByRole('heading', { name: 'My desktops' }).waitFor();
        await page.locator('article.desktop-card[data-pool="web"]').getByRole('button', { name: 'End session' }).waitFor();
    });
    await check('the pool allows user actions: reboot and reset are offered', async () => {
        await page.locator('article.desktop-card[data-pool="web"]').getByRole('button', { name: 'Reboot' }).waitFor();
        await page.locator('article.desktop-card[data-pool="web"]').getByRole('button', { name: 'Reset' }).waitFor();
    });
    const download = page.waitForEvent('download');
    await page.locator('article.desktop-card[data-pool="web"]').getByRole('button', { name: 'Download .vv' }).click();
    await check('Download .vv gives a remote-viewer file through the gateway', async () => {
        const d = await download;
        const path = await d.path();
        const text = (await import('node:fs')).readFileSync(path, 'utf8');
        if (!/^\[virt-viewer\]/.test(text) || !/proxy=https:\/\/ticket:atk1\./.test(text)) throw new Error(text.slice(0, 80));
    });
    // (The card may be drawn again as the .vv's connect lands: a click on the old one is lost,
    // as a person would see; click again then.)
    await check('End session ends it', async () => {
        const end = page.locator('article.desktop-card[data-pool="web"]').getByRole('button', { name: 'End session' });
        for (let i = 0; ; i++) {
            await end.click();
            try {
                await end.waitFor({ state: 'detached', timeout: 10000 });
                return;
            } catch (e) {
                if (i === 2) throw e;
            }
        }
    });
}

async function connect(name, password, out) {
    await page.setViewportSize({ width: 1280, height: 1100 });
    await login(name, password);
    await page.locator('article.desktop-card').first().waitFor();
    await page.locator('article.desktop-card').first().getByRole('button', { name: /Connect/ }).click();
    await check(`${name} connects in the browser and the console opens`, () =>
        page.locator('main[data-console="connected"]').waitFor({ timeout: 90000 }));
    await page.getByLabel('Scale to window').uncheck(); // the desktop at its own size, for OCR
    await page.waitForTimeout(3000);
    await page.locator('#screen canvas').screenshot({ path: out });
    await shot('console');
    await page.getByRole('button', { name: 'Ctrl-Alt-Del' }).waitFor();
    await page.getByRole('button', { name: 'Disconnect' }).click();
    await page.getByRole('heading', { name: 'My desktops' }).waitFor();
}

async function recover(name, password, id, readyFile) {
    await login(name, password);
    await page.goto(`${base}/#/console/${id}`);
    await check(`${name}'s console opens`, () => page.locator('main[data-console="connected"]').waitFor({ timeout: 120000 }));
    writeFileSync(readyFile, 'connected\n');
    await check('its host lost, the page says the desktop is being restarted on another host', () =>
        page.getByText('being restarted on another host').first().waitFor({ timeout: 90000 }));
    await shot('console-recovering');
    await check('... and reconnects by itself once it is back', () =>
        page.locator('main[data-console="connected"]').waitFor({ timeout: 120000 }));
    await shot('console-recovered');
}

// The console open while its desktop is live-migrated: it drops at the switch-over and is
// back by itself; the page's data-console changes are recorded as they happen (a reconnect can
// be quicker than any polling of the page), the time from the drop to connected again is
// printed, the screen captured to OUT for OCR.
async function follow(name, password, id, readyFile, out) {
    await page.setViewportSize({ width: 1280, height: 1100 });
    await login(name, password);
    await page.goto(`${base}/#/console/${id}`);
    await check(`${name}'s console opens`, () => page.locator('main[data-console="connected"]').waitFor({ timeout: 120000 }));
    await page.getByLabel('Scale to window').uncheck();
    await page.evaluate(() => {
        const main = document.querySelector('main');
        window.__consoleStates = [];
        new MutationObserver(() => window.__consoleStates.push({ state: main.dataset.console, at: Date.now() }))
            .observe(main, { attributes: true, attributeFilter: ['data-console'] });
    });
    writeFileSync(readyFile, 'connected\n');
    const states = () => page.evaluate(() => window.__consoleStates);
    const reconnect = (list) => {
        const drop = list.findIndex((s) => s.state !== 'connected');
        const back = drop < 0 ? -1 : list.findIndex((s, i) => i > drop && s.state === 'connected');
        return back < 0 ? null : { dropped: list[drop], back: list[back] };
    };
    await check('the switch-over drops the console', () =>
        page.waitForFunction(() => window.__consoleStates.some((s) => s.state !== 'connected'), null, { timeout: 120000 }));
    await shot('console-migrating');
    await check('... and it reconnects by itself to the new host', () =>
        page.waitForFunction(() => {
            const l = window.__consoleStates, d = l.findIndex((s) => s.state !== 'connected');
            return d >= 0 && l.slice(d + 1).some((s) => s.state === 'connected');
        }, null, { timeout: 60000 }));
    const r = reconnect(await states());
    if (r) console.log(`reconnected ${r.back.at - r.dropped.at} ms after the drop (${r.dropped.state} between)`);
    await page.waitForTimeout(2000);
    await page.locator('#screen canvas').screenshot({ path: out });
    await shot('console-migrated');
}

// The dashboard moves a running guest live (Guests page, Migrate) and follows its operation.
async function dashMigrate(password, guest) {
    await login('admin', password);
    await page.goto(`${base}/#/admin/guests`);
    await check(`the Guests page lists ${guest} running`, () =>
        page.locator(`tr[data-name="${guest}"] .badge`, { hasText: 'running' }).waitFor({ timeout: 30000 }));
    await page.getByRole('button', { name: `Migrate ${guest}`, exact: true }).click();
    await check('Migrate opens a panel following the operation', () =>
        page.locator('.panel .operation[data-operation]').waitFor({ timeout: 15000 }));
    await check('... which ends done, naming both hosts', () =>
        page.locator('.panel .operation.done', { hasText: /from h\d to h\d/ }).waitFor({ timeout: 180000 }));
    await shot('admin-guest-migrated');
    await page.goto(`${base}/#/admin/operations`);
    await check('the Operations page lists the migration done', () =>
        page.locator('tr', { hasText: 'migrate' }).filter({ hasText: guest }).filter({ hasText: 'done' }).first().waitFor({ timeout: 15000 }));
    await page.goto(`${base}/#/admin/hosts`);
    await check('the Hosts page offers Drain', () =>
        page.getByRole('button', { name: 'Drain h1', exact: true }).waitFor({ timeout: 15000 }));
}

async function totp(name, password) {
    await login(name, password);
    await page.goto(`${base}/#/account`);
    await page.getByRole('button', { name: 'Set up one-time codes' }).click();
    await check('the account page shows a QR code of the secret for an authenticator app', () =>
        page.getByRole('img', { name: /QR code/ }).waitFor());
    const secret = await page.locator('#totp-secret').textContent();
    await shot('account-totp');
    await page.getByLabel('Code from the app').fill('000000');
    await page.getByRole('button', { name: 'Confirm' }).click();
    await check('a wrong code is refused beside the field', () => page.locator('.field-error', { hasText: 'not the code' }).waitFor());
    await page.getByLabel('Code from the app').fill(totpCode(secret));
    await page.getByRole('button', { name: 'Confirm' }).click();
    await check('the right code turns them on and shows ten recovery codes', async () => {
        await page.locator('#recovery-codes li').nth(9).waitFor();
    });
    await shot('account-recovery');
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByLabel('User name').fill(name);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Log in' }).click();
    await check('the next login asks for the one-time code', () => page.getByLabel('One-time code').waitFor());
    ok((await storedToken()) === null, '... and stores no token before it');
    await page.getByLabel('One-time code').fill('123456');
    await page.getByRole('button', { name: 'Log in' }).click();
    await check('a wrong code: an error, still on the login page', () =>
        page.locator('#login-error', { hasText: 'Wrong password or one-time code.' }).waitFor());
    await page.getByLabel('One-time code').fill(totpCode(secret, 1));
    await page.getByRole('button', { name: 'Log in' }).click();
    await check('with the code the portal opens', () => page.getByRole('heading', { name: 'My desktops' }).waitFor());
}

async function poolAdmin(name, password, pool) {
    await login(name, password);
    ok(await page.getByRole('link', { name: 'Dashboard' }).count() === 0, 'a pool admin has no dashboard');
    await page.getByRole('link', { name: 'My pools' }).click();
    await page.getByRole('link', { name: `Pool ${pool}` }).click();
    await check("the pool admin opens the pool's page with its desktops", async () => {
        await page.getByRole('heading', { name: `Pool ${pool}` }).waitFor();
        await page.locator('#pool-desktops tbody tr[data-name]').first().waitFor();
    });
    await page.getByRole('button', { name: 'Entitle a user or group' }).click();
    await page.locator('[data-field="user"] input').fill('erin');
    await page.getByRole('button', { name: 'Entitle', exact: true }).click();
    await check('... entitles a user (typed: the user list is not his to read)', () =>
        page.locator('li', { hasText: 'user erin' }).waitFor());
    await shot('pool-admin');
    await page.goto(`${base}/#/admin/hosts`);
    await check('... and opens nothing else', () => page.getByRole('heading', { name: 'Not allowed' }).waitFor());
}

async function totpRequired(name, password) {
    await login(name, password);
    await check('an account that must use one-time codes lands on their set-up page', async () => {
        await page.getByRole('heading', { name: 'My account' }).waitFor();
        await page.locator('#totp-state', { hasText: 'must use one-time codes' }).waitFor();
    });
    await page.goto(`${base}/#/`);
    await check('... and stays there until they are set up', () => page.getByRole('heading', { name: 'My account' }).waitFor());
    await shot('account-required');
}

try {
    if (scenario === 'login-bad') await loginBad(args[0]);
    else if (scenario === 'admin') await admin(args[0], args[1]);
    else if (scenario === 'user') await user(args[0], args[1]);
    else if (scenario === 'connect') await connect(args[0], args[1], args[2]);
    else if (scenario === 'totp') await totp(args[0], args[1]);
    else if (scenario === 'pooladmin') await poolAdmin(args[0], args[1], args[2]);
    else if (scenario === 'totp-required') await totpRequired(args[0], args[1]);
    else if (scenario === 'recover') await recover(args[0], args[1], args[2], args[3]);
    else if (scenario === 'dash-migrate') await dashMigrate(args[0], args[1]);
    else if (scenario === 'follow') await follow(args[0], args[1], args[2], args[3], args[4]);
    else throw new Error(`no scenario '${scenario}'`);
} catch (e) {
    ok(false, `scenario ${scenario} ran to its end`, e.message.split('\n').slice(0, 6).join(' | '));
    await shot(`${scenario}-failure`).catch(() => {});
} finally {
    ok(pageErrors.length === 0, `no script error in the page (${scenario})`, pageErrors.join('; '));
    await browser.close();
}
process.exit(failures ? 1 : 0);
