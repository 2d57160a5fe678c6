// rejections.js - the Rejections view: what was refused, where, and why.
//
// GET /v1/rejections lists the bodies refused with 422, newest first; each
// problem names its JSON pointer, and the value found there is shown next to
// it. The body comes with the listing where the API includes it, else from
// GET /v1/rejections/{id} when opened. Accept stores a rejected body as an
// event after all (POST /v1/rejections/{id}/accept).

import { get, getBytes, post, query, seg } from './api.js';
import {
	add, badge, clear, copyButton, errorBox, eventLink, facts, focusAfterMore, h, olderButton,
	problemText, say, time, visible,
} from './dom.js';

const PAGE = 50;

// A body a Daily source refused but answered 200: its sender will not send it again.
const ACKNOWLEDGED = '200: the sender was told it arrived (Daily) and will not send it again';

// RFC 6901: the value at `pointer` in `doc`, or undefined.
export function resolve(doc, pointer) {
	if (pointer === '' || pointer === undefined)
		return doc;
	if (pointer[0] !== '/')
		return undefined;
	let v = doc;
	for (const raw of pointer.slice(1).split('/')) {
		const k = raw.replace(/~1/g, '/').replace(/~0/g, '~');
		if (v === null || typeof v !== 'object' || !Object.prototype.hasOwnProperty.call(v, k))
			return undefined;
		v = v[k];
	}
	return v;
}

// The problems as [{pointer, detail}], from the API's `problems` or the stored answer.
function problemsOf(r) {
	if (Array.isArray(r.problems))
		return r.problems;
	const p = r.problem || {};
	if (Array.isArray(p.errors))
		return p.errors;
	return [{ pointer: '', detail: p.detail || p.title || 'refused' }];
}

function shown(v) {
	if (v === undefined)
		return 'absent';
	const s = JSON.stringify(v);
	return s.length > 200 ? `${s.slice(0, 200)}…` : s;
}

function problemsList(r, payload) {
	return h('ul', { class: 'problems' }, problemsOf(r).map((p) => h('li', null,
	    h('code', { class: 'pointer' }, p.pointer || '(body)'), ' ', p.detail,
	    payload !== undefined && p.pointer ?
		h('span', { class: 'muted small' }, ' · found: ', h('code', null, shown(resolve(payload, p.pointer)))) : null)));
}

// The body of a rejection: its bytes as they came, as text (what an operator
// copies, mends and sends again: JSON.parse would round integers past 2^53 and
// reorder integer-like keys), and its JSON (payload null: not JSON) to show the
// value found at each problem's pointer.
async function bodyOf(r, signal) {
	const full = r.payload === undefined ? await get(`/v1/rejections/${seg(r.id)}`, { signal }) : r;
	const raw = await getBytes(`/v1/rejections/${seg(r.id)}/raw`, { signal });
	return {
		payload: full.payload === null ? undefined : full.payload,
		text: new TextDecoder('utf-8', { fatal: false }).decode(raw),
	};
}

function bodyPre(text) {
	return [h('div', { class: 'toolbar' }, copyButton('Copy body', text)),
		h('pre', { class: 'body', tabindex: '0', 'aria-label': 'Body' }, text)];
}

function acceptButton(r, signal) {
	const out = h('span', { class: 'small', role: 'status' });
	if (r.accepted_event)
		return h('p', { class: 'small' }, 'Accepted as ', eventLink(r.accepted_event), '.');
	const btn = h('button', {
		type: 'button', on: {
			click: async () => {
				btn.disabled = true;
				clear(out);
				try {
					const a = await post(`/v1/rejections/${seg(r.id)}/accept`, {}, { signal });
					out.append(a.created ? 'Accepted as ' : 'Already accepted as ', eventLink(a.id), ` (${a.kind}).`);
					say(out.textContent);
					btn.remove();
				} catch (err) {
					out.append(problemText(err));
					btn.disabled = false;
				}
			},
		},
	}, 'Accept');
	return h('p', { class: 'accept' }, btn, ' ', out);
}

