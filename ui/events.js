// events.js - the Events view: newest first, filters, live tail, paging.
//
// The filters live in the page's URL (/ui/events?kind=...), so a filtered
// list is a link too. The first page comes from GET /v1/events; the live tail
// reads GET /v1/stream with the same filters and puts new events on top. It
// opens with a backlog of one page and skips what the list already shows,
// so an event stored between the two requests is not lost, and resumes from
// the last position the stream gave (its opening frame's, before any event).
// Older pages follow next_cursor.

import { get, query, stream } from './api.js';
import {
	clear, dotted, errorBox, eventLink, focusAfterMore, h, olderButton, say, sessionLink, time,
} from './dom.js';

const PAGE = 50;
const ROWS_MAX = 2000;   // the table stops growing here (the list is bounded, like the API)
const QUEUED_MAX = 500;  // events held while paused
const RETRY_MS = 3000;   // the stream's own retry: field

// Every kind name the API accepts (src/model/kinds.c; tests/unit/test_ui.c keeps them in step).
export const KINDS = [
	'unknown',
	'tavus.unknown',
	'tavus.video',
	'tavus.replica_training',
	'tavus.conversation.system.replica_joined',
	'tavus.conversation.system.shutdown',
	'tavus.conversation.application.transcription_ready',
	'tavus.conversation.application.recording_ready',
	'tavus.conversation.application.recording_copy_failed',
	'tavus.conversation.application.perception_analysis',
	'tavus.conversation.application.perception_unavailable',
	'tavus.conversation.application.post_call_action_executed',
	'tavus.objective.completed',
	'pailflow.session_complete',
	'pailflow.bot_join_failed',
	'agenthuman.session',
	'pailflow.unknown',
	'agenthuman.unknown',
	'daily.unknown',
	'daily.meeting.started',
	'daily.meeting.ended',
	'daily.participant.joined',
	'daily.participant.left',
	'daily.waiting-participant.joined',
	'daily.waiting-participant.left',
	'daily.recording.started',
	'daily.recording.ready-to-download',
	'daily.recording.error',
	'daily.transcript.started',
	'daily.transcript.ready-to-download',
	'daily.transcript.error',
	'daily.streaming.started',
	'daily.streaming.updated',
	'daily.streaming.ended',
	'daily.streaming.error',
	'daily.dialin.connected',
	'daily.dialin.stopped',
	'daily.dialin.warning',
	'daily.dialin.error',
	'daily.dialout.connected',
	'daily.dialout.answered',
	'daily.dialout.stopped',
	'daily.dialout.warning',
	'daily.dialout.error',
	'daily.batch-processor.job-finished',
	'daily.batch-processor.error',
];
const PROVIDERS = ['tavus', 'pailflow', 'agenthuman', 'daily'];
const RANGES = [['', 'Any time'], ['15m', 'Last 15 minutes'], ['1h', 'Last hour'],
	['24h', 'Last 24 hours'], ['7d', 'Last 7 days'], ['custom', 'Between…']];
const FILTERS = ['provider', 'kind', 'source', 'session', 'room', 'since', 'until'];

function filtersFrom(q) {
	const f = {};
	for (const k of FILTERS)
		if (q.get(k))
			f[k] = q.get(k);
	return f;
}

// "2026-11-21T23:18:34Z" -> "2026-11-21T23:18:34" in the browser's zone
// (datetime-local, step 1): to the second, as an "until" a second after an
// event must stay after it (cut to the minute, Apply moved it before).
function toLocalInput(iso) {
	const d = new Date(iso);
	if (Number.isNaN(d.getTime()))
		return '';
	const off = d.getTimezoneOffset() * 60000;
	return new Date(d.getTime() - off).toISOString().slice(0, 19);
}

function fromLocalInput(v) {
	if (!v)
		return '';
	const d = new Date(v); // datetime-local is local time
	return Number.isNaN(d.getTime()) ? '' : d.toISOString();
}

function isPreset(v) {
	return RANGES.some(([value]) => value && value !== 'custom' && value === v);
}

// A time a datetime-local input can show; a `since` or `until` may also be a
// duration (api.md: since=2h, as links and hookctl give it).
function isTime(v) {
	return /^\d{4}-\d\d-\d\dT/.test(v) && !Number.isNaN(Date.parse(v));
}

