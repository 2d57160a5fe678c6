// destinations.js - the Destinations view: forwarding health at a glance.
//
// GET /v1/destinations gives each destination's state, breaker and counts,
// and the newest failed attempt's error since the daemon started; before one,
// the last error is the newest of its last deliveries that has one (GET
// /v1/deliveries?destination=NAME). Enable and Replay are the API's POSTs.
// Pending deliveries of a destination no longer configured get a card of
// their own, above the others, with a Discard button for each (the API's
// POST /v1/destinations/NAME/discard, asked first).
// The view refreshes itself every few seconds while it is open; a refresh
// redraws what the cards show and never their forms.

import { get, post, query, seg } from './api.js';
import {
	badge, clear, duration, errorBox, eventLink, facts, formatLocal, h, problemText, say, time,
} from './dom.js';

const REFRESH_MS = 5000;
const ERROR_LOOKBACK = 20; // deliveries searched for the last error

// While a destination fails, its newest deliveries wait for the breaker and hold
// no error: the daemon's own note of the last failed attempt comes first (a
// review saw "Last error -" on every failing destination). An answer with a
// failing status is an error too.
async function lastError(d, signal) {
	if (d.last_error)
		return { last_error: d.last_error, updated_at: d.last_error_at, event_id: null };
	const page = await get(`/v1/deliveries${query({ destination: d.name, limit: ERROR_LOOKBACK })}`, { signal });
	const failed = page.deliveries.find((x) => x.last_error || x.last_status >= 300);
	return failed ? { ...failed, last_error: failed.last_error || `HTTP ${failed.last_status}` } : null;
}

// A card's form, made once and kept across refreshes (a choice made in it
// stays); `enableFor(state)` follows the destination's state. Results go to
// `out`, outside the cards.
function actions(name, signal, reload, out) {
	const enable = h('button', {
		type: 'button',
		on: {
			click: async () => {
				enable.disabled = true;
				try {
					await post(`/v1/destinations/${seg(name)}/enable`, {}, { signal });
					out.textContent = `${name} enabled.`;
					say(out.textContent);
					reload();
				} catch (err) {
					out.textContent = problemText(err);
					enable.disabled = false;
				}
			},
		},
	}, 'Enable');
	const status = h('select', { name: 'status', 'aria-label': `Replay which deliveries to ${name}` },
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
				const dry = await post(`/v1/destinations/${seg(name)}/replay${query({ dry_run: 'true' })}`, {}, { signal });
				if (!window.confirm(`Deliver ${dry.deliveries} event${dry.deliveries === 1 ? '' : 's'} to ${name} again (its whole history)?`)) {
					out.textContent = 'Nothing queued.';
					say(out.textContent);
					btn.disabled = false;
					return;
				}
			}
			const r = await post(`/v1/destinations/${seg(name)}/replay${query(filter)}`, {}, { signal });
			out.textContent = `Queued ${r.deliveries} deliver${r.deliveries === 1 ? 'y' : 'ies'} to ${name}.`;
			say(out.textContent);
			reload();
		} catch (err) {
			out.textContent = problemText(err);
		}
		btn.disabled = false;
	});
	function enableFor(state) {
		enable.disabled = state !== 'disabled';
		if (enable.disabled)
			enable.title = 'Only a destination disabled by a 410 needs enabling';
		else
			enable.removeAttribute('title');
	}
	return { form, enableFor };
}

function breakerKind(b) {
	return { closed: 'ok', open: 'bad', 'half-open': 'warn' }[b] || 'other';
}

// What a card shows of `d`; redrawn on every refresh.
function cardBody(d, err) {
	return h('div', null,
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
		['Last error', err ? h('span', null, err.last_error, h('span', { class: 'muted small' }, ' · ', time(err.updated_at), ...(err.event_id ? [' · ', eventLink(err.event_id)] : []))) : null],
		['Ordered', d.ordered ? 'yes' : 'no'],
	    ]));
}

