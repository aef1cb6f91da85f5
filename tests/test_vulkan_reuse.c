/*
 * Recorded-once dispatches of the Vulkan backend (vk_queue.c): repeated identical ops replay one
 * recording, results stay right when buffers are freed and reallocated (handles and memory get
 * reused; recordings must not be), chains of replayed ops keep their order, the cache stays
 * bounded (and falls back to direct recording when every slot is pending), and the copy shader
 * that buf_copy uses on discrete GPUs copies exactly (forced on here). Exits 77 without Vulkan.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ops.h"
#include "testutil.h"
#include "../backends/vulkan/vk_internal.h"

static uint64_t rng;

static awq_device *open_vulkan(awq_context **ctx)
{
    ck_assert_int_eq(awq_context_create(NULL, ctx), 0);
    awq_device *dev = NULL;
    int st = awq_device_open(*ctx, "vulkan", -1, &dev);
    ck_assert_msg(st == 0, "open: %s", awq_context_last_error(*ctx));
    return dev;
}

static awq_buffer *upload(awq_device *dev, const float *h, size_t n)
{
    awq_buffer *b;
    ck_assert_int_eq(awq_buffer_create(dev, n * 4, &b), 0);
    ck_assert_int_eq(awq_buffer_write(b, 0, h, n * 4), 0);
    return b;
}

static void add(awq_device *dev, size_t n, awq_buffer *a, size_t ao, awq_buffer *b, awq_buffer *o, size_t oo)
{
    struct awq_add_args args = { n, { a, ao }, { b, 0 }, { o, oo } };
    ck_assert_msg(awq_op_add(dev, &args) == 0, "add: %s", awq_device_last_error(dev));
}

/* Live recordings that bind a buffer id not in ids[0..n). */
static int stale_recordings(const struct vk_dev *vd, const uint64_t *ids, int n)
{
    int stale = 0;
    for (int i = 0; i < vd->n_recs; i++) {
        const struct vk_rec *e = &vd->recs[i];
        for (uint32_t k = 0; e->live && k < e->key.n_args; k++) {
            int found = 0;
            for (int j = 0; j < n; j++)
                found |= e->key.id[k] == ids[j];
            stale += !found;
        }
    }
    return stale;
}

START_TEST(test_replayed)
{
    awq_context *ctx;
    awq_device *dev = open_vulkan(&ctx);
    struct vk_dev *vd = dev->impl;
    ck_assert(vd->reuse);
    size_t n = 3000;
    float *a = malloc(n * 4), *b = malloc(n * 4), *o = malloc(n * 4);
    tu_fill_uniform(&rng, a, n, -1, 1);
    tu_fill_uniform(&rng, b, n, -1, 1);
    awq_buffer *ba = upload(dev, a, n), *bb = upload(dev, b, n), *bo;
    ck_assert_int_eq(awq_buffer_create(dev, n * 4, &bo), 0);

    /* first occurrence: recorded into the frame; second: recorded once into the cache; then
     * replayed */
    struct vk_stats s0 = vd->stats;
    add(dev, n, ba, 0, bb, bo, 0);
    uint64_t disp = vd->stats.direct - s0.direct;
    ck_assert_msg(disp >= 1, "the first op recorded nothing into the frame");
    ck_assert_uint_eq(vd->stats.records, s0.records);
    add(dev, n, ba, 0, bb, bo, 0);
    uint64_t rec = vd->stats.records - s0.records;
    ck_assert_msg(rec == disp, "the second op recorded %llu of %llu dispatches", (unsigned long long)rec,
                  (unsigned long long)disp);
    ck_assert_uint_eq(vd->stats.replays, s0.replays);
    for (int r = 0; r < 10; r++) {
        /* new inputs each round: a replay reads the buffers' current contents */
        tu_fill_uniform(&rng, a, n, -1, 1);
        ck_assert_int_eq(awq_buffer_write(ba, 0, a, n * 4), 0);
        add(dev, n, ba, 0, bb, bo, 0);
        ck_assert_int_eq(awq_buffer_read(bo, 0, o, n * 4), 0);
        for (size_t i = 0; i < n; i++)
            ck_assert_msg(o[i] == a[i] + b[i], "round %d [%zu]: %g != %g", r, i, o[i], a[i] + b[i]);
    }
    ck_assert_msg(vd->stats.records - s0.records == rec, "identical ops were recorded again (%llu -> %llu)",
                  (unsigned long long)rec, (unsigned long long)(vd->stats.records - s0.records));
    ck_assert_uint_eq(vd->stats.replays - s0.replays, 10 * rec);
    ck_assert_uint_eq(vd->stats.direct - s0.direct, disp);

    /* a chain of replayed ops in one batch keeps its order: x <- x + b, eight times, no sync */
    ck_assert_int_eq(awq_buffer_write(bo, 0, a, n * 4), 0);
    awq_buffer *bt;
    ck_assert_int_eq(awq_buffer_create(dev, n * 4, &bt), 0);
    uint64_t r0 = vd->stats.records;
    for (int r = 0; r < 4; r++) {
        add(dev, n, bo, 0, bb, bt, 0);
        add(dev, n, bt, 0, bb, bo, 0);
    }
    ck_assert_uint_le(vd->stats.records - r0, 2 * rec);
    ck_assert_int_eq(awq_buffer_read(bo, 0, o, n * 4), 0);
    for (size_t i = 0; i < n; i++) {
        float x = a[i];
        for (int r = 0; r < 8; r++)
            x = x + b[i];
        ck_assert_msg(o[i] == x, "chain [%zu]: %g != %g", i, o[i], x);
    }
    awq_buffer_destroy(ba);
    awq_buffer_destroy(bb);
    awq_buffer_destroy(bo);
    awq_buffer_destroy(bt);
    awq_device_close(dev);
    awq_context_destroy(ctx);
    free(a);
    free(b);
    free(o);
}
END_TEST

