// Forms built from the API's own OpenAPI schemas: each field's type, choices, limits, pattern
// and help come from the server, so the browser checks what the server will check. The server
// checks again; its message is shown beside the field it names (the error's "field"), and
// nothing typed is lost: the form stays as it was.
import { ApiError, Prop, Row, listAll, schema } from './api.js';
import { h } from './dom.js';

export interface FieldOpt {
    name: string;
    label?: string;
    help?: string;
    required?: boolean;
    multiline?: boolean;
    sendAs?: string;    // the body member it is sent as (a template's guest: from_guest)
}

export interface FormOpts {
    schema: string;
    fields: (string | FieldOpt)[];
    values?: Row;              // editing: only the fields changed are sent
    submitLabel: string;
    onSubmit: (body: Record<string, unknown>) => Promise<unknown>;
    onDone?: (result: unknown) => void;
    onCancel?: () => void;
}

const PLURAL: Record<string, string> = {
    user: 'users', group: 'groups', host: 'hosts', storage: 'storages', volume: 'volumes',
    media: 'media', guest: 'guests', template: 'templates', pool: 'pools', terminal: 'terminals',
    desktop: 'desktops', session: 'sessions', 'template-version': 'template-versions',
};

let formSeq = 0;

function refKind(p: Prop): string | null {
    const m = p.oneOf && p.description?.match(/name or id of an? ([a-z-]+)/);
    return m ? m[1] : null;
}

export function labelOf(name: string): string {
    const s = name.replace(/_/g, ' ');
    return s.charAt(0).toUpperCase() + s.slice(1);
}

function helpOf(p: Prop): string {
    return (p.description ?? '').replace(/\.: name or id of an? [a-z-]+$/, '.');
}

type Input = HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement;

interface Built {
    name: string;
    sendAs: string;
    prop: Prop;
    input: Input;
    error: HTMLElement;
    initial: string;
}

function valueText(v: unknown): string {
    if (v === undefined || v === null) return '';
    return String(v);
}

async function makeInput(id: string, f: FieldOpt, p: Prop, value: unknown, required: boolean,
                         editing: boolean): Promise<Input> {
    const common = { id, name: f.name, 'aria-describedby': `${id}-help ${id}-err` };
    const kind = refKind(p);
    if (p.type === 'boolean') {
        const def = value ?? p.default ?? false;
        return h('input', { ...common, type: 'checkbox', checked: def === true || def === 'true' });
    }
    let choices: string[] | null = p.enum ?? null;
    if (kind) {
        try {
            choices = (await listAll(PLURAL[kind] ?? `${kind}s`)).map((r) => String(r.name ?? r.id));
        } catch {
            choices = null; // not ours to list (a pool admin entitling a user): typed instead
        }
    }
    if (choices) {
        const cur = valueText(value ?? (editing ? '' : p.default));
        const sel = h('select', { ...common, required: required || undefined },
            required && !cur ? h('option', { value: '' }, `Choose a ${kind ?? 'value'}…`)
                : !required ? h('option', { value: '' }, '—') : null,
            choices.map((c) => h('option', { value: c, selected: c === cur }, c)));
        if (cur && !choices.includes(cur)) sel.append(h('option', { value: cur, selected: true }, cur));
        return sel;
    }
    if (f.multiline) {
        return h('textarea', { ...common, rows: 3, maxlength: p.maxLength, required: required || undefined },
                 valueText(value ?? ''));
    }
    const numeric = p.type === 'integer' || p.type === 'number';
    const password = p.format === 'password' || p.writeOnly;
    return h('input', {
        ...common,
        type: numeric ? 'number' : password ? 'password' : 'text',
        inputmode: numeric ? 'numeric' : undefined,
        autocomplete: password ? 'new-password' : 'off',
        value: valueText(value ?? (editing ? '' : '')),
        placeholder: !editing && p.default !== undefined && p.default !== '' ? `default ${p.default}` : undefined,
        required: (required && !(editing && password)) || undefined,
        min: p.minimum, max: p.maximum, minlength: p.minLength, maxlength: p.maxLength,
        pattern: p.pattern ? p.pattern.replace(/^\^/, '').replace(/\$$/, '') : undefined,
        step: numeric ? 1 : undefined,
    });
}

function readValue(b: Built): string {
    return b.input instanceof HTMLInputElement && b.input.type === 'checkbox'
        ? String(b.input.checked) : b.input.value;
}

