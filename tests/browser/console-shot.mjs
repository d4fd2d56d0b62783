// Opens the console test page in Debian's headless chromium (playwright-core), waits until
// noVNC says connected and the desktop had time to draw, and saves the console's canvas.
// (playwright gives chromium a new empty profile of its own each time.)
//   node console-shot.mjs URL OUT.png     exit 0 when connected, 1 with the state otherwise
import { chromium } from 'playwright-core';

const [url, out] = process.argv.slice(2);
const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
let code = 1;
try {
    const page = await browser.newPage({ ignoreHTTPSErrors: true, viewport: { width: 1024, height: 800 } });
    await page.goto(url);
    try {
        await page.waitForFunction(() => window.atriumState !== 'connecting', null, { timeout: 30000 });
    } catch (e) { /* reported below */ }
    const state = await page.evaluate(() => window.atriumState);
    if (state === 'connected') {
        await page.waitForTimeout(3000);
        await page.locator('canvas').screenshot({ path: out });
        code = 0;
    }
    console.log(`noVNC: ${state}`);
} finally {
    await browser.close();
}
process.exit(code);