// The Time choices: the presets, and a `since` duration that is none of them as
// one more, so the form shows it and Apply keeps it (it went as "Between…"
// with an empty From, and Apply widened the list to every event stored).
function ranges(since) {
	if (!since || isTime(since) || isPreset(since))
		return RANGES;
	return RANGES.slice(0, -1).concat([[since, `Last ${since}`]], RANGES.slice(-1));
}

// A bound from its input. One left as the form showed it goes as the URL gave
// it: its fraction of a second, its zone, or a duration the input could not
// show (compared as instants: the input may drop ":00" seconds from its value).
function boundFrom(input, given) {
	if (given && fromLocalInput(input.value) === fromLocalInput(input.defaultValue))
		return given;
	return fromLocalInput(input.value);
}

function select(name, label, options, value) {
	return h('label', null, label,
	    h('select', { name },
		options.map(([v, text]) => h('option', { value: v, selected: v === (value || '') }, text))));
}

function input(name, label, value, extra) {
	return h('label', null, label,
	    h('input', Object.assign({ name, value: value || '', autocomplete: 'off' }, extra)));
}

function filterForm(f, navigate) {
	const custom = isTime(f.since) || !!f.until;
	const range = custom ? 'custom' : (f.since || '');
	const between = h('span', { class: 'between', hidden: !custom },
	    input('since_at', 'From', custom && f.since ? toLocalInput(f.since) : '',
		{ type: 'datetime-local', step: '1' }),
	    input('until_at', 'To', f.until ? toLocalInput(f.until) : '',
		{ type: 'datetime-local', step: '1' }));
	const form = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter events' },
	    select('provider', 'Provider', [['', 'Any']].concat(PROVIDERS.map((p) => [p, p])),
		f.provider),
	    input('kind', 'Kind', f.kind, { list: 'hr-kinds', placeholder: 'any kind', spellcheck: 'false' }),
	    h('datalist', { id: 'hr-kinds' }, KINDS.map((k) => h('option', { value: k }))),
	    input('source', 'Source', f.source, { placeholder: 'any' }),
	    input('session', 'Session', f.session, { placeholder: 'id or key', spellcheck: 'false' }),
	    input('room', 'Room', f.room, { placeholder: 'Daily room name', spellcheck: 'false' }),
	    select('range', 'Time', ranges(custom ? null : f.since), range),
	    between,
	    h('span', { class: 'buttons' },
		h('button', { type: 'submit' }, 'Apply'),
		h('a', { href: '/ui/events', class: 'button secondary' }, 'Clear')));
	form.elements.range.addEventListener('change', () => {
		between.hidden = form.elements.range.value !== 'custom';
	});
	form.addEventListener('submit', (e) => {
		e.preventDefault();
		const el = form.elements;
		const q = {
			provider: el.provider.value, kind: el.kind.value.trim(),
			source: el.source.value.trim(), session: el.session.value.trim(),
			room: el.room.value.trim(),
		};
		if (el.range.value === 'custom') {
			q.since = boundFrom(el.since_at, custom ? f.since : null);
			q.until = boundFrom(el.until_at, f.until);
		} else {
			q.since = el.range.value;
		}
		navigate(`/ui/events${query(q)}`);
	});
	return form;
}

function kindCell(ev) {
	const sub = [ev.event_type, ev.subtype].filter(Boolean).join(' · ');
	return [eventLink(ev.id, dotted(ev.kind)), sub ? h('div', { class: 'muted small' }, sub) : null];
}

// One cell; its content in one box, so the narrow layout's label column stays a column.
function cell(label, cls, ...content) {
	return h('td', { 'data-label': label, class: cls }, h('div', null, content));
}

export function eventRow(ev, fresh) {
	return h('tr', { class: fresh ? 'fresh' : null, 'data-id': ev.id },
	    cell('Received', null, time(ev.received_at)),
	    cell('Kind', 'wrap', kindCell(ev)),
	    cell('Source', null, ev.source,
		ev.provider && ev.provider !== ev.source ? h('span', { class: 'muted' }, ` (${ev.provider})`) : null),
	    cell('Session', 'wrap',
		ev.session ? sessionLink(ev.session.id, ev.session.key) : h('span', { class: 'muted' }, '—')),
	    cell('Id', 'mono small', eventLink(ev.id)));
}

