// session.js - the Session view: one conversation, room or AgentHuman
// session on a time axis (timeline.js).
//
// GET /v1/sessions/{id} gives the session's attributes and its events in time
// order. A Daily room's session (room:<name>) also has its meetings, and is
// shown meeting by meeting (room.js) rather than on one axis: a room name is
// reused, and one axis over weeks of meetings would squeeze each to a dot.

import { get, seg } from './api.js';
import { badge, duration, errorBox, facts, h, time, visible } from './dom.js';
import { meetings } from './room.js';
import { eventList, ms, timeline, when } from './timeline.js';

function attributes(s, span) {
	if (Array.isArray(s.meetings)) {
		// A room's outcomes, durations and reasons are each meeting's, below.
		return facts([
			['Provider', s.provider], ['Status', s.status],
			['First seen', time(s.first_seen)], ['Last seen', time(s.last_seen)],
			['Events', String(s.event_count)],
			['Meetings', String(s.meetings.filter((m) => m.meeting_id !== null).length)],
		]);
	}
	return facts([
		['Provider', s.provider], ['Status', s.status],
		['First seen', time(s.first_seen)], ['Last seen', time(s.last_seen)],
		['Duration', s.duration === null ? null : duration(s.duration)],
		['Timeline spans', span === null ? null : duration(span)],
		['Events', String(s.event_count)],
		['Overall score', s.overall_score === null ? null : String(s.overall_score)],
		['Shutdown reason', s.shutdown_reason], ['Exit reason', s.exit_reason],
		['Error type', s.error_type],
	]);
}

export async function render(ctx) {
	const { main, params, signal } = ctx;
	const id = params[0];
	document.title = `${visible(id)} · hookrelay`; // the id is the URL's: any text
	let s;
	try {
		s = await get(`/v1/sessions/${seg(id)}`, { signal });
	} catch (err) {
		if (!signal.aborted)
			main.append(h('h1', null, 'Session'), errorBox(err));
		return;
	}
	const times = s.events.map((e) => ms(when(e))).filter((t) => !Number.isNaN(t));
	const span = times.length ? (Math.max(...times) - Math.min(...times)) / 1000 : null;
	const capped = s.events_truncated ?
	    h('p', { class: 'muted' }, `Showing the newest ${s.events.length} events` +
		(s.event_count > s.events.length ? ` of ${s.event_count}.` : '.')) : null;
	main.append(
	    h('p', { class: 'crumbs' }, h('a', { href: '/ui/sessions' }, 'Sessions'), ' / ', h('span', { class: 'mono' }, s.id)),
	    h('h1', { class: 'wrap' }, `${s.scope} ${s.key} `, s.status ? badge(s.status) : null),
	    attributes(s, span),
	    Array.isArray(s.meetings) ? h('div', { class: 'room' }, capped, meetings(s)) :
		h('section', { 'aria-labelledby': 'timeline-h' },
		    h('h2', { id: 'timeline-h' }, 'Timeline'),
		    timeline(s.events),
		    capped,
		    eventList(s.events)),
	    h('p', null, s.scope === 'room' ?
		h('a', { href: `/ui/events?room=${encodeURIComponent(s.key)}` }, 'All events of this room, newest first') :
		h('a', { href: `/ui/events?session=${encodeURIComponent(s.id)}` }, 'All events of this session, newest first')));
}
