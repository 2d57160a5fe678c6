/*
 * jarena.c - the per-event arena for jansson trees (include/hr/jarena.h).
 *
 * One region of HR_JARENA_SLOTS slots is reserved at start (virtual memory;
 * a slot's pages are touched only as far as trees have filled it). Whether a
 * block is the arena's is one address comparison, so jansson's free can run
 * on any thread and needs no header in front of the blocks: everything else
 * stays plain malloc, and free() of a json_dumps() text keeps working.
 * Slots are taken and given back on a mutex-guarded stack, most recently
 * used first, so the pages in use stay few and warm.
 *
 * A tree that outgrows its slot (a body over ~7 KiB) goes on in a big slot
 * of a second region, so a 1 MiB body's hundred thousand values are not as
 * many mallocs and frees either. A released big slot keeps HR_JARENA_BIG_KEEP
 * bytes of pages and marks the rest MADV_FREE: the kernel may take those pages
 * when it needs memory, and until it does, the next big tree writes them
 * without a page fault (a 1 MiB body faulted ~900 pages in again each time,
 * about 5 % of its CPU). hr_jarena_trim() gives back, for good, the pages of
 * big slots that have not been used for a while, so big trees do not pin
 * memory after a burst. Past its big slot, or when none is free, a tree goes
 * on in plain malloc.
 *
 * Under AddressSanitizer the unused part of every slot is poisoned (from the
 * first time it is taken), so a reference kept into a released tree, or a
 * write past a block, is reported.
 */
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "hr/jarena.h"

#if defined(__SANITIZE_ADDRESS__)
#define HR_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HR_ASAN 1
#endif
#endif
#ifdef HR_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n)   ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n)   ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#ifdef HR_ASAN
/* A slot is poisoned whole the first time it is taken, not at start: the two
 * regions are 2 GiB, whose 256 MiB of shadow written before main cost every
 * process of an ASan build (each test's daemon and CLI) 1.3 s and that much
 * memory. A slot never taken is never referenced. Each flag is its slot
 * owner's. */
static bool slot_poisoned[HR_JARENA_SLOTS], big_poisoned[HR_JARENA_BIGS];
#define POISON_FIRST_TIME(flag, p, n)                                                              \
	do {                                                                                       \
		if (!(flag)) {                                                                     \
			POISON((p), (n));                                                          \
			(flag) = true;                                                             \
		}                                                                                  \
	} while (0)
#else
#define POISON_FIRST_TIME(flag, p, n) ((void)0)
#endif

#define ALIGN 16u /* malloc's alignment on x86-64 and arm64 */

/* The head of a slot; the blocks follow it. */
struct hr_jarena {
	size_t used; /* bytes of the slot given out, this head included */
	bool overflowed;
	bool big_tried; /* a big slot was asked for (there is one only if big != NULL) */
	unsigned index;
	unsigned big_index;
	char *big;       /* the big slot the tree went on in, or NULL */
	size_t big_used; /* bytes of it given out */
};

#define HEAD (((sizeof(struct hr_jarena) + ALIGN - 1) / ALIGN) * ALIGN)

static struct {
	char *base; /* NULL: no region, every allocation is malloc's */
	pthread_mutex_t mu;
	unsigned nfree;
	unsigned free_slots[HR_JARENA_SLOTS]; /* a stack: the top is the last released */
	char *big_base;                       /* NULL: no big slots */
	unsigned nbig_free;
	unsigned big_free[HR_JARENA_BIGS]; /* a stack as free_slots */
	/* Per big slot: the most bytes trees took of it since hr_jarena_trim()
	 * last gave its pages back (0: none may be resident), and since when
	 * hr_jarena_trim() has seen it free: the release path reads no clock. */
	size_t big_touched[HR_JARENA_BIGS];
	int64_t big_free_since_us[HR_JARENA_BIGS];
} g = { .mu = PTHREAD_MUTEX_INITIALIZER };

#define NOT_SEEN_FREE INT64_MIN /* released since hr_jarena_trim() last looked */

static _Thread_local struct hr_jarena *current;
/* Kernels before 4.5 have no MADV_FREE: give pages back at once instead. */
static atomic_bool madv_free_unsupported;

