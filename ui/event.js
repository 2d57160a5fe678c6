// event.js - the Event view: typed fields, body, headers, deliveries, replay.
//
// Reads GET /v1/events/{id}, /raw and /deliveries. Every value from the
// webhook is shown as text (dom.js), the transcript too. "Copy as curl" is
// the command `hookctl events show --curl` prints: the exact stored bytes as
// a printf format, piped to curl.

import { get, getBytes, post, query, seg } from './api.js';
import {
	add, badge, clear, copy, copyButton, errorBox, facts, h, problemText, say, sessionLink, time,
	visible,
} from './dom.js';

const TYPED_ROWS_MAX = 1000; // a huge body lists this many fields, then says how many more
// A transcript shows this many lines, then says how many more the body holds: a
// 4.5 MB one of 14,000 lines made 46k nodes and took 2.9 s to be usable, with the
// deliveries and replay a million pixels below (a review).
const TRANSCRIPT_LINES_MAX = 500;

function isTime(v) {
	return v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 2 &&
	    'raw' in v && 'utc' in v;
}

function escapePointer(k) {
	return String(k).replace(/~/g, '~0').replace(/\//g, '~1');
}

// [pointer, value] for every leaf of the typed view (RFC 6901 pointers).
function flatten(v, path, out) {
	if (out.length > TYPED_ROWS_MAX)
		return out;
	if (isTime(v) || v === null || typeof v !== 'object') {
		out.push([path || '/', v]);
	} else if (Array.isArray(v)) {
		if (v.length === 0)
			out.push([path, []]);
		v.forEach((x, i) => flatten(x, `${path}/${i}`, out));
	} else {
		const keys = Object.keys(v);
		if (keys.length === 0)
			out.push([path, {}]);
		for (const k of keys)
			flatten(v[k], `${path}/${escapePointer(k)}`, out);
	}
	return out;
}

function valueNode(v) {
	if (isTime(v))
		return v.utc ? [time(v.utc), v.raw !== v.utc ? h('span', { class: 'muted small' }, ` raw: ${v.raw}`) : null] :
		    h('span', null, v.raw, h('span', { class: 'muted small' }, ' (not a known time format)'));
	if (v === null)
		return h('span', { class: 'muted' }, 'null');
	if (typeof v === 'string')
		return h('span', { class: 'str' }, v);
	return h('span', { class: 'num' }, JSON.stringify(v));
}

function typedSection(typed) {
	if (typed === null || typed === undefined)
		return h('p', { class: 'muted' }, 'No typed view: an unknown kind, a body accepted after it was refused, or a pruned payload.');
	const rows = flatten(typed, '', []);
	const table = h('table', { class: 'kv' },
	    h('tbody', null, rows.slice(0, TYPED_ROWS_MAX).map(([p, v]) => h('tr', null,
		h('th', { scope: 'row', class: 'mono' }, p), h('td', { class: 'wrap' }, valueNode(v))))));
	return [table, rows.length > TYPED_ROWS_MAX ?
	    h('p', { class: 'muted' }, `Only the first ${TYPED_ROWS_MAX} fields are listed; the body has them all.`) : null];
}

// Tavus transcription_ready: the conversation as lines, each one text.
function transcriptSection(typed) {
	const items = typed && typed.properties && typed.properties.transcript;
	if (!Array.isArray(items))
		return null;
	const more = items.length - TRANSCRIPT_LINES_MAX;
	return h('section', { 'aria-labelledby': 'transcript-h' },
	    h('h2', { id: 'transcript-h' }, 'Transcript'),
	    more > 0 ? h('p', { class: 'muted' }, `The first ${TRANSCRIPT_LINES_MAX} of ${items.length} lines; the body below has them all.`) : null,
	    h('ol', { class: 'transcript' }, items.slice(0, TRANSCRIPT_LINES_MAX).map((it) => h('li', { class: `role-${String(it.role).replace(/[^a-z]/g, '')}` },
		h('span', { class: 'role' }, String(it.role)),
		typeof it.seconds_from_start === 'number' ? h('span', { class: 'muted small' }, ` +${it.seconds_from_start}s`) : null,
		h('div', { class: 'content' }, it.content === null || it.content === undefined ?
		    h('span', { class: 'muted' }, it.tool_calls ? '(tool call)' : '(no content)') : String(it.content))))));
}

// The printf format hookctl prints: printable ASCII as is, \ and % doubled,
// ' as '\'', newline/tab/CR escaped, every other byte in octal.
export function printfQuoted(bytes) {
	let out = "printf -- '";
	for (const b of bytes) {
		if (b === 0x27)
			out += "'\\''";
		else if (b === 0x5c || b === 0x25)
			out += String.fromCharCode(b, b);
		else if (b >= 0x20 && b < 0x7f)
			out += String.fromCharCode(b);
		else if (b === 0x0a)
			out += '\\n';
		else if (b === 0x09)
			out += '\\t';
		else if (b === 0x0d)
			out += '\\r';
		else
			out += `\\${b.toString(8).padStart(3, '0')}`;
	}
	return `${out}'`;
}

function shellWord(s) {
	return `'${String(s).replace(/'/g, "'\\''")}'`;
}

// As curl_easy_escape() (hookctl): every byte but A-Z a-z 0-9 - . _ ~ escaped.
function escapeLikeCurl(s) {
	return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

// The callback URL's parameters go back on it: they are part of what was sent
// and of the byte dedup key (a review: the command re-posted without them).
export function curlCommand(bytes, source, query) {
	const params = [];
	for (const [name, v] of Object.entries(query || {}))
		for (const value of Array.isArray(v) ? v : [v])
			if (typeof value === 'string')
				params.push(`${escapeLikeCurl(name)}=${escapeLikeCurl(value)}`);
	const url = `${location.origin}/hooks/${escapeLikeCurl(source)}${params.length ? '?' + params.join('&') : ''}`;
	return `${printfQuoted(bytes)} |\n  curl -sS -X POST -H 'Content-Type: application/json' --data-binary @- ${shellWord(url)}`;
}

// The body as it came (Raw) first: Pretty is the browser's parse of it, which
// rounds integers past 2^53 and puts integer-like keys first.
function bodySection(ev, rawBytes) {
	const pretty = ev.payload === null ? '' : JSON.stringify(ev.payload, null, 2);
	const raw = rawBytes ? new TextDecoder('utf-8', { fatal: false }).decode(rawBytes) : '';
	let mode = rawBytes ? 'raw' : 'pretty';
	const pre = h('pre', { class: 'body', tabindex: '0', 'aria-label': 'Body' }, mode === 'raw' ? raw : pretty);
	const tabs = h('div', { class: 'tabs', role: 'group', 'aria-label': 'Body format' });
	function show(m) {
		mode = m;
		pre.textContent = visible(m === 'pretty' ? pretty : raw);
		for (const b of tabs.children)
			b.setAttribute('aria-pressed', String(b.dataset.mode === m));
	}
	for (const [m, label] of [['raw', 'Raw'], ['pretty', 'Pretty']])
		tabs.append(h('button', { type: 'button', class: 'small', 'data-mode': m, 'aria-pressed': String(m === mode), on: { click: () => show(m) } }, label));
	const copyBody = copyButton('Copy body', () => (mode === 'pretty' ? pretty : raw));
	const curl = h('pre', { class: 'curl', hidden: true, tabindex: '0', 'aria-label': 'curl command' });
	const copyCurl = h('button', {
		type: 'button', class: 'small', on: {
			click: async () => {
				const cmd = curlCommand(rawBytes, ev.source, ev.query);
				curl.textContent = cmd;
				curl.hidden = false;
				await copy(cmd);
			},
		},
	}, 'Copy as curl');
	if (!rawBytes) {
		copyCurl.disabled = true;
		copyCurl.title = 'The payload was pruned';
	}
	return h('section', { 'aria-labelledby': 'body-h' },
	    h('h2', { id: 'body-h' }, 'Body'),
	    h('div', { class: 'toolbar' }, tabs, copyBody, copyCurl),
	    ev.pruned_at ? h('p', { class: 'muted' }, 'Pruned by retention at ', time(ev.pruned_at)) : pre,
	    curl);
}

function headersSection(headers) {
	const names = Object.keys(headers || {}).sort();
	return h('section', { 'aria-labelledby': 'headers-h' },
	    h('h2', { id: 'headers-h' }, 'Kept headers'),
	    names.length ? h('table', { class: 'kv' }, h('tbody', null, names.map((n) => h('tr', null,
		h('th', { scope: 'row', class: 'mono' }, n), h('td', { class: 'wrap mono' }, String(headers[n])))))) :
		h('p', { class: 'muted' }, 'None.'));
}

// The callback URL's query parameters, where the API keeps them (`query`).
function querySection(q) {
	if (q === undefined || q === null || (typeof q === 'object' && Object.keys(q).length === 0))
		return null;
	const body = typeof q === 'object' ?
	    h('table', { class: 'kv' }, h('tbody', null, Object.keys(q).sort().map((n) => h('tr', null,
		h('th', { scope: 'row', class: 'mono' }, n),
		h('td', { class: 'wrap mono' }, typeof q[n] === 'string' ? q[n] : JSON.stringify(q[n])))))) :
	    h('p', { class: 'mono wrap' }, String(q));
	return h('section', { 'aria-labelledby': 'query-h' }, h('h2', { id: 'query-h' }, 'Query parameters'), body);
}

// An event accepted from a rejection keeps why it was refused (`problems`).
function refusedSection(problems) {
	if (!Array.isArray(problems) || problems.length === 0)
		return null;
	return h('section', { 'aria-labelledby': 'refused-h' },
	    h('h2', { id: 'refused-h' }, 'Accepted after a refusal'),
	    h('ul', { class: 'problems' }, problems.map((p) => h('li', null,
		h('code', { class: 'pointer' }, p.pointer || '(body)'), ' ', p.detail))));
}

function attemptsTable(log) {
	if (!log || log.length === 0)
		return h('p', { class: 'muted small' }, 'No attempt yet.');
	return h('table', { class: 'rows attempts', 'aria-label': 'Attempts' },
	    h('thead', null, h('tr', null, ['#', 'Started', 'Latency', 'Status', 'Error', 'Response'].map((c) => h('th', { scope: 'col' }, c)))),
	    h('tbody', null, log.map((a) => h('tr', null,
		h('td', { 'data-label': '#' }, String(a.number)),
		h('td', { 'data-label': 'Started' }, time(a.started_at)),
		h('td', { 'data-label': 'Latency' }, a.duration_ms === null ? '—' : `${Math.round(a.duration_ms * 10) / 10} ms`),
		h('td', { 'data-label': 'Status' }, a.http_status === null ? h('span', { class: 'muted' }, '—') : badge(String(a.http_status), a.http_status < 300 ? 'ok' : 'bad')),
		h('td', { 'data-label': 'Error', class: 'wrap' }, a.error || h('span', { class: 'muted' }, '—')),
		h('td', { 'data-label': 'Response', class: 'wrap' }, a.response === null || a.response === undefined ? h('span', { class: 'muted' }, '—') :
		    h('details', null, h('summary', null, `${String(a.response).length} bytes`), h('pre', { class: 'body' }, String(a.response))))))));
}

function deliveriesList(doc) {
	if (!doc.deliveries.length)
		return h('p', { class: 'muted' }, 'No deliveries: no destination matched this event.');
	return h('ul', { class: 'deliveries' }, doc.deliveries.map((d) => h('li', { class: 'card' },
	    h('div', { class: 'card-head' },
		h('strong', null, d.destination), ' ', badge(d.status),
		h('span', { class: 'muted small' }, ` ${d.attempts} attempt${d.attempts === 1 ? '' : 's'} · `, d.id)),
	    facts([
		['Created', time(d.created_at)], ['Updated', time(d.updated_at)],
		['Next attempt', d.next_attempt_at ? time(d.next_attempt_at) : null],
		['Last status', d.last_status === null ? null : String(d.last_status)],
		['Last error', d.last_error],
	    ]),
	    attemptsTable(d.attempts_log))));
}

// The log comes in pages of at most 4 MiB (an event replayed many times to a
// destination that answers at length): the next page on request.
function deliveriesPages(base, doc, signal) {
	const box = h('div', null, deliveriesList(doc));
	let cursor = doc.next_cursor;
	if (!cursor)
		return box;
	const more = h('button', { type: 'button' }, 'More deliveries');
	more.addEventListener('click', async () => {
		more.disabled = true;
		try {
			const d = await get(`${base}/deliveries${query({ cursor })}`, { signal });
			more.before(deliveriesList(d));
			cursor = d.next_cursor;
			if (cursor)
				more.disabled = false;
			else
				more.remove();
		} catch (err) {
			if (!signal.aborted)
				more.replaceWith(errorBox(err));
		}
	});
	box.append(more);
	return box;
}

function replayForm(ev, destinations, refresh, signal) {
	const sel = h('select', { name: 'destination', 'aria-label': 'Replay to' },
	    h('option', { value: '' }, 'every matching destination'),
	    destinations.map((d) => h('option', { value: d.name }, d.name)));
	const out = h('span', { class: 'small', role: 'status' });
	const form = h('form', { class: 'inline' },
	    h('label', null, 'Replay to ', sel), h('button', { type: 'submit' }, 'Replay'), out);
	form.addEventListener('submit', async (e) => {
		e.preventDefault();
		const btn = form.querySelector('button');
		btn.disabled = true;
		out.textContent = '';
		try {
			const r = await post(`/v1/events/${seg(ev.id)}/replay${query({ destination: sel.value })}`, {}, { signal });
			out.textContent = `Queued ${r.deliveries} deliver${r.deliveries === 1 ? 'y' : 'ies'}.`;
			say(out.textContent);
			refresh();
		} catch (err) {
			out.textContent = problemText(err);
		}
		btn.disabled = false;
	});
	return form;
}

export async function render(ctx) {
	const { main, params, signal } = ctx;
	const id = params[0];
	document.title = `${visible(id)} · hookrelay`; // the id is the URL's: any text
	const base = `/v1/events/${seg(id)}`;
	let ev, dels, dests, raw;
	try {
		[ev, dels, dests, raw] = await Promise.all([
			get(base, { signal }),
			get(`${base}/deliveries`, { signal }),
			get('/v1/destinations', { signal }).catch(() => ({ destinations: [] })),
			getBytes(`${base}/raw`, { signal }).catch(() => null),
		]);
	} catch (err) {
		if (!signal.aborted)
			main.append(h('h1', null, 'Event'), errorBox(err));
		return;
	}
	const delSection = h('div');
	async function refresh() {
		try {
			const d = await get(`${base}/deliveries`, { signal });
			clear(delSection).append(deliveriesPages(base, d, signal));
		} catch (err) {
			if (!signal.aborted)
				delSection.append(errorBox(err));
		}
	}
	delSection.append(deliveriesPages(base, dels, signal));
	add(main,
	    h('p', { class: 'crumbs' }, h('a', { href: '/ui/events' }, 'Events'), ' / ', h('span', { class: 'mono' }, ev.id)),
	    h('h1', { class: 'wrap' }, ev.kind),
	    h('div', { class: 'toolbar' }, h('span', { class: 'mono small' }, ev.id), copyButton('Copy id', ev.id)),
	    facts([
		['Received', time(ev.received_at)],
		['Occurred', ev.occurred_at ? time(ev.occurred_at) : ev.occurred_at_raw],
		['Source', ev.source], ['Provider', ev.provider], ['Event type', ev.event_type],
		['Subtype', ev.subtype],
		['Session', ev.session ? sessionLink(ev.session.id) : null],
		['Remote address', ev.remote_addr],
	    ]),
	    refusedSection(ev.problems),
	    transcriptSection(ev.typed),
	    h('section', { 'aria-labelledby': 'typed-h' }, h('h2', { id: 'typed-h' }, 'Typed fields'), typedSection(ev.typed)),
	    bodySection(ev, raw),
	    headersSection(ev.headers),
	    querySection(ev.query),
	    h('section', { 'aria-labelledby': 'deliveries-h' },
		h('h2', { id: 'deliveries-h' }, 'Deliveries'),
		replayForm(ev, dests.destinations, refresh, signal),
		delSection));
}
