// Builds the portal into one directory the gateway serves (gateway.web_root):
//   node build.mjs [OUT]   (default ../build/web)
// OUT/index.html and app.css from static/, OUT/js/*.js compiled by tsc from src/, and
// OUT/novnc/{core,vendor} copied from the pinned @novnc/novnc package (loaded only when a
// console opens). Nothing is fetched from the network at run time.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, rmSync, existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = resolve(process.argv[2] ?? resolve(here, '../build/web'));
const tsc = resolve(here, 'node_modules/typescript/bin/tsc');
const novnc = resolve(here, 'node_modules/@novnc/novnc');

if (!existsSync(tsc) || !existsSync(novnc)) {
    console.error('web/node_modules is missing: run "npm ci" in web/ (make web does)');
    process.exit(1);
}
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
execFileSync(process.execPath, [tsc, '-p', here, '--outDir', resolve(out, 'js')], { stdio: 'inherit' });
cpSync(resolve(here, 'static'), out, { recursive: true });
for (const part of ['core', 'vendor'])
    cpSync(resolve(novnc, part), resolve(out, 'novnc', part), { recursive: true });
cpSync(resolve(novnc, 'LICENSE.txt'), resolve(out, 'novnc', 'LICENSE.txt'));
// The QR code of a TOTP secret (account page), loaded only there.
mkdirSync(resolve(out, 'vendor'), { recursive: true });
cpSync(resolve(here, 'node_modules/qrcode-generator/dist/qrcode.mjs'), resolve(out, 'vendor', 'qrcode.mjs'));
console.log(`portal built in ${out}`);
