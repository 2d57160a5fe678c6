// api.js - the inspector's only way to the daemon: the public /v1 API.
//
// The token the user typed stays in sessionStorage (gone with the tab) and
// goes out as `Authorization: Bearer` on every call, the live tail's too:
// fetch() can send that header, EventSource cannot. No cookies, so another
// site cannot make the browser act here (no CSRF). Calls that change state
// send a JSON body with Content-Type: application/json.

const TOKEN_KEY = 'hookrelay.token';
// One SSE frame kept whole. The daemon's largest is a page (4 MiB) and two
// max_body (8 MiB by default) of escaped strings (api_stream.c): a sender's
// long event_type or session key reaches that. A longer frame (a raised
// max_body) is skipped, not refused: see stream().
const STREAM_FRAME_MAX = 32 << 20;

export function token() {
	try {
		return sessionStorage.getItem(TOKEN_KEY);
	} catch (e) {
		return null;
	}
}

export function setToken(t) {
	if (t)
		sessionStorage.setItem(TOKEN_KEY, t);
	else
		sessionStorage.removeItem(TOKEN_KEY);
}

export class ApiError extends Error {
	constructor(status, problem) {
		super(problem && (problem.detail || problem.title) || `HTTP ${status}`);
		this.status = status;
		this.problem = problem;
	}
}

function headers(extra) {
	const hdrs = Object.assign({}, extra);
	const t = token();
	if (t)
		hdrs.Authorization = `Bearer ${t}`;
	return hdrs;
}

async function failure(r) {
	let problem = null;
	try {
		problem = await r.json();
	} catch (e) {
		problem = null;
	}
	if (r.status === 401)
		window.dispatchEvent(new CustomEvent('hr:unauthorized'));
	return new ApiError(r.status, problem);
}

// Query string from an object, leaving out empty values.
export function query(params) {
	const q = new URLSearchParams();
	for (const [k, v] of Object.entries(params || {}))
		if (v !== null && v !== undefined && v !== '')
			q.set(k, v);
	const s = q.toString();
	return s ? `?${s}` : '';
}

// One path segment (an id from the API or the URL).
export function seg(s) {
	return encodeURIComponent(s);
}

export async function get(path, { signal } = {}) {
	const r = await fetch(path, {
		headers: headers({ Accept: 'application/json' }), signal, cache: 'no-store',
	});
	if (!r.ok)
		throw await failure(r);
	return r.json();
}

// The stored body, byte for byte.
export async function getBytes(path, { signal } = {}) {
	const r = await fetch(path, { headers: headers(), signal, cache: 'no-store' });
	if (!r.ok)
		throw await failure(r);
	return new Uint8Array(await r.arrayBuffer());
}

export async function post(path, body, { signal } = {}) {
	const r = await fetch(path, {
		method: 'POST',
		headers: headers({ Accept: 'application/json', 'Content-Type': 'application/json' }),
		body: JSON.stringify(body || {}),
		signal,
		cache: 'no-store',
	});
	if (!r.ok)
		throw await failure(r);
	return r.json();
}

// GET /v1/stream as an async iterator of {id, event, data}, starting with
// {event: 'open'} once the server accepted the stream. Ends when the server
// ends the stream or `signal` aborts.
//
// A frame past STREAM_FRAME_MAX comes as {id, event: 'oversized', data: its
// event}, its text dropped as it arrives: ending the stream there, the reader
// reconnected from the id before it and met it again, for ever (a review).
export async function* stream(path, { signal, lastEventId } = {}) {
	const extra = { Accept: 'text/event-stream' };
	if (lastEventId)
		extra['Last-Event-ID'] = lastEventId;
	const r = await fetch(path, { headers: headers(extra), signal, cache: 'no-store' });
	if (!r.ok)
		throw await failure(r);
	const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
	let buf = '';
	let from = 0;        // buf before here holds no frame's end: searched once only
	let skipping = null; // the head of the oversized frame being dropped
	yield { id: null, event: 'open', data: '' };
	try {
		for (;;) {
			const { value, done } = await reader.read();
			if (done)
				return;
			buf += value.replace(/\r\n?/g, '\n');
			let end;
			while ((end = buf.indexOf('\n\n', from)) >= 0) {
				const frame = skipping || parseFrame(buf.slice(0, end));
				skipping = null;
				buf = buf.slice(end + 2);
				from = 0;
				if (frame)
					yield frame;
			}
			if (!skipping && buf.length > STREAM_FRAME_MAX)
				skipping = oversized(buf);
			// A last "\n" may end the frame with the next chunk's first.
			if (skipping)
				buf = buf.slice(-1);
			from = Math.max(0, buf.length - 1);
		}
	} finally {
		reader.cancel().catch(() => {});
	}
}

// The head of a frame too long to keep: its id, so the reader goes on past it,
// and its event. The daemon writes both before the data (api.md).
function oversized(head) {
	const f = { id: null, event: 'oversized', data: '' };
	for (const line of head.slice(0, 4096).split('\n').slice(0, -1)) {
		if (line.startsWith('data'))
			break;
		const m = /^(id|event): ?(.*)$/.exec(line);
		if (m && m[1] === 'id')
			f.id = m[2];
		else if (m)
			f.data = m[2];
	}
	return f;
}

function parseFrame(text) {
	const f = { id: null, event: 'message', data: [] };
	for (const line of text.split('\n')) {
		if (line === '' || line.startsWith(':'))
			continue;
		const colon = line.indexOf(':');
		const field = colon < 0 ? line : line.slice(0, colon);
		let value = colon < 0 ? '' : line.slice(colon + 1);
		if (value.startsWith(' '))
			value = value.slice(1);
		if (field === 'id')
			f.id = value;
		else if (field === 'event')
			f.event = value;
		else if (field === 'data')
			f.data.push(value);
	}
	// A frame without data dispatches nothing, but its id still counts (as
	// EventSource keeps it): the opening frame gives the stream's position.
	if (f.data.length === 0)
		return f.id === null ? null : { id: f.id, event: 'position', data: '' };
	return { id: f.id, event: f.event, data: f.data.join('\n') };
}
