// room.js - a Daily room's meetings, in the Session view of room:<name>.
//
// GET /v1/sessions/room:<name> tells the room's timeline apart into
// `meetings` (docs/api.md "Rooms"): each with its span, participants, the
// bots' and avatars' outcomes, recordings, transcripts and the ids of its
// events, whose details are the session's `events`. Newest meeting first: a
// room name is reused meeting after meeting, and the one people come to look
// at is the one that just ended (the Events and Sessions lists are newest
// first too). The events before any known start (meeting_id null) come last,
// which is also where they fall in time. Inside a meeting everything is in
// time order on the meeting's own axis, so a short meeting is not squeezed
// flat by the room's weeks of history.

import { badge, duration, eventLink, facts, h, sessionLink, time } from './dom.js';
import { eventList, ms, timeline, when } from './timeline.js';

// Participants drawn as presence rows on a meeting's axis; the table lists all.
const PRESENCE_MAX = 20;

// What each outcome's kind shows of its facts: [fact, label, format].
const OUTCOMES = {
	'pailflow.session_complete': {
		label: 'PailFlow bot',
		fields: [['exit_reason', 'Exit reason'], ['overall_score', 'Score'],
			['duration_seconds', 'Duration', duration], ['transcript_id', 'Transcript id'],
			['insights_error', 'Insights error']],
		transcript: true,
	},
	'pailflow.bot_join_failed': {
		label: 'PailFlow bot',
		fields: [['error_type', 'Error type'], ['error_message', 'Error'],
			['duration_seconds', 'Duration', duration], ['workflow_thread_id', 'Workflow thread']],
	},
	'agenthuman.session': {
		label: 'AgentHuman avatar',
		fields: [['name', 'Avatar'], ['status', 'Status'], ['duration', 'Duration', duration]],
		session: true,
	},
};
// Entry keys that are not facts of the provider's.
// An AgentHuman session_id is shown as the link to its own session.
const META = new Set(['kind', 'provider', 'state', 'events', 'participant_id', 'recording_id',
	'transcript_id', 'joined_at', 'left_at', 'waiting', 'session_id']);

function text(v) {
	return typeof v === 'string' ? v : JSON.stringify(v);
}

function shown(v, format) {
	if (v === null || v === undefined)
		return null;
	return format && typeof v === 'number' ? format(v) : text(v);
}

function stateBadge(state) {
	return state ? badge(String(state)) : null;
}

function meetingTitle(m) {
	return m.meeting_id === null ? 'Before any known start' : ['Meeting ', h('span', { class: 'mono wrap' }, m.meeting_id)];
}

// Links to an entry's events, each named by its event type.
function eventLinks(ids, byId) {
	const out = [];
	(ids || []).forEach((id, i) => {
		const e = byId.get(id);
		if (i)
			out.push(', ');
		out.push(eventLink(id, e ? e.event_type || e.kind : id));
	});
	return out.length ? h('span', { class: 'small wrap' }, out) : h('span', { class: 'muted' }, '—');
}

function personName(p) {
	return p.user_name || p.user_id || p.participant_id || '(unnamed)';
}

// Seconds the participant was in: Daily's own figure, else left - joined.
function presence(p) {
	if (typeof p.duration === 'number')
		return p.duration;
	const t = ms(p.left_at) - ms(p.joined_at);
	return Number.isNaN(t) ? null : t / 1000;
}

// One child in the cell: at 375 px a cell is a two-column grid, its label and this.
function cell(label, ...content) {
	return h('td', { 'data-label': label }, h('span', null, ...content));
}

function rowsTable(caption, cols, rows) {
	return h('table', { class: 'rows', 'aria-label': caption },
	    h('thead', null, h('tr', null, cols.map((c) => h('th', { scope: 'col' }, c)))),
	    h('tbody', null, rows));
}

function participantsTable(list, byId) {
	if (!list.length)
		return h('p', { class: 'muted' }, 'No participant reported.');
	return rowsTable('Participants', ['Participant', 'Joined', 'Left', 'Duration', 'Events'],
	    list.map((p) => h('tr', { 'data-id': p.participant_id || '' },
		cell('Participant', h('strong', { class: 'wrap' }, personName(p)),
		    p.participant_id && p.participant_id !== personName(p) ?
			h('span', { class: 'muted small mono wrap' }, ` ${p.participant_id}`) : null,
		    p.owner === true ? [' ', badge('owner', 'other')] : null,
		    p.waiting ? [' ', badge('waiting room', 'warn')] : null),
		cell('Joined', time(p.joined_at)),
		cell('Left', time(p.left_at)),
		cell('Duration', presence(p) === null ? h('span', { class: 'muted' }, '—') : h('span', { class: 'nowrap' }, duration(presence(p)))),
		cell('Events', eventLinks(p.events, byId)))));
}