START_TEST(test_free_realloc)
{
    awq_context *ctx;
    awq_device *dev = open_vulkan(&ctx);
    struct vk_dev *vd = dev->impl;
    size_t n = 2048;
    float *a = malloc(n * 4), *b = malloc(n * 4), *o = malloc(n * 4), *o2 = malloc(n * 4);
    VkBuffer seen[64];
    int n_seen = 0, reused = 0;
    for (int r = 0; r < 12; r++) {
        tu_fill_uniform(&rng, a, n, -2, 2);
        tu_fill_uniform(&rng, b, n, -2, 2);
        awq_buffer *ba = upload(dev, a, n), *bb = upload(dev, b, n), *bo, *bo2;
        ck_assert_int_eq(awq_buffer_create(dev, n * 4, &bo), 0);
        ck_assert_int_eq(awq_buffer_create(dev, n * 4, &bo2), 0);
        struct vk_buf *vb[4] = { ba->impl, bb->impl, bo->impl, bo2->impl };
        for (int k = 0; k < 4; k++) {
            for (int j = 0; j < n_seen; j++)
                reused |= seen[j] == vb[k]->buf;
            if (n_seen < 64)
                seen[n_seen++] = vb[k]->buf;
        }
        add(dev, n, ba, 0, bb, bo, 0);
        add(dev, n, ba, 0, bb, bo, 0);   /* cached from here on */
        /* an input freed (and a new one made, possibly at the same handle) while the op is queued */
        awq_buffer_destroy(bb);
        float *c = b;
        for (size_t i = 0; i < n; i++)
            c[i] = a[i] * 0.5f;
        awq_buffer *bc = upload(dev, c, n);
        add(dev, n, ba, 0, bc, bo2, 0);
        add(dev, n, ba, 0, bc, bo2, 0);
        ck_assert_int_eq(awq_buffer_read(bo2, 0, o2, n * 4), 0);
        ck_assert_int_eq(awq_buffer_read(bo, 0, o, n * 4), 0);
        for (size_t i = 0; i < n; i++)
            ck_assert_msg(o2[i] == a[i] + c[i], "round %d [%zu]: %g != %g", r, i, o2[i], a[i] + c[i]);
        uint64_t live[4] = { ((struct vk_buf *)ba->impl)->id, ((struct vk_buf *)bc->impl)->id,
                             ((struct vk_buf *)bo->impl)->id, ((struct vk_buf *)bo2->impl)->id };
        ck_assert_int_eq(stale_recordings(vd, live, 4), 0);
        awq_buffer_destroy(ba);
        awq_buffer_destroy(bc);
        awq_buffer_destroy(bo);
        awq_buffer_destroy(bo2);
        uint64_t internal[2] = { vd->dummy->id, vd->scratch ? vd->scratch->id : 0 };
        ck_assert_int_eq(stale_recordings(vd, internal, 2), 0);
    }
    if (!reused)
        printf("note: the driver never reused a buffer handle in this run\n");
    ck_assert_uint_gt(vd->stats.evictions, 0);
    awq_device_close(dev);
    awq_context_destroy(ctx);
    free(a);
    free(b);
    free(o);
    free(o2);
}
END_TEST