function toJson(b: Built, text: string): unknown {
    if (b.prop.type === 'boolean') return text === 'true';
    if ((b.prop.type === 'integer' || b.prop.type === 'number') && text !== '') return Number(text);
    if (refKind(b.prop) && text === '') return null;
    return text;
}

// Our own messages in place of the browser's bubbles (which screen readers miss).
function clientMessage(b: Built): string {
    const v = b.input.validity;
    const label = labelOf(b.name);
    if (v.valueMissing) return `${label} is required.`;
    if (v.patternMismatch) return `${label}: ${helpOf(b.prop) || 'not in the expected form.'}`;
    if (v.rangeUnderflow || v.rangeOverflow)
        return `${label} must be from ${b.prop.minimum} to ${b.prop.maximum}.`;
    if (v.tooShort) return `${label} must be at least ${b.prop.minLength} characters long.`;
    if (v.badInput || v.stepMismatch) return `${label} must be a whole number.`;
    return b.input.validationMessage;
}

export function showFieldError(b: { input: Input; error: HTMLElement }, msg: string): void {
    b.error.textContent = msg;
    b.input.setAttribute('aria-invalid', msg ? 'true' : 'false');
}

// Focus a field with a message; a form in steps (the pool wizard) first shows its step.
function reveal(form: HTMLFormElement, b: Built): void {
    form.dispatchEvent(new CustomEvent('reveal', { detail: b.input }));
    b.input.focus();
}

export async function buildForm(opts: FormOpts): Promise<HTMLFormElement> {
    const sc = await schema(opts.schema);
    const formId = `form${++formSeq}`;
    const editing = !!opts.values;
    const built: Built[] = [];
    const formError = h('p', { class: 'form-error', role: 'alert', id: `${formId}-error` });
    const submit = h('button', { type: 'submit', class: 'primary' }, opts.submitLabel);
    const form = h('form', { class: 'form', novalidate: true, 'aria-describedby': `${formId}-error` });

    for (const spec of opts.fields) {
        const f: FieldOpt = typeof spec === 'string' ? { name: spec } : spec;
        const p = sc.properties[f.name];
        if (!p) continue;
        const required = f.required ?? (!editing && (sc.required ?? []).includes(f.name));
        const id = `${formId}-${f.name}`;
        const value = opts.values ? opts.values[f.name] : undefined;
        const input = await makeInput(id, f, p, value, required, editing);
        const error = h('p', { class: 'field-error', id: `${id}-err` });
        const help = h('p', { class: 'help', id: `${id}-help` }, f.help ?? helpOf(p));
        const b: Built = { name: f.name, sendAs: f.sendAs ?? f.name, prop: p, input, error, initial: '' };
        b.initial = readValue(b);
        built.push(b);
        const label = h('label', { for: id }, f.label ?? labelOf(f.name), required ? h('span', { class: 'req', 'aria-hidden': 'true' }, ' *') : null);
        form.append(p.type === 'boolean'
            ? h('div', { class: 'field check', 'data-field': f.name }, input, label, help, error)
            : h('div', { class: 'field', 'data-field': f.name }, label, input, help, error));
        input.addEventListener('input', () => showFieldError(b, ''));
    }
    form.append(formError, h('div', { class: 'actions' }, submit,
        opts.onCancel ? h('button', { type: 'button', onclick: opts.onCancel }, 'Cancel') : null));

    form.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        formError.textContent = '';
        let first: Built | null = null;
        for (const b of built) {
            const ok = b.input.checkValidity();
            showFieldError(b, ok ? '' : clientMessage(b));
            if (!ok && !first) first = b;
        }
        if (first) {
            reveal(form, first);
            return;
        }
        const body: Record<string, unknown> = {};
        for (const b of built) {
            const text = readValue(b);
            if (editing ? text === b.initial : text === '' || (b.prop.type === 'boolean' && text === b.initial))
                continue;
            body[b.sendAs] = toJson(b, text);
        }
        submit.disabled = true;
        submit.setAttribute('aria-busy', 'true');
        try {
            const result = await opts.onSubmit(body);
            for (const b of built) b.initial = readValue(b);
            opts.onDone?.(result);
        } catch (e) {
            const err = e as ApiError;
            const target = built.find((b) => b.name === err.field || b.sendAs === err.field);
            if (target) {
                showFieldError(target, err.message);
                reveal(form, target);
            } else {
                formError.textContent = err.message;
            }
        } finally {
            submit.disabled = false;
            submit.removeAttribute('aria-busy');
        }
    });
    return form;
}
