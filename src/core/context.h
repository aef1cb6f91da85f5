/* The context: options, callbacks, and the per-backend state (probed lazily). */
#ifndef AWQ_CORE_CONTEXT_H
#define AWQ_CORE_CONTEXT_H

#include "awq.h"
#include "backend.h"

#define AWQ_MAX_BACKENDS 4

struct awq_backend_slot {
    const struct awq_backend_ops *ops;
    int probed;                 /* init() has been called */
    int status;                 /* its result: 0, or why the backend is unusable */
    void *state;
    struct awq_errbuf why;      /* message when status < 0 */
};

struct awq_context {
    awq_context_options opt;
    struct awq_errbuf err;
    int n_backends;
    struct awq_backend_slot slots[AWQ_MAX_BACKENDS];
};

/* Logging and progress through the user's callbacks (no-ops without them). */
void awq_log(const struct awq_context *ctx, awq_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void awq_progress(const struct awq_context *ctx, const char *stage, double done, double total);
/* Nonzero when the user's cancel callback asks to stop. */
int awq_cancelled(const struct awq_context *ctx);

/* Probes backend slot i once; returns its status (0 or negative, detail in the slot's `why`). */
int awq_backend_probe(struct awq_context *ctx, int i);
/* Adds delta bytes to the device's memory accounting (peak tracked). */
void awq_device_account(struct awq_device *dev, int64_t delta);

/* Slot index of a backend name, or -1. */
int awq_backend_find(const struct awq_context *ctx, const char *name);

#endif
