// session.js - the Session view: one conversation, room or AgentHuman
// session on a time axis.
//
// GET /v1/sessions/{id} gives the session's attributes and its events in time
// order. Each event sits in a lane for what it means (joined, transcript,
// recording, perception, shutdown, ...) at its own time (occurred_at, else
// received_at). Markers are links to the events, so the timeline works with
// the keyboard; the list under it says the same in text. Positions are set
// through the CSSOM (element.style), which the page's CSP allows, unlike
// style attributes.

import { get, seg } from './api.js';
import { badge, duration, errorBox, eventLink, facts, formatLocal, h, time } from './dom.js';

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

function when(ev) {
	return ev.occurred_at || ev.received_at;
}

function ticks(t0, t1, n) {
	const out = [];
	for (let i = 0; i <= n; i++)
		out.push(t0 + ((t1 - t0) * i) / n);
	return out;
}

function timeline(events) {
	const times = events.map((e) => Date.parse(when(e))).filter((t) => !Number.isNaN(t));
	if (times.length === 0)
		return h('p', { class: 'muted' }, 'No events to place.');
	let t0 = Math.min(...times);
	let t1 = Math.max(...times);
	if (t1 - t0 < 1000) { // one instant: give the axis a second either side
		t0 -= 1000;
		t1 += 1000;
	}
	const pct = (t) => `${(((t - t0) / (t1 - t0)) * 100).toFixed(3)}%`;
	const used = LANES.filter(([id]) => events.some((e) => lane(e) === id));
	const wrap = h('div', { class: 'timeline', role: 'group', 'aria-label': 'Timeline' });
	for (const [id, label] of used) {
		const track = h('div', { class: 'track' });
		for (const e of events.filter((x) => lane(x) === id)) {
			const t = Date.parse(when(e));
			const title = `${e.kind}${e.subtype ? ` (${e.subtype})` : ''} · ${formatLocal(when(e))} · ${when(e)} UTC`;
			const mark = h('a', {
				href: `/ui/events/${encodeURIComponent(e.id)}`, class: `mark lane-${id}`,
				title, 'aria-label': title, 'data-id': e.id,
			});
			mark.style.left = pct(Number.isNaN(t) ? t0 : t);
			track.append(mark);
		}
		wrap.append(h('div', { class: `lane lane-row-${id}` }, h('span', { class: 'lane-label' }, label), track));
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

function eventList(events) {
	return h('ol', { class: 'session-events' }, events.map((e) => h('li', null,
	    time(when(e)), ' ', h('span', { class: `dot lane-${lane(e)}`, 'aria-hidden': 'true' }), ' ',
	    eventLink(e.id, e.kind), e.subtype ? h('span', { class: 'muted' }, ` ${e.subtype}`) : null,
	    !e.occurred_at ? h('span', { class: 'muted small' }, ' (received time)') : null)));
}

export async function render(ctx) {
	const { main, params, signal } = ctx;
	const id = params[0];
	document.title = `${id} · hookrelay`;
	let s;
	try {
		s = await get(`/v1/sessions/${seg(id)}`, { signal });
	} catch (err) {
		if (!signal.aborted)
			main.append(h('h1', null, 'Session'), errorBox(err));
		return;
	}
	const times = s.events.map((e) => Date.parse(when(e))).filter((t) => !Number.isNaN(t));
	const span = times.length ? (Math.max(...times) - Math.min(...times)) / 1000 : null;
	main.append(
	    h('p', { class: 'crumbs' }, h('a', { href: '/ui/sessions' }, 'Sessions'), ' / ', h('span', { class: 'mono' }, s.id)),
	    h('h1', { class: 'wrap' }, `${s.scope} ${s.key} `, s.status ? badge(s.status) : null),
	    facts([
		['Provider', s.provider], ['Status', s.status],
		['First seen', time(s.first_seen)], ['Last seen', time(s.last_seen)],
		['Duration', s.duration === null ? null : duration(s.duration)],
		['Timeline spans', span === null ? null : duration(span)],
		['Events', String(s.event_count)],
		['Overall score', s.overall_score === null ? null : String(s.overall_score)],
		['Shutdown reason', s.shutdown_reason], ['Exit reason', s.exit_reason],
		['Error type', s.error_type],
	    ]),
	    h('section', { 'aria-labelledby': 'timeline-h' },
		h('h2', { id: 'timeline-h' }, 'Timeline'),
		timeline(s.events),
		s.event_count > s.events.length ?
		    h('p', { class: 'muted' }, `Showing the first ${s.events.length} of ${s.event_count} events.`) : null,
		eventList(s.events)),
	    h('p', null, h('a', { href: `/ui/events?session=${encodeURIComponent(s.id)}` }, 'All events of this session, newest first')));
}