static bool
in_region(const void *p)
{
	uintptr_t a = (uintptr_t)p, b = (uintptr_t)g.base;

	if (g.base != NULL && a >= b && a - b < (uintptr_t)HR_JARENA_SLOT * HR_JARENA_SLOTS)
		return true;
	b = (uintptr_t)g.big_base;
	return g.big_base != NULL && a >= b && a - b < (uintptr_t)HR_JARENA_BIG * HR_JARENA_BIGS;
}

/* The tree's big slot, taken on its first overflow; false when none is free.
 * Out of line: most trees never get here, and arena_malloc stays small. */
__attribute__((noinline)) static bool
take_big(struct hr_jarena *a)
{
	if (a->big != NULL || a->big_tried)
		return a->big != NULL;
	a->big_tried = true;
	pthread_mutex_lock(&g.mu);
	if (g.big_base != NULL && g.nbig_free > 0) {
		a->big_index = g.big_free[--g.nbig_free];
		a->big = g.big_base + (size_t)a->big_index * HR_JARENA_BIG;
		a->big_used = 0;
	}
	pthread_mutex_unlock(&g.mu);
	if (a->big != NULL)
		POISON_FIRST_TIME(big_poisoned[a->big_index], a->big, HR_JARENA_BIG);
	return a->big != NULL;
}

static void *
arena_malloc(size_t size)
{
	struct hr_jarena *a = current;
	size_t need = ((size + ALIGN - 1) / ALIGN) * ALIGN;
	char *p;

	if (a == NULL || size == 0)
		return malloc(size);
	if (need <= HR_JARENA_SLOT - a->used) {
		p = (char *)a + a->used;
		a->used += need;
	} else if (take_big(a) && need <= HR_JARENA_BIG - a->big_used) {
		p = a->big + a->big_used;
		a->big_used += need;
	} else {
		a->overflowed = true;
		return malloc(size);
	}
	UNPOISON(p, size);
	return p;
}

/* A block of a slot goes with its slot (hr_jarena_release). */
static void
arena_free(void *p)
{
	if (!in_region(p))
		free(p);
}

/* Where transparent huge pages are "always", the first touch of a slot would
 * make 2 MiB resident, and giving part of a huge page back splits it: slots
 * hold and give back what trees used, in base pages (errors: no THP at all). */
static void
no_huge_pages(void *p, size_t len)
{
	(void)madvise(p, len, MADV_NOHUGEPAGE);
}

