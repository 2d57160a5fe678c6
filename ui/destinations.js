// destinations.js - the Destinations view: forwarding health at a glance.
//
// GET /v1/destinations gives each destination's state, breaker and counts;
// its last error is the newest delivery to it that has one (GET
// /v1/deliveries?destination=NAME). Enable and Replay are the API's POSTs.
// The view refreshes itself every few seconds while it is open.

import { get, post, query, seg } from './api.js';
import {
	badge, clear, duration, errorBox, eventLink, facts, formatLocal, h, problemText, say, time,
} from './dom.js';

const REFRESH_MS = 5000;
const ERROR_LOOKBACK = 20; // deliveries searched for the last error

async function lastError(name, signal) {
	const page = await get(`/v1/deliveries${query({ destination: name, limit: ERROR_LOOKBACK })}`, { signal });
	return page.deliveries.find((d) => d.last_error) || null;
}

// Results go to `out`, outside the cards: a refresh redraws the cards.
function actions(d, signal, reload, out) {
	const enable = h('button', {
		type: 'button', disabled: d.state !== 'disabled',
		title: d.state !== 'disabled' ? 'Only a destination disabled by a 410 needs enabling' : null,
		on: {
			click: async () => {
				enable.disabled = true;
				try {
					await post(`/v1/destinations/${seg(d.name)}/enable`, {}, { signal });
					out.textContent = `${d.name} enabled.`;
					say(out.textContent);
					reload();
				} catch (err) {
					out.textContent = problemText(err);
					enable.disabled = false;
				}
			},
		},
	}, 'Enable');
	const status = h('select', { name: 'status', 'aria-label': `Replay which deliveries to ${d.name}` },
	    [['dead', 'dead'], ['failed', 'failed'], ['', 'all']].map(([v, t]) => h('option', { value: v }, t)));
	const since = h('input', { name: 'since', placeholder: 'since, e.g. 2h', size: '10', 'aria-label': 'Since', autocomplete: 'off' });
	const form = h('form', { class: 'inline' },
	    enable, h('label', null, 'Replay ', status), since, h('button', { type: 'submit' }, 'Replay'));
	form.addEventListener('submit', async (e) => {
		e.preventDefault();
		const btn = form.querySelector('button[type=submit]');
		btn.disabled = true;
		try {
			const filter = { status: status.value, since: since.value.trim() };
			// Unfiltered, it is the destination's whole history: count it and ask first,
			// as hookctl replay does.
			if (!filter.status && !filter.since) {
				const dry = await post(`/v1/destinations/${seg(d.name)}/replay${query({ dry_run: 'true' })}`, {}, { signal });
				if (!window.confirm(`Deliver ${dry.deliveries} event${dry.deliveries === 1 ? '' : 's'} to ${d.name} again (its whole history)?`)) {
					out.textContent = 'Nothing queued.';
					say(out.textContent);
					btn.disabled = false;
					return;
				}
			}
			const r = await post(`/v1/destinations/${seg(d.name)}/replay${query(filter)}`, {}, { signal });
			out.textContent = `Queued ${r.deliveries} deliver${r.deliveries === 1 ? 'y' : 'ies'} to ${d.name}.`;
			say(out.textContent);
			reload();
		} catch (err) {
			out.textContent = problemText(err);
		}
		btn.disabled = false;
	});
	return form;
}

function breakerKind(b) {
	return { closed: 'ok', open: 'bad', 'half-open': 'warn' }[b] || 'other';
}

function card(d, err, signal, reload, out) {
	return h('li', { class: 'card', 'data-name': d.name },
	    h('div', { class: 'card-head' },
		h('h2', { class: 'inline-h' }, d.name), ' ',
		badge(d.state, d.state === 'active' ? 'ok' : 'bad'), ' ',
		badge(`breaker ${d.breaker}`, breakerKind(d.breaker))),
	    h('p', { class: 'mono small wrap' }, d.url),
	    h('div', { class: 'counts' },
		[['pending', d.pending], ['in flight', d.in_flight], ['succeeded', d.succeeded],
		    ['failed', d.failed], ['dead', d.dead]].map(([label, n]) => h('span', { class: `count count-${label.replace(' ', '-')}` },
		    h('strong', null, String(n)), ` ${label}`))),
	    facts([
		['Oldest pending', d.oldest_pending_age_s === null ? null : duration(d.oldest_pending_age_s)],
		['Consecutive failures', String(d.consecutive_failures)],
		['Next probe', d.next_probe_at ? time(d.next_probe_at) : null],
		['Disabled because', d.disabled_reason],
		['Last error', err ? h('span', null, err.last_error, h('span', { class: 'muted small' }, ' · ', time(err.updated_at), ' · ', eventLink(err.event_id))) : null],
		['Ordered', d.ordered ? 'yes' : 'no'],
	    ]),
	    actions(d, signal, reload, out));
}

export async function render(ctx) {
	const { main, signal } = ctx;
	document.title = 'Destinations · hookrelay';
	const list = h('ul', { class: 'cards' });
	const note = h('div');
	const stamp = h('span', { class: 'muted small' });
	const out = h('p', { class: 'notice', role: 'status' });
	main.append(h('h1', null, 'Destinations'), h('div', { class: 'toolbar' }, stamp), out, note, list);
	let timer = null;
	async function load() {
		clearTimeout(timer);
		try {
			const doc = await get('/v1/destinations', { signal });
			const errors = await Promise.all(doc.destinations.map((d) => lastError(d.name, signal).catch(() => null)));
			// Keep a form someone is typing in: redraw only the cards not in use.
			const focused = document.activeElement && document.activeElement.closest('li.card');
			if (!focused || !list.contains(focused)) {
				clear(list);
				doc.destinations.forEach((d, i) => list.append(card(d, errors[i], signal, load, out)));
			}
			clear(note);
			if (doc.destinations.length === 0)
				note.append(h('p', { class: 'muted empty' }, 'No destinations are configured ([destination NAME]).'));
			stamp.textContent = `Updated ${formatLocal(new Date().toISOString(), true)}`;
		} catch (err) {
			if (signal.aborted)
				return;
			clear(note).append(errorBox(err));
		}
		if (!signal.aborted)
			timer = setTimeout(load, REFRESH_MS);
	}
	signal.addEventListener('abort', () => clearTimeout(timer));
	await load();
}
