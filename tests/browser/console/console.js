// Test page: stock noVNC opening a desktop's console through the gateway, exactly as the
// portal will: wss://<this origin>/console?ticket=... with the ticket and the one-time
// password from the page's fragment (#ticket=...&password=...). window.atriumState says how
// far it got, for the test driving the browser.
import RFB from './novnc/core/rfb.js';

const args = new URLSearchParams(location.hash.slice(1));
window.atriumState = 'connecting';
const url = `wss://${location.host}/console?ticket=${encodeURIComponent(args.get('ticket'))}`;
const rfb = new RFB(document.getElementById('screen'), url,
                    { credentials: { password: args.get('password') } });
rfb.scaleViewport = false;
rfb.addEventListener('connect', () => { window.atriumState = 'connected'; });
rfb.addEventListener('disconnect', (e) => {
    window.atriumState = e.detail.clean ? 'closed' : 'failed';
});
rfb.addEventListener('securityfailure', (e) => {
    window.atriumState = 'security failure: ' + e.detail.reason;
});