START_TEST(test_bounded)
{
    /* nothing submitted before the read: every recording stays pending, so the cache fills and
     * later dispatches are recorded straight into the frame */
    setenv("AWQ_VK_SUBMIT", "fd=100000,fb=1000000000000,idle=0", 1);
    awq_context *ctx;
    awq_device *dev = open_vulkan(&ctx);
    struct vk_dev *vd = dev->impl;
    /* Admission remembers one hash per slot of a VK_REC_SEEN table, so keys that share a slot
     * are never admitted; with this many keys ~20% are lost that way (±1.5%), which still leaves
     * far more than VK_REC_SLOTS to fill the cache. */
    int ops = VK_REC_SLOTS + 400;
    size_t stride = 64, n = (size_t)ops * stride;
    float *a = malloc(n * 4), *b = malloc(n * 4), *o = malloc(n * 4);
    tu_fill_uniform(&rng, a, n, -1, 1);
    tu_fill_uniform(&rng, b, n, -1, 1);
    awq_buffer *ba = upload(dev, a, n), *bb = upload(dev, b, stride), *bo;
    ck_assert_int_eq(awq_buffer_create(dev, n * 4, &bo), 0);
    ck_assert_int_eq(awq_buffer_write(bo, 0, a, n * 4), 0);
    ck_assert_int_eq(awq_device_synchronize(dev), 0);
    /* twice: the second pass caches (keys are admitted on their second occurrence) */
    for (int pass = 0; pass < 2; pass++)
        for (int k = 0; k < ops; k++)
            add(dev, 1 + (size_t)k % stride, ba, (size_t)k * stride * 4, bb, bo, (size_t)k * stride * 4);
    ck_assert_int_le(vd->n_recs, VK_REC_SLOTS);
    ck_assert_uint_ge(vd->stats.records, VK_REC_SLOTS);
    ck_assert_uint_ge(vd->stats.direct, (uint64_t)ops + 1);
    ck_assert_int_eq(awq_buffer_read(bo, 0, o, n * 4), 0);
    for (int k = 0; k < ops; k++)
        for (size_t i = 0; i < stride; i++) {
            size_t j = (size_t)k * stride + i;
            float want = i < 1 + (size_t)k % stride ? a[j] + b[i] : a[j];
            ck_assert_msg(o[j] == want, "op %d [%zu]: %g != %g", k, i, o[j], want);
        }
    /* once the frames completed, old recordings make room again */
    for (int k = 0; k < 40; k++)
        add(dev, 5, ba, 0, bb, bo, (size_t)k * stride * 4);
    uint64_t direct = vd->stats.direct, records = vd->stats.records;
    for (int k = 0; k < 40; k++)
        add(dev, 5, ba, 0, bb, bo, (size_t)k * stride * 4);
    ck_assert_uint_eq(vd->stats.direct, direct);
    ck_assert_uint_eq(vd->stats.records, records + 40);
    awq_buffer_destroy(ba);
    awq_buffer_destroy(bb);
    awq_buffer_destroy(bo);
    awq_device_close(dev);
    awq_context_destroy(ctx);
    unsetenv("AWQ_VK_SUBMIT");
    free(a);
    free(b);
    free(o);
}
END_TEST

