/* classify.h - which kind a JSON body is (SPEC.md section 7, first match wins). */
#ifndef HR_CLASSIFY_H
#define HR_CLASSIFY_H

#include <jansson.h>

#include "hr/event.h"

/*
 * Classify `root` (borrowed). With a `hint` other than HR_PROVIDER_AUTO only
 * that provider's rules run, and a body none of them matches is that
 * provider's unknown kind (tavus.unknown, pailflow.unknown,
 * agenthuman.unknown). Non-objects are always unknown.
 */
enum hr_kind hr_classify(const json_t *root, enum hr_provider hint);

#endif
