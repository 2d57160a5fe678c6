// sessions.js - the Sessions view: newest first, by provider and status.
//
// GET /v1/sessions with the filters of the page's URL; older pages follow
// next_cursor.

import { get, query } from './api.js';
import {
	badge, clear, duration, errorBox, focusAfterMore, h, olderButton, say, sessionLink, time,
} from './dom.js';

const PAGE = 50;

function row(s) {
	return h('tr', null,
	    h('td', { 'data-label': 'First seen' }, time(s.first_seen)),
	    h('td', { 'data-label': 'Session', class: 'wrap' }, sessionLink(s.id)),
	    h('td', { 'data-label': 'Last seen' }, time(s.last_seen)),
	    h('td', { 'data-label': 'Provider' }, s.provider),
	    h('td', { 'data-label': 'Status' }, s.status ? badge(s.status) : '—'),
	    h('td', { 'data-label': 'Events' }, String(s.event_count)),
	    h('td', { 'data-label': 'Duration' }, duration(s.duration)),
	    h('td', { 'data-label': 'Reason', class: 'wrap' },
		s.shutdown_reason || s.exit_reason || s.error_type || h('span', { class: 'muted' }, '—')));
}

function filterForm(q, navigate) {
	const opt = (v, text, cur) => h('option', { value: v, selected: v === (cur || '') }, text);
	const form = h('form', { class: 'filters', 'aria-label': 'Filter sessions' },
	    h('label', null, 'Provider', h('select', { name: 'provider' },
		[['', 'Any'], ['tavus', 'tavus'], ['pailflow', 'pailflow'], ['agenthuman', 'agenthuman'], ['daily', 'daily']]
		    .map(([v, t]) => opt(v, t, q.get('provider'))))),
	    h('label', null, 'Status', h('select', { name: 'status' },
		[['', 'Any'], ['created', 'created'], ['started', 'started'], ['ended', 'ended'], ['failed', 'failed']]
		    .map(([v, t]) => opt(v, t, q.get('status'))))),
	    h('span', { class: 'buttons' }, h('button', { type: 'submit' }, 'Apply')));
	form.addEventListener('submit', (e) => {
		e.preventDefault();
		navigate(`/ui/sessions${query({ provider: form.elements.provider.value, status: form.elements.status.value })}`);
	});
	return form;
}

export async function render(ctx) {
	const { main, query: q, signal, navigate } = ctx;
	document.title = 'Sessions · hookrelay';
	const f = { provider: q.get('provider'), status: q.get('status') };
	const tbody = h('tbody');
	const more = h('div', { class: 'more' });
	const note = h('div');
	main.append(h('h1', null, 'Sessions'), filterForm(q, navigate), note,
	    h('table', { class: 'rows', 'aria-label': 'Sessions, newest first by when first seen' },
		h('thead', null, h('tr', null, ['First seen', 'Session', 'Last seen', 'Provider', 'Status', 'Events', 'Duration', 'Reason']
		    .map((c) => h('th', { scope: 'col' }, c)))), tbody),
	    more);
	async function load(cursor) {
		const page = await get(`/v1/sessions${query(Object.assign({ limit: PAGE, cursor }, f))}`, { signal });
		const first = tbody.rows.length;
		for (const s of page.sessions)
			tbody.append(row(s));
		clear(more);
		if (page.next_cursor)
			more.append(olderButton(more, () => load(page.next_cursor).then(() => say('Older sessions loaded'))));
		if (cursor)
			focusAfterMore(more, tbody.rows[first]);
		return page;
	}
	try {
		const first = await load(null);
		if (first.sessions.length === 0)
			note.append(h('p', { class: 'muted empty' }, 'No sessions match.'));
	} catch (err) {
		if (!signal.aborted)
			note.append(errorBox(err));
	}
}
