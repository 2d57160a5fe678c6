/* kinds_int.h - the shorthand the descriptor tables (kinds.c, kinds_daily.c) are written in. */
#ifndef HR_KINDS_INT_H
#define HR_KINDS_INT_H

#include <stddef.h>

#include "hr/schema.h"

#define REQ      HR_F_REQUIRED
#define NULLABLE HR_F_NULLABLE

/* One table line; most fields have neither choices nor sub-schema. */
// clang-format off
#define F(key, type, T, member, flags, role) \
	{ key, type, offsetof(T, member), flags, role, NULL, NULL }
#define FE(key, T, member, flags, role, choices) \
	{ key, HR_T_ENUM, offsetof(T, member), flags, role, choices, NULL }
#define FS(key, type, T, member, flags, sub) \
	{ key, type, offsetof(T, member), flags, HR_R_NONE, NULL, sub }
#define END { NULL, 0, 0, 0, HR_R_NONE, NULL, NULL }
// clang-format on

#endif
