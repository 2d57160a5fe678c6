// app.js - the inspector's router: one page, a view per path.
//
// /ui/events/{id} and the other deep links load this same page; the path
// picks the view. Links inside the page change the URL with history.pushState
// instead of reloading. Each view gets an AbortSignal that fires when the user
// leaves it, so its fetches and its live tail stop with it.

import { setToken, token } from './api.js';
import { clear, h, say } from './dom.js';
import * as events from './events.js';

// [path, module, export, nav item]. The Events view, where /ui lands, comes
// with the page; any other view's module loads when first needed (the first
// paint waits for fewer files), and the rest once the browser is idle.
const routes = [
	[/^\/ui\/?$/, 'events.js', 'render', 'events'],
	[/^\/ui\/events\/?$/, 'events.js', 'render', 'events'],
	[/^\/ui\/events\/([^/]+)$/, 'event.js', 'render', 'events'],
	[/^\/ui\/sessions\/?$/, 'sessions.js', 'render', 'sessions'],
	[/^\/ui\/sessions\/([^/]+)$/, 'session.js', 'render', 'sessions'],
	[/^\/ui\/rejections\/?$/, 'rejections.js', 'render', 'rejections'],
	[/^\/ui\/rejections\/([^/]+)$/, 'rejections.js', 'renderOne', 'rejections'],
	[/^\/ui\/destinations\/?$/, 'destinations.js', 'render', 'destinations'],
];

function load(file) {
	return file === 'events.js' ? Promise.resolve(events) : import(`./${file}`);
}

const main = document.getElementById('main');
let current = null; // AbortController of the view on screen

function navigate(path, { replace } = {}) {
	if (replace)
		history.replaceState(null, '', path);
	else
		history.pushState(null, '', path);
	route(true);
}

async function route(moved) {
	if (current)
		current.abort();
	current = new AbortController();
	const path = location.pathname;
	let found = null;
	for (const [re, file, name, nav] of routes) {
		const m = re.exec(path);
		if (m) {
			found = { file, name, nav, params: m.slice(1).map(decodeURIComponent) };
			break;
		}
	}
	for (const a of document.querySelectorAll('nav a[data-nav]')) {
		if (found && a.dataset.nav === found.nav)
			a.setAttribute('aria-current', 'page');
		else
			a.removeAttribute('aria-current');
	}
	document.getElementById('signout').hidden = !token();
	clear(main);
	if (!found) {
		main.append(h('h1', { tabindex: '-1' }, 'Not found'),
		    h('p', null, 'No view at this address. ', h('a', { href: '/ui/events' }, 'Events')));
		return;
	}
	// A view writes into its own root: whatever a view still writes after
	// the user left it lands in a detached node, not in the next view.
	const root = h('div', { class: 'view' });
	main.append(root);
	const ctx = {
		main: root, params: found.params, query: new URLSearchParams(location.search),
		signal: current.signal, navigate,
	};
	try {
		const view = await load(found.file);
		if (ctx.signal.aborted)
			return;
		await view[found.name](ctx);
	} catch (err) {
		if (err.name !== 'AbortError')
			console.error(err);
	}
	// Keyboard and screen reader users land on the new view's heading.
	if (moved && !ctx.signal.aborted) {
		const h1 = main.querySelector('h1');
		if (h1) {
			h1.setAttribute('tabindex', '-1');
			h1.focus({ preventScroll: true });
		}
	}
}

// Same-origin /ui links move inside the page; modified clicks open tabs as usual.
document.addEventListener('click', (e) => {
	const a = e.target.closest('a[href]');
	if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey ||
	    e.altKey || a.target)
		return;
	const url = new URL(a.href, location.href);
	if (url.origin !== location.origin || !url.pathname.startsWith('/ui'))
		return;
	e.preventDefault();
	if (url.pathname + url.search !== location.pathname + location.search)
		navigate(url.pathname + url.search);
	else if (url.hash)
		document.querySelector(url.hash)?.focus();
});

window.addEventListener('popstate', () => route(true));

// ---- sign-in: only when the API asks for a token ----
const signin = document.getElementById('signin');

window.addEventListener('hr:unauthorized', () => {
	signin.hidden = false;
	document.getElementById('signin-error').textContent = token() ?
	    'That token was refused. Enter the API token again.' :
	    'This hookrelay requires an API token ([api] token_file).';
	document.getElementById('token').focus();
});

signin.addEventListener('submit', (e) => {
	e.preventDefault();
	const input = document.getElementById('token');
	setToken(input.value.trim());
	input.value = '';
	signin.hidden = true;
	route(false);
});

document.getElementById('signout').addEventListener('click', () => {
	setToken(null);
	say('Signed out');
	route(false);
});

// ---- keyboard: "/" goes to the filters, "g" then a letter to a view ----
let pendingG = false;
document.addEventListener('keydown', (e) => {
	const t = e.target;
	if (e.ctrlKey || e.metaKey || e.altKey || t.closest('input, textarea, select, [contenteditable]'))
		return;
	if (pendingG) {
		pendingG = false;
		const to = { e: '/ui/events', s: '/ui/sessions', r: '/ui/rejections', d: '/ui/destinations' }[e.key];
		if (to) {
			e.preventDefault();
			navigate(to);
		}
		return;
	}
	if (e.key === 'g') {
		pendingG = true;
		setTimeout(() => { pendingG = false; }, 1500);
	} else if (e.key === '/') {
		const first = main.querySelector('form.filters input, form.filters select');
		if (first) {
			e.preventDefault();
			first.focus();
		}
	}
});

route(false).then(() => {
	const later = window.requestIdleCallback || ((fn) => setTimeout(fn, 200));
	later(() => new Set(routes.map((r) => r[1])).forEach((f) => load(f).catch(() => {})));
});
