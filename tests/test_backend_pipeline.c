/*
 * The AWQ pipeline gives the same result on every backend: `awq quantize` of the reference model
 * (G = 32, 32 calibration documents to keep it quick) on each usable GPU-capable backend chooses
 * the same scale ratios as on the CPU backend, and the checkpoints it writes score within 0.01
 * perplexity of the CPU's on the first 400 lines of the evaluation text (scored on the CPU, so
 * only the quantization decisions differ). Skips (77) without AWQ_TEST_DATA or without any
 * non-CPU device. Runs without fork (PoCL, see CI-NOTES).
 */
#include "config.h"

#include <check.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "awq.h"
#include "testutil.h"

static char *model_dir, *calib, *tmp, eval_part[600];
static json_t *cpu_report;
static double cpu_ppl;

static json_t *quantize_on(awq_context *ctx, const char *backend, const char *out)
{
    awq_device *dev;
    ck_assert_msg(awq_device_open(ctx, backend, -1, &dev) == 0, "%s: %s", backend, awq_context_last_error(ctx));
    awq_quantize_options o;
    awq_quantize_options_init(&o);
    o.group_size = 32;
    o.n_samples = 32;
    o.calib_path = calib;
    awq_quantize_report *rep;
    int st = awq_quantize(dev, model_dir, out, &o, &rep);
    ck_assert_msg(st == 0, "quantize on %s: %s", backend, awq_device_last_error(dev));
    json_t *j = json_loads(awq_quantize_report_json(rep), 0, NULL);
    ck_assert_ptr_nonnull(j);
    awq_quantize_report_destroy(rep);
    awq_device_close(dev);
    return j;
}

static double ppl_on_cpu(awq_context *ctx, const char *dir)
{
    awq_device *dev;
    ck_assert_int_eq(awq_device_open(ctx, "cpu", 0, &dev), 0);
    awq_model *m;
    ck_assert_msg(awq_model_load(dev, dir, NULL, &m) == 0, "%s", awq_device_last_error(dev));
    awq_perplexity p;
    ck_assert_msg(awq_model_perplexity(m, eval_part, 512, &p) == 0, "%s", awq_model_last_error(m));
    awq_model_destroy(m);
    awq_device_close(dev);
    return p.ppl;
}

/* Every chosen ratio of report a equals b's. */
static void same_ratios(const char *backend, json_t *a, json_t *b)
{
    json_t *la = json_object_get(a, "layers"), *lb = json_object_get(b, "layers");
    ck_assert_int_eq(json_array_size(la), json_array_size(lb));
    int compared = 0;
    for (size_t i = 0; i < json_array_size(la); i++) {
        json_t *sa = json_object_get(json_array_get(la, i), "scales");
        json_t *sb = json_object_get(json_array_get(lb, i), "scales");
        const char *g;
        json_t *v;
        json_object_foreach(sa, g, v) {
            double ra = json_real_value(json_object_get(v, "ratio"));
            double rb = json_real_value(json_object_get(json_object_get(sb, g), "ratio"));
            ck_assert_msg(fabs(ra - rb) < 1e-6, "%s chose ratio %.2f for %s of block %zu, the CPU %.2f", backend, rb,
                          g, i, ra);
            compared++;
        }
    }
    ck_assert_int_gt(compared, 0);
}

static void check_backend(const char *backend)
{
    awq_context *ctx;
    ck_assert_int_eq(awq_context_create(NULL, &ctx), 0);
    int slot = -1;
    for (int b = 0; b < awq_backend_count(ctx); b++)
        if (!strcmp(awq_backend_name(ctx, b), backend))
            slot = b;
    if (slot < 0 || awq_backend_device_count(ctx, slot) <= 0) {
        fprintf(stderr, "%s: not available here, skipped\n", backend);
        awq_context_destroy(ctx);
        return;
    }
    char out[700];
    snprintf(out, sizeof out, "%s/%s", tmp, backend);
    json_t *rep = quantize_on(ctx, backend, out);
    same_ratios(backend, cpu_report, rep);
    double p = ppl_on_cpu(ctx, out);
    fprintf(stderr, "%s: perplexity %.4f (cpu %.4f)\n", backend, p, cpu_ppl);
    ck_assert_msg(fabs(p - cpu_ppl) <= 0.01, "%s: perplexity %.4f vs the CPU's %.4f", backend, p, cpu_ppl);
    json_decref(rep);
    awq_context_destroy(ctx);
}