// In place of an event whose stream frame was too long to keep (api.js):
// the list, loaded again, shows it. `ev.id` is its position in the stream.
function oversizedRow(ev) {
	return h('tr', { class: 'fresh', 'data-id': ev.id },
	    h('td', { colspan: '5', class: 'muted' },
		'An event too long for the live tail came here: ',
		h('a', { href: `${location.pathname}${location.search}` }, 'reload the list'), ' to see it.'));
}

export function eventTable(label) {
	const tbody = h('tbody');
	const table = h('table', { class: 'rows', 'aria-label': label },
	    h('thead', null, h('tr', null, ['Received', 'Kind', 'Source', 'Session', 'Id'].map(
		(c) => h('th', { scope: 'col' }, c)))),
	    tbody);
	return { table, tbody };
}

// Milliseconds of a `since` filter (RFC 3339 or a duration), for the backlog.
function sinceMs(since) {
	if (!since)
		return null;
	const m = /^(\d+)(ms|s|m|h|d)$/.exec(since);
	if (m)
		return Date.now() - Number(m[1]) * { ms: 1, s: 1e3, m: 6e4, h: 36e5, d: 864e5 }[m[2]];
	const t = Date.parse(since);
	return Number.isNaN(t) ? null : t;
}

// `newest`: the id of the newest event listed, where the stream starts (null: none listed).
// `view`: the table's tbody, the toolbar (bar), the note above the table and onTrim.
function liveTail(ctx, f, newest, shown, view) {
	const { tbody, bar, note, onTrim } = view;
	const { signal } = ctx;
	const state = { paused: false, queued: [], lastId: null, overflow: false };
	const status = h('span', { class: 'live-status', role: 'status' }, 'Connecting…');
	const pause = h('button', { type: 'button', class: 'small', 'aria-pressed': 'false',
		'aria-keyshortcuts': 'p' }, 'Pause');
	const floor = sinceMs(f.since);

	// `shown` holds the ids in the table or queued, so it is bounded as they are.
	function addRow(ev) {
		// "No events match." is untrue once the table has a row.
		for (const empty of note.querySelectorAll('.empty'))
			empty.remove();
		tbody.prepend(ev.oversized ? oversizedRow(ev) : eventRow(ev, true));
		let trimmed = false;
		while (tbody.rows.length > ROWS_MAX) {
			shown.delete(tbody.lastElementChild.dataset.id);
			tbody.lastElementChild.remove();
			trimmed = true;
		}
		if (trimmed)
			onTrim();
	}
	function label() {
		pause.textContent = state.paused ?
		    `Resume${state.queued.length ? ` (${state.queued.length}${state.overflow ? '+' : ''} new)` : ''}` :
		    'Pause';
		pause.setAttribute('aria-pressed', String(state.paused));
	}
	function toggle() {
		state.paused = !state.paused;
		if (!state.paused) {
			for (const ev of state.queued)
				addRow(ev);
			state.queued = [];
			state.overflow = false;
		}
		showState();
		label();
	}
	function showState() {
		status.textContent = state.paused ? 'Paused' : 'Live';
		status.classList.toggle('on', !state.paused);
	}
	pause.addEventListener('click', toggle);
	document.addEventListener('keydown', (e) => {
		if (e.key === 'p' && !e.ctrlKey && !e.metaKey && !e.altKey &&
		    !e.target.closest('input, textarea, select')) {
			e.preventDefault();
			toggle();
		}
	}, { signal });
	bar.append(status, pause);

	function take(ev) {
		// Not by received_at: the stream is in commit order, and a request that
		// took longer to arrive is committed after one received later.
		if (shown.has(ev.id))
			return;
		if (floor !== null && Date.parse(ev.received_at) < floor)
			return;
		shown.add(ev.id);
		if (!state.paused) {
			addRow(ev);
			return;
		}
		state.queued.push(ev);
		if (state.queued.length > QUEUED_MAX) {
			shown.delete(state.queued.shift().id);
			state.overflow = true;
		}
		label();
	}

	const path = `/v1/stream${query({
		provider: f.provider, kind: f.kind, source: f.source, session: f.session, room: f.room,
	})}`;
	(async () => {
		let first = true;
		while (!signal.aborted) {
			try {
				const opts = { signal, lastEventId: state.lastId };
				const sep = path.includes('?') ? '&' : '?';
				// After the newest event listed (a page of backlog when none was) until
				// a stream opened; then its position, from each frame's id. A backlog
				// of one page missed what passed a page between the list and the stream.
				const start = newest ? `after=${encodeURIComponent(newest)}` : `backlog=${PAGE}`;
				const frames = stream(first ? `${path}${sep}${start}` : path, opts);
				for await (const frame of frames) {
					// Started only once a frame gave a position: cut off after the
					// answer's head but before the opening frame's id, a reconnect
					// without `after` began at 'now' and missed what came meanwhile.
					if (frame.id) {
						state.lastId = frame.id;
						first = false;
					}
					if (frame.event === 'open')
						showState();
					else if (frame.event === 'event')
						take(JSON.parse(frame.data));
					else if (frame.event === 'oversized' && frame.data === 'event')
						take({ id: `pos-${frame.id}`, oversized: true });
				}
			} catch (err) {
				if (err.status === 404 && first && newest) {
					newest = null; // pruned meanwhile: a page of backlog then
					continue;
				}
				if (signal.aborted || err.status === 401 || err.status === 403 || err.status === 400) {
					if (!signal.aborted)
						status.textContent = `Live tail stopped: ${err.message}`;
					return;
				}
			}
			if (signal.aborted)
				return;
			status.textContent = 'Reconnecting…';
			status.classList.remove('on');
			await new Promise((r) => setTimeout(r, RETRY_MS));
		}
	})();
}