function card(r, signal) {
	const body = h('div');
	let problems = problemsList(r, r.payload);
	const details = h('details', null, h('summary', null, `Body${r.body_bytes !== undefined ? ` (${r.body_bytes} bytes)` : ''}`), body);
	let loaded = false;
	details.addEventListener('toggle', async () => {
		if (!details.open || loaded)
			return;
		loaded = true;
		try {
			const b = await bodyOf(r, signal);
			body.append(...bodyPre(b.text));
			// Now the value at each pointer can be shown too.
			const withValues = problemsList(r, b.payload);
			problems.replaceWith(withValues);
			problems = withValues;
		} catch (err) {
			body.append(errorBox(err));
			loaded = false;
		}
	});
	return h('li', { class: 'card', 'data-id': r.id },
	    h('div', { class: 'card-head' },
		time(r.received_at), ' ', badge(String(r.status), 'bad'), ' ',
		r.acknowledged ? [badge('answered 200', 'warn'), ' '] : null,
		h('strong', { class: 'wrap' }, r.kind || 'unclassified'),
		h('span', { class: 'muted small' }, ` from ${r.source}`, r.remote_addr ? ` (${r.remote_addr})` : ''), ' ',
		h('a', { href: `/ui/rejections/${encodeURIComponent(r.id)}`, class: 'small' }, 'details')),
	    problems,
	    details,
	    acceptButton(r, signal));
}

export async function render(ctx) {
	const { main, signal } = ctx;
	document.title = 'Rejections · hookrelay';
	const list = h('ul', { class: 'cards' });
	const more = h('div', { class: 'more' });
	const note = h('div');
	main.append(h('h1', null, 'Rejections'),
	    h('p', { class: 'muted' }, 'Bodies refused and kept (400 not JSON, 413 over the JSON limits, 422 not valid), newest first, with the JSON pointer of each problem.'),
	    note, list, more);
	async function load(cursor) {
		const page = await get(`/v1/rejections${query({ limit: PAGE, cursor })}`, { signal });
		const first = list.children.length;
		for (const r of page.rejections)
			list.append(card(r, signal));
		clear(more);
		if (page.next_cursor)
			more.append(olderButton(more, () => load(page.next_cursor).then(() => say('Older rejections loaded'))));
		if (cursor)
			focusAfterMore(more, list.children[first]);
		return page;
	}
	try {
		const first = await load(null);
		if (first.rejections.length === 0)
			note.append(h('p', { class: 'muted empty' }, 'Nothing was rejected.'));
	} catch (err) {
		if (!signal.aborted)
			note.append(errorBox(err));
	}
}

// /ui/rejections/{id}: GET /v1/rejections/{id}
export async function renderOne(ctx) {
	const { main, params, signal } = ctx;
	const id = params[0];
	document.title = `${visible(id)} · hookrelay`; // the id is the URL's: any text
	main.append(h('p', { class: 'crumbs' }, h('a', { href: '/ui/rejections' }, 'Rejections'), ' / ', h('span', { class: 'mono' }, id)));
	let r;
	try {
		r = await get(`/v1/rejections/${seg(id)}`, { signal });
	} catch (err) {
		if (!signal.aborted)
			main.append(h('h1', null, 'Rejection'), errorBox(err));
		return;
	}
	let body;
	try {
		body = await bodyOf(r, signal);
	} catch (err) {
		body = { payload: undefined, text: problemText(err) };
	}
	add(main,
	    h('h1', { class: 'wrap' }, 'Rejected ', r.kind || 'body'),
	    facts([
		['Received', time(r.received_at)], ['Source', r.source], ['Remote address', r.remote_addr],
		['Status', String(r.status)],
		['Answered', r.acknowledged ? ACKNOWLEDGED : String(r.status)], ['Kind', r.kind],
		['Accepted as', r.accepted_event ? eventLink(r.accepted_event) : null],
	    ]),
	    h('section', { 'aria-labelledby': 'problems-h' }, h('h2', { id: 'problems-h' }, 'Problems'),
		problemsList(r, body.payload)),
	    acceptButton(r, signal),
	    h('section', { 'aria-labelledby': 'body-h' }, h('h2', { id: 'body-h' }, 'Body'), bodyPre(body.text)),
	    kvSection('query-h', 'Query parameters', r.query),
	    h('section', { 'aria-labelledby': 'answer-h' }, h('h2', { id: 'answer-h' },
		r.acknowledged ? 'Answer sent (with status 200, as its "problem")' : 'Answer sent'),
		h('pre', { class: 'body' }, JSON.stringify(r.problem, null, 2))),
	    kvSection('headers-h', 'Kept headers', r.headers));
}

// A name/value table (headers, query parameters); nothing when there is none.
function kvSection(id, title, obj) {
	if (!obj || typeof obj !== 'object' || Object.keys(obj).length === 0)
		return null;
	return h('section', { 'aria-labelledby': id }, h('h2', { id }, title),
	    h('table', { class: 'kv' }, h('tbody', null, Object.keys(obj).sort().map((n) => h('tr', null,
		h('th', { scope: 'row', class: 'mono' }, n),
		h('td', { class: 'wrap mono' }, typeof obj[n] === 'string' ? obj[n] : JSON.stringify(obj[n])))))));
}