START_TEST(test_cuda) { check_backend("cuda"); }
END_TEST
START_TEST(test_opencl) { check_backend("opencl"); }
END_TEST
START_TEST(test_vulkan) { check_backend("vulkan"); }
END_TEST

/* The first 400 lines of the evaluation text, in the temporary directory. */
static int write_eval_part(const char *eval)
{
    FILE *in = fopen(eval, "r");
    snprintf(eval_part, sizeof eval_part, "%s/eval-part.txt", tmp);
    FILE *out = fopen(eval_part, "w");
    char line[65536];
    for (int i = 0; in && out && i < 400 && fgets(line, sizeof line, in); i++)
        fputs(line, out);
    int ok = in && out;
    if (in)
        fclose(in);
    if (out && fclose(out) != 0)
        ok = 0;
    return ok ? 0 : -1;
}

static int any_gpu_backend(void)
{
    awq_context *ctx;
    if (awq_context_create(NULL, &ctx) < 0)
        return 0;
    int found = 0;
    for (int b = 0; b < awq_backend_count(ctx); b++)
        if (strcmp(awq_backend_name(ctx, b), "cpu") && awq_backend_device_count(ctx, b) > 0)
            found = 1;
    awq_context_destroy(ctx);
    return found;
}

int main(void)
{
    model_dir = tu_data_path("models/stories260K");
    calib = tu_data_path("data/tinystories-calib.txt");
    char *eval = tu_data_path("data/tinystories-eval.txt");
    if (!model_dir) {
        printf("SKIP: AWQ_TEST_DATA unset\n");
        return 77;
    }
    if (!any_gpu_backend()) {
        printf("SKIP: no non-CPU device\n");
        return 77;
    }
    tmp = tu_tmpdir("backends");
    if (!tmp || write_eval_part(eval) < 0)
        return 99;
    awq_context *ctx;
    awq_context_create(NULL, &ctx);
    char out[700];
    snprintf(out, sizeof out, "%s/cpu", tmp);
    /* the CPU reference, outside Check so every backend test compares against it */
    awq_device *dev;
    awq_device_open(ctx, "cpu", 0, &dev);
    awq_quantize_options o;
    awq_quantize_options_init(&o);
    o.group_size = 32;
    o.n_samples = 32;
    o.calib_path = calib;
    awq_quantize_report *rep;
    if (awq_quantize(dev, model_dir, out, &o, &rep) != 0) {
        fprintf(stderr, "cpu quantize: %s\n", awq_device_last_error(dev));
        return 99;
    }
    cpu_report = json_loads(awq_quantize_report_json(rep), 0, NULL);
    awq_quantize_report_destroy(rep);
    awq_device_close(dev);
    awq_context_destroy(ctx);
    awq_context_create(NULL, &ctx);
    awq_device_open(ctx, "cpu", 0, &dev);
    awq_model *m;
    awq_perplexity p;
    if (awq_model_load(dev, out, NULL, &m) != 0 || awq_model_perplexity(m, eval_part, 512, &p) != 0)
        return 99;
    cpu_ppl = p.ppl;
    awq_model_destroy(m);
    awq_device_close(dev);
    awq_context_destroy(ctx);

    Suite *s = suite_create("backend-pipeline");
    TCase *tc = tcase_create("quantize");
    tcase_set_timeout(tc, 1800);
    tcase_add_test(tc, test_cuda);
    tcase_add_test(tc, test_opencl);
    tcase_add_test(tc, test_vulkan);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    json_decref(cpu_report);
    tu_rmtree(tmp);
    free(tmp);
    free(model_dir);
    free(calib);
    free(eval);
    return failed ? 1 : 0;
}