/* Before main, so before any thread exists and before any jansson call. */
__attribute__((constructor)) static void
install(void)
{
	size_t size = (size_t)HR_JARENA_SLOT * HR_JARENA_SLOTS;
	void *base = mmap(
	    NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (base == MAP_FAILED)
		return; /* no arena: jansson keeps malloc */
	g.base = base;
	no_huge_pages(g.base, size);
	for (unsigned i = 0; i < HR_JARENA_SLOTS; i++)
		g.free_slots[i] = HR_JARENA_SLOTS - 1 - i;
	g.nfree = HR_JARENA_SLOTS;
	base = mmap(NULL, (size_t)HR_JARENA_BIG * HR_JARENA_BIGS, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (base != MAP_FAILED) { /* else big trees are malloc's, as before */
		g.big_base = base;
		no_huge_pages(g.big_base, (size_t)HR_JARENA_BIG * HR_JARENA_BIGS);
		for (unsigned i = 0; i < HR_JARENA_BIGS; i++)
			g.big_free[i] = HR_JARENA_BIGS - 1 - i;
		g.nbig_free = HR_JARENA_BIGS;
	}
	json_set_alloc_funcs(arena_malloc, arena_free);
}

struct hr_jarena *
hr_jarena_begin(void)
{
	struct hr_jarena *a = NULL;
	unsigned i = 0;
	bool got = false;

	pthread_mutex_lock(&g.mu);
	if (g.base != NULL && g.nfree > 0) {
		i = g.free_slots[--g.nfree];
		got = true;
	}
	pthread_mutex_unlock(&g.mu);
	if (got) {
		a = (struct hr_jarena *)(g.base + (size_t)i * HR_JARENA_SLOT);
		POISON_FIRST_TIME(slot_poisoned[i], a, HR_JARENA_SLOT);
		UNPOISON(a, HEAD);
		a->used = HEAD;
		a->overflowed = false;
		a->big_tried = false;
		a->big = NULL;
		a->big_used = 0;
		a->index = i;
	}
	current = a;
	return a;
}

void
hr_jarena_end(void)
{
	current = NULL;
}

/* Let the kernel take the pages of [p, p + len) when it needs memory; until
 * then they stay, and writing them again costs no fault. */
static void
free_lazily(char *p, size_t len)
{
	if (!atomic_load_explicit(&madv_free_unsupported, memory_order_relaxed)) {
		if (madvise(p, len, MADV_FREE) == 0)
			return;
		if (errno == EINVAL)
			atomic_store_explicit(&madv_free_unsupported, true, memory_order_relaxed);
	}
	(void)madvise(p, len, MADV_DONTNEED);
}

static size_t
page_round(size_t n)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	return (n + page - 1) / page * page;
}

void
hr_jarena_release(struct hr_jarena *a)
{
	unsigned i;

	if (a == NULL)
		return;
	if (current == a)
		current = NULL;
	i = a->index;
	if (a->big != NULL) {
		size_t keep = page_round(HR_JARENA_BIG_KEEP);
		unsigned b = a->big_index;

		POISON(a->big, a->big_used);
		if (a->big_used > keep)
			free_lazily(a->big + keep, a->big_used - keep);
		pthread_mutex_lock(&g.mu);
		if (a->big_used > g.big_touched[b])
			g.big_touched[b] = a->big_used;
		g.big_free_since_us[b] = NOT_SEEN_FREE;
		g.big_free[g.nbig_free++] = b;
		pthread_mutex_unlock(&g.mu);
	}
	POISON(a, a->used);
	pthread_mutex_lock(&g.mu);
	g.free_slots[g.nfree++] = i;
	pthread_mutex_unlock(&g.mu);
}

size_t
hr_jarena_trim(int64_t now_us, int64_t idle_us)
{
	unsigned idle[HR_JARENA_BIGS], nidle = 0, kept = 0;
	size_t bytes = 0;

	if (g.big_base == NULL)
		return 0;
	/* Take the idle slots off the free stack, so no tree can start in one
	 * while its pages go; madvise() runs without the lock. */
	pthread_mutex_lock(&g.mu);
	for (unsigned k = 0; k < g.nbig_free; k++) {
		unsigned b = g.big_free[k];

		if (g.big_touched[b] > 0 && g.big_free_since_us[b] == NOT_SEEN_FREE)
			g.big_free_since_us[b] = now_us; /* idle from this look on */
		if (g.big_touched[b] > 0 && now_us - g.big_free_since_us[b] >= idle_us)
			idle[nidle++] = b;
		else
			g.big_free[kept++] = b;
	}
	g.nbig_free = kept;
	pthread_mutex_unlock(&g.mu);
	for (unsigned k = 0; k < nidle; k++) {
		size_t len = page_round(g.big_touched[idle[k]]);

		(void)madvise(g.big_base + (size_t)idle[k] * HR_JARENA_BIG, len, MADV_DONTNEED);
		bytes += len;
	}
	/* Back at the bottom of the stack: the warm slots stay the first taken. */
	pthread_mutex_lock(&g.mu);
	memmove(g.big_free + nidle, g.big_free, g.nbig_free * sizeof(g.big_free[0]));
	for (unsigned k = 0; k < nidle; k++) {
		g.big_touched[idle[k]] = 0;
		g.big_free[k] = idle[k];
	}
	g.nbig_free += nidle;
	pthread_mutex_unlock(&g.mu);
	return bytes;
}

size_t
hr_jarena_held(void)
{
	size_t bytes = 0;

	pthread_mutex_lock(&g.mu);
	for (unsigned b = 0; b < HR_JARENA_BIGS; b++)
		bytes += page_round(g.big_touched[b]);
	pthread_mutex_unlock(&g.mu);
	return bytes;
}

bool
hr_jarena_contains(const void *p)
{
	return in_region(p);
}

bool
hr_jarena_overflowed(const struct hr_jarena *a)
{
	return a != NULL && a->overflowed;
}