export async function render(ctx) {
	const { main, query: q, signal, navigate } = ctx;
	const f = filtersFrom(q);
	document.title = 'Events · hookrelay';
	const bar = h('div', { class: 'toolbar' });
	const { table, tbody } = eventTable('Events, newest first');
	const more = h('div', { class: 'more' });
	const note = h('div');
	// The view goes on screen once, with its rows: a first layout of the
	// filters alone would only delay them.
	const first = get(`/v1/events${query(Object.assign({}, f, { limit: PAGE }))}`, { signal });
	const view = [h('h1', null, 'Events'), filterForm(f, navigate), bar, note, table, more];
	const loading = h('p', { class: 'muted' }, 'Loading…');
	main.append(loading);
	let page;
	try {
		page = await first;
	} catch (err) {
		if (signal.aborted)
			return;
		loading.remove();
		main.append(...view);
		note.append(errorBox(err));
		return;
	}
	const shown = new Set();
	for (const ev of page.events) {
		shown.add(ev.id);
		tbody.append(eventRow(ev, false));
	}
	loading.remove();
	main.append(...view);
	performance.mark('hr:rows'); // the browser test's time to first rendered rows
	if (page.events.length === 0)
		note.append(h('p', { class: 'muted empty' }, 'No events match.'));

	let cursor = page.next_cursor;
	function moreButton() {
		clear(more);
		if (!cursor && tbody.rows.length >= ROWS_MAX)
			more.append(h('p', { class: 'muted' }, `The list stops at ${ROWS_MAX} rows: narrow the filters to go further back.`));
		if (!cursor)
			return;
		more.append(olderButton(more, async () => {
			const next = await get(`/v1/events${query(Object.assign({}, f, { limit: PAGE, cursor }))}`,
			    { signal });
			const first = tbody.rows.length;
			for (const ev of next.events) {
				shown.add(ev.id);
				tbody.append(eventRow(ev, false));
			}
			cursor = tbody.rows.length < ROWS_MAX ? next.next_cursor : null;
			say(`${next.events.length} older events`);
			moreButton();
			focusAfterMore(more, tbody.rows[first]);
		}));
	}
	moreButton();

	if (f.until) {
		bar.append(h('span', { class: 'muted' }, 'Live tail is off while "To" is set.'));
		return;
	}
	// Rows the live tail pushed out at the bottom are gone from the table, so
	// "Load older" from the old cursor would leave a hole: it stops instead.
	liveTail(ctx, f, page.events.length ? page.events[0].id : null, shown, {
		tbody, bar, note, onTrim: () => {
			cursor = null;
			moreButton();
		},
	});
}