function outcomeCard(o, byId) {
	const how = OUTCOMES[o.kind] || { label: o.kind, fields: [] };
	const named = new Set(how.fields.map(([f]) => f));
	const rows = how.fields.map(([f, label, format]) => [label, shown(o[f], format)]);
	for (const k of Object.keys(o).filter((x) => !META.has(x) && !named.has(x)))
		rows.push([k, shown(o[k])]);
	const last = (o.events || []).length ? o.events[o.events.length - 1] : null;
	if (how.transcript && last)
		rows.push(['Transcript', eventLink(last, 'in the event')]);
	const ev = last ? byId.get(last) : null;
	if (how.session && ev && ev.session)
		rows.push(['Session', sessionLink(ev.session.id)]);
	return h('li', { class: 'card outcome', 'data-kind': o.kind },
	    h('div', { class: 'card-head' }, h('strong', null, how.label), ' ', stateBadge(o.state),
		h('span', { class: 'muted small wrap' }, ` ${o.kind}`)),
	    facts(rows.filter(([, v]) => v !== null)),
	    h('p', { class: 'small' }, 'Events: ', eventLinks(o.events, byId)));
}

function outcomesList(list, byId) {
	if (!list.length)
		return h('p', { class: 'muted' }, 'No bot or avatar result.');
	return h('ul', { class: 'cards' }, list.map((o) => outcomeCard(o, byId)));
}

// A recording's or transcript's facts other than the ones in their own column.
function details(entry, skip) {
	const keys = Object.keys(entry).filter((k) => !META.has(k) && !skip.includes(k));
	if (!keys.length)
		return h('span', { class: 'muted' }, '—');
	return h('span', { class: 'small wrap' }, keys.map((k, i) => [i ? ' · ' : '', `${k}: ${text(entry[k])}`]));
}

function filesTables(recordings, transcripts, byId) {
	if (!recordings.length && !transcripts.length)
		return h('p', { class: 'muted' }, 'No recording or transcript.');
	const cols = ['State', 'Status', 'Duration', 'Details', 'Events'];
	const tr = (what, id, e) => h('tr', { 'data-id': id || '' },
	    cell(what, id ? h('span', { class: 'mono wrap' }, id) : h('span', { class: 'muted' }, '—')),
	    cell('State', stateBadge(e.state)),
	    cell('Status', e.status === undefined ? h('span', { class: 'muted' }, '—') : text(e.status)),
	    cell('Duration', typeof e.duration === 'number' ? h('span', { class: 'nowrap' }, duration(e.duration)) : h('span', { class: 'muted' }, '—')),
	    cell('Details', details(e, ['status', 'duration'])),
	    cell('Events', eventLinks(e.events, byId)));
	return [
		recordings.length ? rowsTable('Recordings', ['Recording', ...cols],
		    recordings.map((r) => tr('Recording', r.recording_id, r))) : null,
		transcripts.length ? rowsTable('Transcripts', ['Transcript', ...cols],
		    transcripts.map((t) => tr('Transcript', t.transcript_id, t))) : null,
	];
}

// The meeting's span and who was there when, as rows over the lanes.
function spans(m, events) {
	const out = [];
	if (m.meeting_id !== null && (m.started_at || m.ended_at)) {
		out.push({
			label: 'Meeting', cls: 'span-meeting', from: ms(m.started_at), to: ms(m.ended_at),
			ids: events.filter((e) => /^daily\.meeting\./.test(e.kind)).map((e) => e.id),
		});
	}
	for (const p of m.participants.slice(0, PRESENCE_MAX)) {
		const name = personName(p);
		out.push({
			label: name, title: `${name}${p.participant_id ? ` (${p.participant_id})` : ''}`,
			cls: p.waiting ? 'span-waiting' : 'span-person',
			from: ms(p.joined_at), to: p.left_at ? ms(p.left_at) : ms(m.ended_at), ids: p.events || [],
		});
	}
	return out;
}

