// timeline.js - events on a time axis: the Session view's and each meeting's
// of a room (room.js).
//
// Each event sits in a lane for what it means (joined, transcript,
// recording, perception, shutdown, ...) at its own time (occurred_at, else
// received_at: then its marker is square, since that time is only when it
// reached us). Rows above the lanes can draw a span, a meeting or a
// participant's presence, carrying the markers of the events that make it,
// so a room reads as who was there when. Markers are links to the events, so
// the timeline works with the keyboard; eventList() says the same in text.
// Positions are set through the CSSOM (element.style), which the page's CSP
// allows, unlike style attributes.

import { eventLink, formatLocal, h, time } from './dom.js';

const LANES = [
	['created', 'Created'],
	['joined', 'Joined / started'],
	['people', 'Participants'],
	['transcript', 'Transcript'],
	['perception', 'Perception'],
	['recording', 'Recording'],
	['action', 'Actions, objectives'],
	['done', 'Completed'],
	['shutdown', 'Shutdown / ended'],
	['error', 'Errors'],
	['other', 'Other'],
];

const BY_KIND = {
	'tavus.conversation.system.replica_joined': 'joined',
	'tavus.conversation.system.shutdown': 'shutdown',
	'tavus.conversation.application.transcription_ready': 'transcript',
	'tavus.conversation.application.recording_ready': 'recording',
	'tavus.conversation.application.recording_copy_failed': 'error',
	'tavus.conversation.application.perception_analysis': 'perception',
	'tavus.conversation.application.perception_unavailable': 'perception',
	'tavus.conversation.application.post_call_action_executed': 'action',
	'tavus.objective.completed': 'action',
	'pailflow.session_complete': 'shutdown',
	'pailflow.bot_join_failed': 'error',
	'daily.meeting.started': 'joined',
	'daily.meeting.ended': 'shutdown',
};
// Families of kinds by name (Daily's room events), after BY_KIND.
const BY_PATTERN = [
	[/\.error$/, 'error'],
	[/^daily\.(waiting-)?participant\./, 'people'],
	[/^daily\.recording\./, 'recording'],
	[/^daily\.transcript\./, 'transcript'],
];
const BY_SUBTYPE = { created: 'created', started: 'joined', ended: 'shutdown', completed: 'done', error: 'error' };

export function lane(ev) {
	const pattern = BY_PATTERN.find(([re]) => re.test(ev.kind));
	return BY_KIND[ev.kind] || (pattern && pattern[1]) || BY_SUBTYPE[ev.subtype] || 'other';
}

export function when(ev) {
	return ev.occurred_at || ev.received_at;
}

// Milliseconds since the epoch of an ISO time, NaN when there is none.
export function ms(iso) {
	return iso ? Date.parse(iso) : NaN;
}

function ticks(t0, t1, n) {
	const out = [];
	for (let i = 0; i <= n; i++)
		out.push(t0 + ((t1 - t0) * i) / n);
	return out;
}

function row(label, cls, track, title) {
	return h('div', { class: `lane ${cls}` }, h('span', { class: 'lane-label', title: title || label }, label), track);
}

// events: session events in time order. spans: [{label, from, to, ids, cls}]
// with from/to in ms (to NaN: still open, drawn to the axis' end) and the
// ids of the events drawn on the span's row instead of in their lane.
export function timeline(events, { spans = [], label = 'Timeline' } = {}) {
	const times = events.map((e) => ms(when(e)));
	for (const s of spans)
		times.push(s.from, s.to);
	const known = times.filter((t) => !Number.isNaN(t));
	if (known.length === 0)
		return h('p', { class: 'muted' }, 'No events to place.');
	let t0 = Math.min(...known);
	let t1 = Math.max(...known);
	if (t1 - t0 < 1000) { // one instant: give the axis a second either side
		t0 -= 1000;
		t1 += 1000;
	}
	const pct = (t) => `${(((t - t0) / (t1 - t0)) * 100).toFixed(3)}%`;
	function mark(e) {
		const t = ms(when(e));
		const own = Boolean(e.occurred_at);
		const title = `${e.kind}${e.subtype ? ` (${e.subtype})` : ''} · ${formatLocal(when(e))} · ${when(e)} UTC${own ? '' : ' · received'}`;
		const a = h('a', {
			href: `/ui/events/${encodeURIComponent(e.id)}`, class: `mark lane-${lane(e)}${own ? '' : ' received'}`,
			title, 'aria-label': title, 'data-id': e.id,
		});
		a.style.left = pct(Number.isNaN(t) ? t0 : t);
		return a;
	}
	const wrap = h('div', { class: 'timeline', role: 'group', 'aria-label': label });
	const claimed = new Set();
	for (const s of spans) {
		const track = h('div', { class: 'track' });
		const from = Number.isNaN(s.from) ? t0 : s.from;
		const open = Number.isNaN(s.to);
		const bar = h('span', { class: `bar ${s.cls || ''}${open ? ' open' : ''}`, 'aria-hidden': 'true' });
		bar.style.left = pct(from);
		bar.style.width = pct(t0 + Math.max(0, (open ? t1 : s.to) - from));
		track.append(bar);
		for (const e of events.filter((x) => s.ids.includes(x.id))) {
			track.append(mark(e));
			claimed.add(e.id);
		}
		wrap.append(row(s.label, 'span-row', track, s.title));
	}
	const rest = events.filter((e) => !claimed.has(e.id));
	for (const [id, name] of LANES.filter(([l]) => rest.some((e) => lane(e) === l))) {
		const track = h('div', { class: 'track' });
		for (const e of rest.filter((x) => lane(x) === id))
			track.append(mark(e));
		wrap.append(row(name, `lane-row-${id}`, track));
	}
	const axis = h('div', { class: 'track axis', 'aria-hidden': 'true' });
	const span = t1 - t0;
	for (const t of ticks(t0, t1, 4)) {
		const iso = new Date(t).toISOString();
		const tick = h('span', { class: 'tick' }, span > 864e5 ? formatLocal(iso) : formatLocal(iso, true));
		tick.style.left = pct(t);
		axis.append(tick);
	}
	wrap.append(h('div', { class: 'lane' }, h('span', { class: 'lane-label' }), axis));
	return wrap;
}

export function eventList(events) {
	return h('ol', { class: 'session-events' }, events.map((e) => h('li', null,
	    time(when(e)), ' ', h('span', { class: `dot lane-${lane(e)}`, 'aria-hidden': 'true' }), ' ',
	    eventLink(e.id, e.kind), e.subtype ? h('span', { class: 'muted' }, ` ${e.subtype}`) : null,
	    !e.occurred_at ? h('span', { class: 'muted small' }, ' (received time)') : null)));
}
