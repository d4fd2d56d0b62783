// The REST API (/api/v1 on the portal's own origin, relayed by the gateway): the same routes
// the CLI uses. The bearer token lives in sessionStorage (this tab only, gone when it closes)
// and is stored only after a successful login.

export type Role = 'user' | 'helpdesk' | 'operator' | 'admin';
export interface Me {
    id: number; name: string; display_name?: string; role: Role;
    pool_roles?: { pool: string; role: 'operator' | 'helpdesk' }[]; // permissions on single pools
}
export type Row = Record<string, unknown> & { id: number; name?: string };

const TOKEN_KEY = 'atrium.token';

export class ApiError extends Error {
    constructor(public status: number, public code: string, message: string,
                public field?: string) {
        super(message);
    }
}

let expiredHandler: (() => void) | null = null;

// Called once when a request finds the login expired or revoked.
export function onExpired(fn: () => void): void {
    expiredHandler = fn;
}

export function token(): string | null {
    return sessionStorage.getItem(TOKEN_KEY);
}

export function forgetToken(): void {
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem('atrium.enrol');
}

export function authHeaders(): Record<string, string> {
    const t = token();
    return t ? { Authorization: `Bearer ${t}` } : {};
}

export async function api<T = any>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { Accept: 'application/json', ...authHeaders() };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let res: Response;
    try {
        res = await fetch(`/api/v1${path}`, {
            method, headers, body: body === undefined ? undefined : JSON.stringify(body),
            cache: 'no-store',
        });
    } catch {
        throw new ApiError(0, 'network', 'Atrium cannot be reached: check your network ' +
                           'connection, then try again.');
    }
    if (res.status === 204) return undefined as T;
    let data: any = null;
    try {
        data = await res.json();
    } catch {
        if (res.ok) return undefined as T;
    }
    if (!res.ok) {
        const e = data?.error ?? {};
        const err = new ApiError(res.status, e.code ?? 'http', e.message ??
                                 `the server answered ${res.status} ${res.statusText}`, e.field);
        if (res.status === 401 && e.code === 'unauthorized' && token()) {
            forgetToken();
            expiredHandler?.();
        }
        throw err;
    }
    return data as T;
}

export async function login(name: string, password: string, otp?: string): Promise<Me> {
    const body: Record<string, string> = { name, password };
    if (otp) body.otp = otp;
    const r = await api<{ token: string; user: Me; totp_enrolment_required?: boolean }>(
        'POST', '/auth/login', body);
    sessionStorage.setItem(TOKEN_KEY, r.token);
    // This login may only set up one-time codes: the portal goes to My account until it has.
    if (r.totp_enrolment_required) sessionStorage.setItem('atrium.enrol', '1');
    else sessionStorage.removeItem('atrium.enrol');
    return r.user;
}

export async function logout(): Promise<void> {
    try {
        await api('POST', '/auth/logout');
    } finally {
        forgetToken();
    }
}

// Every row of a list (following cursors), at most `max`.
export async function listAll(plural: string, params: Record<string, string> = {},
                              max = 5000): Promise<Row[]> {
    const rows: Row[] = [];
    let cursor: string | null = null;
    do {
        const q = new URLSearchParams({ ...params, limit: '1000' });
        if (cursor) q.set('cursor', cursor);
        const page: { items: Row[]; next_cursor: string | null } =
            await api('GET', `/${plural}?${q}`);
        rows.push(...page.items);
        cursor = page.next_cursor;
    } while (cursor && rows.length < max);
    return rows;
}

export function enc(s: string | number): string {
    return encodeURIComponent(String(s));
}

// ---- the OpenAPI document: forms take their fields, limits and help from it --------------

export interface Prop {
    type?: string; enum?: string[]; pattern?: string; minimum?: number; maximum?: number;
    minLength?: number; maxLength?: number; default?: unknown; description?: string;
    readOnly?: boolean; writeOnly?: boolean; format?: string; oneOf?: unknown[];
    nullable?: boolean;
}
export interface Schema { properties: Record<string, Prop>; required?: string[] }

let openapi: Promise<Record<string, Schema>> | null = null;

export function schema(name: string): Promise<Schema> {
    openapi ??= api('GET', '/openapi.json').then((d) => d.components.schemas);
    return openapi.then((s) => {
        if (!s[name]) throw new Error(`no schema ${name}`);
        return s[name];
    });
}