function meetingSection(m, anchor, byId) {
	const events = m.events.map((id) => byId.get(id)).filter(Boolean);
	const times = events.map((e) => ms(when(e))).filter((t) => !Number.isNaN(t));
	const hid = `${anchor}-h`;
	const name = m.meeting_id === null ? 'events before any known start' : `meeting ${m.meeting_id}`;
	return h('section', {
		id: anchor, class: 'meeting', tabindex: '-1', 'aria-labelledby': hid,
		'data-meeting': m.meeting_id === null ? '' : m.meeting_id,
	},
	    h('h2', { id: hid, class: 'wrap' }, meetingTitle(m), ' ',
		m.meeting_id === null ? null : badge(m.ended_at ? 'ended' : 'started')),
	    m.meeting_id === null ?
		h('p', { class: 'muted' }, 'These events came before any meeting this room is known to have started, so no meeting claims them.') : null,
	    facts([
		m.started_at || m.meeting_id !== null ? ['Started', time(m.started_at)] :
		    ['First event', times.length ? time(new Date(Math.min(...times)).toISOString()) : null],
		m.ended_at || m.meeting_id !== null ? ['Ended', time(m.ended_at)] :
		    ['Last event', times.length ? time(new Date(Math.max(...times)).toISOString()) : null],
		['Duration', m.duration === null ? null : duration(m.duration)],
		['Events', String(m.events.length)],
	    ]),
	    timeline(events, { spans: spans(m, events), label: `Timeline of ${name}` }),
	    h('h3', null, 'Participants'), participantsTable(m.participants, byId),
	    h('h3', null, 'Bot and avatar'), outcomesList(m.outcomes, byId),
	    h('h3', null, 'Recordings and transcripts'), filesTables(m.recordings, m.transcripts, byId),
	    h('details', { class: 'meeting-events' }, h('summary', null, `Its ${m.events.length} event${m.events.length === 1 ? '' : 's'} in time order`),
		eventList(events)));
}

function outcomeSummary(list) {
	if (!list.length)
		return h('span', { class: 'muted' }, '—');
	return list.map((o, i) => [i ? h('br') : null, `${(OUTCOMES[o.kind] || { label: o.kind }).label} `, stateBadge(o.state)]);
}

function overview(list) {
	return rowsTable('Meetings', ['Meeting', 'Started', 'Ended', 'Duration', 'People', 'Bot and avatar', 'Recordings'],
	    list.map(({ m, anchor }) => h('tr', { 'data-meeting': m.meeting_id === null ? '' : m.meeting_id },
		cell('Meeting', h('a', { href: `#${anchor}`, class: 'wrap' }, m.meeting_id === null ? 'Before any known start' : m.meeting_id)),
		cell('Started', time(m.started_at)),
		cell('Ended', time(m.ended_at)),
		cell('Duration', m.duration === null ? h('span', { class: 'muted' }, '—') : h('span', { class: 'nowrap' }, duration(m.duration))),
		// A waiting-room entry is no one in the meeting: a knocker let in is also a participant.
		cell('People', String(m.participants.filter((p) => !p.waiting).length)),
		cell('Bot and avatar', outcomeSummary(m.outcomes)),
		cell('Recordings', m.recordings.length ? m.recordings.map((r, i) => [i ? ' ' : '', stateBadge(r.state)]) :
		    h('span', { class: 'muted' }, '—')))));
}

// The meetings part of a room's Session view: an overview, then one section each.
export function meetings(s) {
	const byId = new Map(s.events.map((e) => [e.id, e]));
	const known = s.meetings.filter((m) => m.meeting_id !== null).reverse();
	const list = known.concat(s.meetings.filter((m) => m.meeting_id === null))
	    .map((m, i) => ({ m, anchor: `meeting-${i + 1}` }));
	if (!list.length)
		return h('p', { class: 'muted' }, 'No events in this room yet.');
	return [
		h('section', { 'aria-labelledby': 'meetings-h' },
		    h('h2', { id: 'meetings-h' }, `Meetings (${known.length})`),
		    h('p', { class: 'muted small' }, 'Newest first. A room name is reused: each meeting is Daily\u2019s meeting id, and an event that names none belongs to the meeting that had started most recently at its time.'),
		    overview(list)),
		list.map(({ m, anchor }) => meetingSection(m, anchor, byId)),
	];
}
