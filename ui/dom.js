// dom.js - the only way the inspector builds its page.
//
// Every string becomes a text node and every attribute a plain attribute:
// webhook content can never become markup, script or an event handler. No
// HTML is ever parsed from a string (the page's Trusted Types policy would
// refuse it; tests/unit/test_ui.c looks for the sinks), no "on*" attributes
// (handlers go through `on`), and links only to paths on this origin, so a
// body cannot smuggle in a javascript: URL.

const SVG_NS = 'http://www.w3.org/2000/svg';

function safeAttr(name, value) {
	if (/^on/i.test(name) || name === 'style' || name === 'srcdoc')
		throw new Error(`dom: attribute ${name} is not allowed`);
	if ((name === 'href' || name === 'src' || name === 'action') &&
	    !(typeof value === 'string' && /^\/(?![\/\\])/.test(value)) && !/^#/.test(value))
		throw new Error(`dom: ${name} must be a path on this origin`);
	return String(value);
}

// The characters that turn the text after them around (U+202A-202E, the
// embeddings and overrides; U+2066-2069, the isolates): "c\u202Egnp.exe"
// read "cexe.png", and a reason of "\u202Edetcennocsid" read "disconnected"
// (a review); and the marks U+061C, U+200E and U+200F, which move the digits
// and punctuation beside them. Shown as U+FFFD, as hookctl shows them as "?"
// and the log drops the same ones.
const BIDI_CONTROLS = /[\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/g;

// Text as the page shows it: what a sender wrote, bar those controls.
export function visible(text) {
	return String(text).replace(BIDI_CONTROLS, '\uFFFD');
}

function append(el, child) {
	if (child === null || child === undefined || child === false)
		return;
	if (Array.isArray(child)) {
		for (const c of child)
			append(el, c);
	} else if (child instanceof Node) {
		el.appendChild(child);
	} else {
		el.appendChild(document.createTextNode(visible(child)));
	}
}

// Children into `el`, as h() takes them: null (a section with nothing to
// show) is nothing, where the DOM's own append() writes "null".
export function add(el, ...children) {
	append(el, children);
	return el;
}

function build(el, attrs, children) {
	for (const [name, value] of Object.entries(attrs || {})) {
		if (name === 'on') {
			for (const [ev, fn] of Object.entries(value))
				el.addEventListener(ev, fn);
		} else if (value === true) {
			el.setAttribute(name, '');
		} else if (value !== null && value !== undefined && value !== false) {
			el.setAttribute(name, safeAttr(name, value));
		}
	}
	append(el, children);
	return el;
}

// h('a', {href: '/ui/events', class: 'x', on: {click: fn}}, 'text', node, [more])
export function h(tag, attrs, ...children) {
	return build(document.createElement(tag), attrs, children);
}

export function svg(tag, attrs, ...children) {
	return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

export function clear(el) {
	el.replaceChildren();
	return el;
}

// A time in the browser's zone, the UTC instant on hover. Written out by
// hand ("2026-12-03 05:55:34"): sortable, unambiguous in every locale, and
// no Intl formatter to load before the first rows can show.
function pad(n, w) {
	return String(n).padStart(w || 2, '0');
}

export function formatLocal(iso, short) {
	const d = new Date(iso);
	if (Number.isNaN(d.getTime()))
		return String(iso);
	const clock = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
	if (short)
		return clock;
	return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${clock}`;
}

export function time(iso, short) {
	if (iso === null || iso === undefined)
		return h('span', { class: 'muted' }, '—');
	return h('time', { datetime: iso, title: `${iso} (UTC)` }, formatLocal(iso, short));
}

// "12.5 s", "3 min 20 s", "1 h 02 min"
export function duration(seconds) {
	if (seconds === null || seconds === undefined)
		return '—';
	const tenths = Math.round(Number(seconds) * 10) / 10;
	if (tenths < 60)
		return `${tenths} s`;
	// Rounded before it is split: 119.6 s read "1 min 60 s", rounding the rest.
	const s = Math.round(Number(seconds));
	if (s < 3600)
		return `${Math.floor(s / 60)} min ${s % 60} s`;
	return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

export function badge(text, kind) {
	return h('span', { class: `badge badge-${kind || String(text).replace(/[^a-z0-9-]/gi, '')}` },
	    text);
}

// A definition list from [label, value] pairs, each pair in a div so the
// style sheet can lay them out in columns; null/undefined/'' show as a dash.
export function facts(pairs) {
	return h('dl', { class: 'facts' }, pairs.map(([label, value]) => h('div', null,
	    h('dt', null, label),
	    h('dd', null, value === null || value === undefined || value === '' ?
		h('span', { class: 'muted' }, '—') : value))));
}

// A dotted name that may break after its dots ("tavus.conversation.system.shutdown").
export function dotted(name) {
	const parts = String(name).split('.');
	return parts.map((p, i) => (i < parts.length - 1 ? [`${p}.`, h('wbr')] : p));
}

export function eventLink(id, text) {
	return h('a', { href: `/ui/events/${encodeURIComponent(id)}` }, text || id);
}

// A key holding "/" or a control character (C0 or DEL), or longer than 255
// bytes, cannot be a path segment (the daemon refuses an encoded "/" or
// control character in any path, and a segment has at most 255 bytes; api.md):
// its events stand in for its page, which would be an error.
export function sessionLink(id, text) {
	const s = String(id);
	const href = /[\/\u0000-\u001F\u007F]/.test(s) || new TextEncoder().encode(s).length > 255 ?
	    `/ui/events?${new URLSearchParams({ session: id })}` :
	    `/ui/sessions/${encodeURIComponent(id)}`;
	return h('a', { href }, text || id);
}

// "Load older", disabled while its page loads: a second click meanwhile asked
// for the same cursor again and listed that page twice (a review). `load` adds
// the page and puts the next button in `more`; when it fails, the error shows
// under this one, which can be clicked again.
export function olderButton(more, load) {
	const btn = h('button', {
		type: 'button', class: 'secondary', on: {
			click: async () => {
				btn.disabled = true;
				try {
					await load();
				} catch (err) {
					more.append(errorBox(err));
					btn.disabled = false;
				}
			},
		},
	}, 'Load older');
	return btn;
}

// After "Load older" replaced itself: the keyboard goes on where it was, on the
// next "Load older", or on the first row loaded when there is none (it fell to
// the page's start, a review found).
export function focusAfterMore(more, firstNew) {
	const next = more.querySelector('button') || (firstNew && firstNew.querySelector('a, button'));
	if (next)
		next.focus();
}

// A polite status line for screen readers ("Copied", "Queued 2 deliveries").
export function say(text) {
	const live = document.getElementById('status');
	if (live) {
		live.textContent = '';
		live.textContent = text;
	}
}

// Copy to the clipboard; the Clipboard API needs a secure context (loopback
// is one), else the selection fallback.
export async function copy(text) {
	try {
		if (navigator.clipboard && window.isSecureContext) {
			await navigator.clipboard.writeText(text);
			say('Copied');
			return true;
		}
	} catch (e) {
		// fall through to the selection
	}
	const ta = h('textarea', { class: 'offscreen', readonly: true });
	ta.value = text;
	document.body.appendChild(ta);
	ta.select();
	let ok = false;
	try {
		ok = document.execCommand('copy');
	} catch (e) {
		ok = false;
	}
	ta.remove();
	say(ok ? 'Copied' : 'Copy failed: select the text and copy it');
	return ok;
}

export function copyButton(label, getText) {
	return h('button', {
		type: 'button', class: 'small',
		on: { click: async () => copy(typeof getText === 'function' ? await getText() : getText) },
	}, label);
}

export function problemText(err) {
	if (err && err.problem) {
		const p = err.problem;
		return [p.title, p.detail].filter(Boolean).join(': ') || `HTTP ${err.status}`;
	}
	return String(err && err.message ? err.message : err);
}

export function errorBox(err) {
	return h('p', { class: 'error', role: 'alert' }, problemText(err));
}