START_TEST(test_copy_shader)
{
    setenv("AWQ_VK_COPY", "shader", 1);
    setenv("AWQ_VK_MAX_RANGE", "65536", 1);   /* several chunks per copy */
    awq_context *ctx;
    awq_device *dev = open_vulkan(&ctx);
    struct vk_dev *vd = dev->impl;
    ck_assert(vd->copy_shader);
    size_t n = 1 << 20;
    unsigned char *h = malloc(n), *want = malloc(n), *got = malloc(n);
    for (size_t i = 0; i < n; i++)
        h[i] = (unsigned char)(tu_next(&rng) >> 56);
    awq_buffer *s, *t;
    ck_assert_int_eq(awq_buffer_create(dev, n, &s), 0);
    ck_assert_int_eq(awq_buffer_create(dev, n, &t), 0);
    ck_assert_int_eq(awq_buffer_write(s, 0, h, n), 0);
    memset(want, 0, n);
    ck_assert_int_eq(awq_op_zero(dev, (struct awq_tref){ t, 0 }, n), 0);
    /* aligned, same misalignment mod 16 (head + tail), relative misalignment, small, odd sizes */
    static const size_t c[][3] = { { 0, 0, 300000 },  { 3, 400019, 200005 }, { 5, 700008, 100000 },
                                   { 16, 900000, 100 }, { 64, 820032, 4096 }, { 1, 960001, 8191 } };
    uint64_t d0 = vd->stats.records + vd->stats.replays + vd->stats.direct;
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        ck_assert_int_eq(awq_op_copy(dev, (struct awq_tref){ s, c[i][0] }, (struct awq_tref){ t, c[i][1] }, c[i][2]), 0);
        memcpy(want + c[i][1], h + c[i][0], c[i][2]);
    }
    ck_assert_msg(vd->stats.records + vd->stats.replays + vd->stats.direct - d0 >= 5,
                  "the copy shader did not run");
    ck_assert_int_eq(awq_buffer_read(t, 0, got, n), 0);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(got[i] == want[i], "byte %zu: %u != %u", i, got[i], want[i]);
    /* overlapping ranges of one buffer, both directions */
    ck_assert_int_eq(awq_op_copy(dev, (struct awq_tref){ t, 1000 }, (struct awq_tref){ t, 1016 }, 500000), 0);
    memmove(want + 1016, want + 1000, 500000);
    ck_assert_int_eq(awq_op_copy(dev, (struct awq_tref){ t, 90016 }, (struct awq_tref){ t, 90000 }, 300000), 0);
    memmove(want + 90000, want + 90016, 300000);
    ck_assert_int_eq(awq_buffer_read(t, 0, got, n), 0);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(got[i] == want[i], "overlap: byte %zu: %u != %u", i, got[i], want[i]);
    awq_buffer_destroy(s);
    awq_buffer_destroy(t);
    awq_device_close(dev);
    awq_context_destroy(ctx);
    unsetenv("AWQ_VK_COPY");
    unsetenv("AWQ_VK_MAX_RANGE");
    free(h);
    free(want);
    free(got);
}
END_TEST

/* Malformed tuning variables stop the open with a message naming the entry (never ignored). */
START_TEST(test_bad_tuning_env)
{
    static const char *const cases[][3] = {
        { "AWQ_VK_SUBMIT", "fd=64,idel=1", "'idel=1'" },
        { "AWQ_VK_SUBMIT", "spin=-5", "'spin=-5'" },
        { "AWQ_VK_TUNE", "bm=48", "'bm=48'" },
        { "AWQ_VK_TUNE", "nosuch=64", "'nosuch=64'" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        setenv(cases[i][0], cases[i][1], 1);
        awq_context *ctx;
        ck_assert_int_eq(awq_context_create(NULL, &ctx), 0);
        awq_device *dev = NULL;
        int st = awq_device_open(ctx, "vulkan", -1, &dev);
        const char *msg = awq_context_last_error(ctx);
        unsetenv(cases[i][0]);
        ck_assert_msg(st == AWQ_ERR_INVALID_ARGUMENT && !dev, "%s=%s: status %d", cases[i][0], cases[i][1], st);
        ck_assert_msg(strstr(msg, cases[i][0]) && strstr(msg, cases[i][2]), "message: %s", msg);
        awq_context_destroy(ctx);
    }
}
END_TEST

int main(void)
{
    rng = tu_seed();
    setenv("AWQ_VK_REUSE", "1", 1);   /* what this suite is about, whatever the caller's setting */
    awq_context *ctx;
    if (awq_context_create(NULL, &ctx) != 0)
        return 99;
    int n = -1;
    for (int i = 0; i < awq_backend_count(ctx); i++)
        if (strcmp(awq_backend_name(ctx, i), "vulkan") == 0)
            n = awq_backend_device_count(ctx, i);
    if (n <= 0) {
        printf("SKIP: no usable Vulkan device: %s\n", awq_context_last_error(ctx));
        awq_context_destroy(ctx);
        return 77;
    }
    awq_context_destroy(ctx);
    Suite *s = suite_create("vulkan-reuse");
    TCase *tc = tcase_create("reuse");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_replayed);
    tcase_add_test(tc, test_free_realloc);
    tcase_add_test(tc, test_bounded);
    tcase_add_test(tc, test_copy_shader);
    tcase_add_test(tc, test_bad_tuning_env);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_VERBOSE);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