// Give up a destination's pending deliveries once the user says so: they
// become failed, their events stay (a replay sends them once it is back).
function discardButton(u, signal, reload, out) {
	const btn = h('button', {
		type: 'button',
		on: {
			click: async () => {
				if (!window.confirm(`Give up the ${u.pending} pending deliver${u.pending === 1 ? 'y' : 'ies'} to ${u.name}? They become failed; their events stay.`))
					return;
				btn.disabled = true;
				try {
					const r = await post(`/v1/destinations/${seg(u.name)}/discard`, {}, { signal });
					out.textContent = `Discarded ${r.discarded} deliver${r.discarded === 1 ? 'y' : 'ies'} to ${u.name}.`;
					say(out.textContent);
					reload();
				} catch (err) {
					out.textContent = problemText(err);
					btn.disabled = false;
				}
			},
		},
	}, 'Discard');
	return btn;
}

// Deliveries whose destination the configuration no longer has: nobody sends
// them, and their events are kept whole (docs/forwarding.md).
function unconfiguredCard(list, signal, reload, out) {
	return h('div', { class: 'card unconfigured' },
	    h('div', { class: 'card-head' },
		h('h2', { class: 'inline-h' }, 'Not configured'), ' ', badge('not sent', 'warn')),
	    h('ul', null, list.map((u) => h('li', { 'data-name': u.name },
		h('strong', null, u.name), ` · ${u.pending} pending, the oldest ${duration(u.oldest_pending_age_s)} old `,
		discardButton(u, signal, reload, out)))),
	    h('p', { class: 'muted small' },
		'The configuration has no [destination NAME] for these: nobody sends their deliveries, and their events are kept whole, until a destination of that name does or they are discarded.'));
}

// A destination's card: its body is redrawn, its form stays (neither the
// element nor its focus, value or text moves).
function card(name, signal, reload, out) {
	const body = h('div');
	const { form, enableFor } = actions(name, signal, reload, out);
	const li = h('li', { class: 'card', 'data-name': name }, body, form);
	return {
		li,
		show(d, err) {
			clear(body).append(cardBody(d, err));
			enableFor(d.state);
		},
	};
}

export async function render(ctx) {
	const { main, signal } = ctx;
	document.title = 'Destinations · hookrelay';
	const list = h('ul', { class: 'cards' });
	const note = h('div');
	const stamp = h('span', { class: 'muted small' });
	const out = h('p', { class: 'notice', role: 'status' });
	main.append(h('h1', null, 'Destinations'), h('div', { class: 'toolbar' }, stamp), out, note, list);
	const cards = new Map(); // name -> card, kept across refreshes
	let timer = null;
	async function load() {
		clearTimeout(timer);
		try {
			const doc = await get('/v1/destinations', { signal });
			const errors = await Promise.all(doc.destinations.map((d) => lastError(d, signal).catch(() => null)));
			// The same card for the same name, in the order the API gives.
			const names = doc.destinations.map((d) => d.name);
			for (const [name, c] of cards)
				if (!names.includes(name)) {
					c.li.remove();
					cards.delete(name);
				}
			doc.destinations.forEach((d, i) => {
				if (!cards.has(d.name))
					cards.set(d.name, card(d.name, signal, load, out));
				const c = cards.get(d.name);
				c.show(d, errors[i]);
				if (list.children[i] !== c.li)
					list.insertBefore(c.li, list.children[i] || null);
			});
			clear(note);
			if (doc.destinations.length === 0)
				note.append(h('p', { class: 'muted empty' }, 'No destinations are configured ([destination NAME]).'));
			if ((doc.unconfigured || []).length > 0)
				note.append(unconfiguredCard(doc.unconfigured, signal, load, out));
			stamp.textContent = `Updated ${formatLocal(new Date().toISOString(), true)}`;
		} catch (err) {
			if (signal.aborted)
				return;
			clear(note).append(errorBox(err));
			// Signed out: polling again would only ask for the token every few
			// seconds and pull the focus back to it; signing in loads the view.
			if (err.status === 401)
				return;
		}
		if (!signal.aborted)
			timer = setTimeout(load, REFRESH_MS);
	}
	signal.addEventListener('abort', () => clearTimeout(timer));
	await load();
}
