/*
 * jarena.h - a per-event arena for the jansson tree of a webhook body.
 *
 * Parsing a 1 KiB body makes about 90 small jansson allocations, and freeing
 * the tree as many frees. Inside hr_jarena_begin() .. hr_jarena_end() on a
 * thread, jansson allocates from one slot of a reserved region instead (and
 * a big slot past it, for a large body); its
 * frees of those blocks do nothing, and hr_jarena_release() gives the whole
 * slot back once the tree is gone. Anything else jansson allocates (other
 * threads, other times, a body too large for a slot) is plain malloc/free, so
 * a json_dumps() text is still freed with free().
 *
 * Rule for the tree's owner: nothing may keep a reference into the tree past
 * hr_jarena_release() (copy with json_deep_copy outside the arena instead).
 */
#ifndef HR_JARENA_H
#define HR_JARENA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HR_JARENA_SLOT  (32 * 1024) /* bytes a tree may take; ~4.5 per body byte */
#define HR_JARENA_SLOTS 1024        /* trees held at once; then plain malloc */
/* A tree past its slot goes on in a big slot: virtual memory, touched as far as
 * the tree goes (a 1 MiB body's tree is about 5 MiB; max_body 8 MiB fits). */
#define HR_JARENA_BIG  (64u << 20)
#define HR_JARENA_BIGS 32 /* big trees held at once; then plain malloc */
/* Bytes of pages a released big slot keeps as they are; the rest of its tree's
 * pages are MADV_FREE (the kernel takes them only when it needs memory). */
#define HR_JARENA_BIG_KEEP (1u << 20)
/* A big slot hr_jarena_trim() has seen free for this long gives all its pages
 * back, so after a burst of large bodies none stay resident. */
#define HR_JARENA_IDLE_US (10 * 1000000LL)

struct hr_jarena;

/* Route this thread's jansson allocations to a free slot until hr_jarena_end();
 * NULL (plain malloc, nothing to release) when every slot is taken or the
 * region could not be reserved. Installs the allocator on first use. */
struct hr_jarena *hr_jarena_begin(void);
/* Back to plain malloc on this thread. */
void hr_jarena_end(void);
/* Give the slot back (takes `a`; NULL is fine); every tree in it must be freed. */
void hr_jarena_release(struct hr_jarena *a);
/* Give back for good the pages of every big slot that earlier calls have
 * seen free, untaken, since at least idle_us before now_us (a monotonic clock;
 * idle_us 0: every free one); the bytes given back. Called on a regular tick
 * (main.c: once a second), so a slot goes up to one tick after idle_us. Any
 * thread. */
size_t hr_jarena_trim(int64_t now_us, int64_t idle_us);
/* Bytes of pages the big slots keep for the next big trees: each one's most
 * used since hr_jarena_trim() last gave its pages back, as of its last release
 * (an upper bound: the kernel may have taken MADV_FREE pages meanwhile). */
size_t hr_jarena_held(void);
/* Is `p` a block of the arena (a slot or a big slot)? */
bool hr_jarena_contains(const void *p);
/* Did the tree outgrow its slot and its big slot (so part of it is in plain malloc)? */
bool hr_jarena_overflowed(const struct hr_jarena *a);

#endif
