/*
 * ui.h - the web inspector's files, compiled into the binary.
 *
 * Everything under ui/ is turned into a byte array at build time by
 * cmake/embed.cmake (no tool beyond CMake), so the daemon serves its page
 * with no file on disk to find, version or tamper with.
 */
#ifndef HR_UI_H
#define HR_UI_H

#include <stddef.h>

#include "hr/http.h"

struct hr_ui_asset {
	const char *name; /* "app.js": the file's name under ui/ */
	const unsigned char *data;
	size_t len;
};

/* Generated (ui_assets.c): every file of ui/, then { NULL }. */
extern const struct hr_ui_asset hr_ui_assets[];
/* Generated: a digest of ui/, the VERSION in /ui/assets/VERSION/NAME. */
extern const char hr_ui_version[];
/* Generated: index.html naming its files under /ui/assets/VERSION/. */
extern const char hr_ui_page[];

/* The asset called `name` (borrowed), or NULL. */
const struct hr_ui_asset *hr_ui_asset_find(const char *name);
/* The Content-Type to serve `name` with; NULL for an extension the UI does not use. */
const char *hr_ui_content_type(const char *name);

/* GET /ui and its deep links, /ui/assets/NAME and /ui/assets/VERSION/NAME (ui.c). */
extern const struct hr_route hr_ui_routes[];

#endif
