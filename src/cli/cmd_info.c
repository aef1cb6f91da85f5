/* awq info: what a model directory or a .safetensors file holds — files, tensor count, parameters
 * and bytes by dtype, the tensors, the config.json summary, the quantization config and the
 * safetensors __metadata__ — as text or (--json) as one JSON object. */
#include "config.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "format/safetensors.h"

#define CMD "info"
#define HEAD_TAIL 5   /* tensors shown at each end without --tensors */

/* The config.json fields of the summary, in display order. */
static const char *const config_keys[] = {
    "model_type", "architectures", "hidden_size", "intermediate_size", "num_hidden_layers",
    "num_attention_heads", "num_key_value_heads", "head_dim", "vocab_size", "max_position_embeddings",
    "tie_word_embeddings", "torch_dtype",
};

struct dtype_stat {
    size_t tensors, params, bytes;
};

struct info {
    const char *path;
    char *dir;                    /* where config.json is looked for */
    struct awq_safetensors *st;
    struct dtype_stat by_dtype[AWQ_DTYPE_COUNT];
    size_t params, bytes, file_bytes;
    long layers;                  /* from tensor names "...layers.N...", -1 if none */
    size_t packed;                /* tensors named *.qweight */
    json_t *config;               /* config.json, or NULL */
    json_t *quant;                /* borrowed from config, or owned from quant_config.json */
    int quant_owned;
    const char *quant_source;
};

static void usage(FILE *f)
{
    fprintf(f, "usage: awq info [--tensors] [--json] PATH\n\n"
               "Shows what a model holds. PATH is a model directory (model.safetensors or\n"
               "model.safetensors.index.json with its shards), a .safetensors file, or an index .json.\n\n"
               "Prints the files, the tensor count, parameters and bytes (by dtype), the first and last\n"
               "tensors, the config.json summary, the quantization config (config.json\n"
               "\"quantization_config\" or an AutoAWQ quant_config.json) and the safetensors __metadata__.\n\n"
               "options:\n"
               "  --tensors   list every tensor (name, dtype, shape, MB)\n"
               "  --json      print the same as one JSON object\n"
               "  -h, --help  this text\n\n"
               "exit status: 0 success, 1 the model cannot be read, 2 bad usage\n");
}

/* 1234567 -> "1,234,567" */
static const char *grouped(size_t v, char *buf, size_t n)
{
    char tmp[32];
    int len = snprintf(tmp, sizeof tmp, "%zu", v);
    size_t o = 0;
    for (int i = 0; i < len && o + 2 < n; i++) {
        if (i && (len - i) % 3 == 0)
            buf[o++] = ',';
        buf[o++] = tmp[i];
    }
    buf[o] = '\0';
    return buf;
}

static const char *shape_str(const struct awq_st_tensor *t, char *buf, size_t n)
{
    size_t o = 0;
    o += (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < t->ndim && o < n; d++)
        o += (size_t)snprintf(buf + o, n - o, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
    if (o < n)
        snprintf(buf + o, n - o, "]");
    return buf;
}

static double mb(size_t bytes)
{
    return (double)bytes / 1e6;
}

static char *model_dir(const char *path)
{
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
        return strdup(path);
    const char *slash = strrchr(path, '/');
    if (!slash)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

/* Reads DIR/name as JSON; NULL if absent (silently) or malformed (with a warning). */
static json_t *load_json(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (!p)
        return NULL;
    snprintf(p, n, "%s/%s", dir, name);
    json_t *j = NULL;
    struct stat sb;
    if (stat(p, &sb) == 0) {
        json_error_t je;
        j = json_load_file(p, 0, &je);
        if (!j)
            cli_warn(CMD, "%s: not valid JSON: %s (line %d, column %d); ignored", p, je.text, je.line, je.column);
        else if (!json_is_object(j)) {
            cli_warn(CMD, "%s: not a JSON object; ignored", p);
            json_decref(j);
            j = NULL;
        }
    }
    free(p);
    return j;
}

/* "model.layers.12.mlp..." -> 12; -1 when the name has no "layers.N." part. */
static long layer_index(const char *name)
{
    const char *p = strstr(name, "layers.");
    while (p) {
        const char *q = p + 7;
        char *end;
        if (*q >= '0' && *q <= '9') {
            long v = strtol(q, &end, 10);
            if (*end == '.' || *end == '\0')
                return v;
        }
        p = strstr(p + 1, "layers.");
    }
    return -1;
}

static void gather(struct info *in)
{
    in->layers = -1;
    size_t n = awq_safetensors_count(in->st);
    for (size_t i = 0; i < n; i++) {
        const struct awq_st_tensor *t = awq_safetensors_at(in->st, i);
        struct dtype_stat *d = &in->by_dtype[t->dtype];
        d->tensors++;
        d->params += t->numel;
        d->bytes += t->nbytes;
        in->params += t->numel;
        in->bytes += t->nbytes;
        long l = layer_index(t->name);
        if (l >= 0 && l + 1 > in->layers)
            in->layers = l + 1;
        size_t len = strlen(t->name);
        in->packed += len > 8 && !strcmp(t->name + len - 8, ".qweight");
    }
    for (size_t i = 0; i < awq_safetensors_shards(in->st); i++)
        in->file_bytes += awq_safetensors_shard_size(in->st, i);

    in->config = load_json(in->dir, "config.json");
    json_t *q = in->config ? json_object_get(in->config, "quantization_config") : NULL;
    if (q && json_is_object(q)) {
        in->quant = q;
        in->quant_source = "config.json";
    } else if ((q = load_json(in->dir, "quant_config.json"))) {
        in->quant = q;
        in->quant_owned = 1;
        in->quant_source = "quant_config.json";
    }
}

/* ---- text ------------------------------------------------------------------------------- */

static void print_tensor_rows(const struct info *in, size_t from, size_t to, int width)
{
    char shape[160];
    for (size_t i = from; i < to; i++) {
        const struct awq_st_tensor *t = awq_safetensors_at(in->st, i);
        printf("  %-*s  %-5s %-22s %10.3f\n", width, t->name, awq_dtype_name(t->dtype),
               shape_str(t, shape, sizeof shape), mb(t->nbytes));
    }
}

static void print_json_value(const json_t *v)
{
    if (json_is_string(v)) {
        printf("%s", json_string_value(v));
        return;
    }
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    printf("%s", s ? s : "?");
    free(s);
}

static void print_text(const struct info *in, int all)
{
    char a[32], b[32];
    size_t n = awq_safetensors_count(in->st), nshards = awq_safetensors_shards(in->st);
    printf("model         %s\n", in->path);
    const char *index = awq_safetensors_index_path(in->st);
    if (index)
        printf("index         %s\n", index);
    printf("files         %zu (%s bytes)\n", nshards, grouped(in->file_bytes, a, sizeof a));
    for (size_t i = 0; i < nshards; i++)
        printf("  %s  %s bytes\n", awq_safetensors_shard_path(in->st, i),
               grouped(awq_safetensors_shard_size(in->st, i), a, sizeof a));
    printf("tensors       %zu\n", n);
    printf("parameters    %s (%.2f M)\n", grouped(in->params, a, sizeof a), (double)in->params / 1e6);
    printf("tensor bytes  %s (%.2f MB)\n", grouped(in->bytes, a, sizeof a), mb(in->bytes));
    if (in->layers >= 0)
        printf("layers        %ld (from tensor names)\n", in->layers);
    if (in->packed)
        printf("packed 4-bit  %zu linears (.qweight/.qzeros/.scales)\n", in->packed);

    printf("\nby dtype:\n  %-5s %8s %16s %12s\n", "dtype", "tensors", "parameters", "MB");
    for (int d = 0; d < AWQ_DTYPE_COUNT; d++)
        if (in->by_dtype[d].tensors)
            printf("  %-5s %8zu %16s %12.3f\n", awq_dtype_name((awq_dtype)d), in->by_dtype[d].tensors,
                   grouped(in->by_dtype[d].params, b, sizeof b), mb(in->by_dtype[d].bytes));

    int width = 4;
    for (size_t i = 0; i < n; i++) {
        if (!all && i >= HEAD_TAIL && i + HEAD_TAIL < n)
            continue;
        int len = (int)strlen(awq_safetensors_at(in->st, i)->name);
        width = len > width ? (len > 64 ? 64 : len) : width;
    }
    if (all || n <= 2 * HEAD_TAIL)
        printf("\ntensors:\n");
    else
        printf("\ntensors (first %d and last %d of %zu; --tensors lists all):\n", HEAD_TAIL, HEAD_TAIL, n);
    printf("  %-*s  %-5s %-22s %10s\n", width, "name", "dtype", "shape", "MB");
    if (all || n <= 2 * HEAD_TAIL)
        print_tensor_rows(in, 0, n, width);
    else {
        print_tensor_rows(in, 0, HEAD_TAIL, width);
        printf("  ... %zu more\n", n - 2 * HEAD_TAIL);
        print_tensor_rows(in, n - HEAD_TAIL, n, width);
    }

    if (in->config) {
        printf("\nconfig.json:\n");
        for (size_t k = 0; k < sizeof config_keys / sizeof config_keys[0]; k++) {
            json_t *v = json_object_get(in->config, config_keys[k]);
            if (!v)
                continue;
            printf("  %-24s ", config_keys[k]);
            print_json_value(v);
            printf("\n");
        }
    } else
        printf("\nconfig.json:  (none in %s)\n", in->dir);

    if (in->quant) {
        printf("\nquantization (%s):\n", in->quant_source);
        const char *key;
        json_t *v;
        json_object_foreach(in->quant, key, v) {
            printf("  %-24s ", key);
            print_json_value(v);
            printf("\n");
        }
    } else
        printf("\nquantization: none (unquantized weights)\n");

    size_t nm = awq_safetensors_meta_count(in->st);
    if (nm) {
        printf("\n__metadata__:\n");
        for (size_t i = 0; i < nm; i++) {
            const char *k, *v;
            awq_safetensors_meta_at(in->st, i, &k, &v);
            printf("  %-24s %s\n", k, v);
        }
    } else
        printf("\n__metadata__: (none)\n");
}

/* ---- JSON ------------------------------------------------------------------------------- */

static json_t *tensor_json(const struct awq_st_tensor *t)
{
    json_t *shape = json_array();
    for (int d = 0; d < t->ndim; d++)
        json_array_append_new(shape, json_integer((json_int_t)t->shape[d]));
    return json_pack("{s:s, s:s, s:o, s:I, s:I, s:i}", "name", t->name, "dtype", awq_dtype_name(t->dtype),
                     "shape", shape, "parameters", (json_int_t)t->numel, "bytes", (json_int_t)t->nbytes,
                     "file", t->shard);
}

static json_t *tensor_range(const struct info *in, size_t from, size_t to)
{
    json_t *a = json_array();
    for (size_t i = from; i < to; i++)
        json_array_append_new(a, tensor_json(awq_safetensors_at(in->st, i)));
    return a;
}

static int print_json(const struct info *in, int all)
{
    size_t n = awq_safetensors_count(in->st);
    json_t *root = json_object();
    json_object_set_new(root, "path", json_string(in->path));
    const char *index = awq_safetensors_index_path(in->st);
    json_object_set_new(root, "index", index ? json_string(index) : json_null());
    json_t *files = json_array();
    for (size_t i = 0; i < awq_safetensors_shards(in->st); i++)
        json_array_append_new(files, json_pack("{s:s, s:I}", "path", awq_safetensors_shard_path(in->st, i), "bytes",
                                               (json_int_t)awq_safetensors_shard_size(in->st, i)));
    json_object_set_new(root, "files", files);
    json_object_set_new(root, "tensor_count", json_integer((json_int_t)n));
    json_object_set_new(root, "parameters", json_integer((json_int_t)in->params));
    json_object_set_new(root, "bytes", json_integer((json_int_t)in->bytes));
    json_object_set_new(root, "layers", in->layers >= 0 ? json_integer(in->layers) : json_null());
    json_object_set_new(root, "packed_linears", json_integer((json_int_t)in->packed));
    json_t *dt = json_object();
    for (int d = 0; d < AWQ_DTYPE_COUNT; d++)
        if (in->by_dtype[d].tensors)
            json_object_set_new(dt, awq_dtype_name((awq_dtype)d),
                                json_pack("{s:I, s:I, s:I}", "tensors", (json_int_t)in->by_dtype[d].tensors,
                                          "parameters", (json_int_t)in->by_dtype[d].params, "bytes",
                                          (json_int_t)in->by_dtype[d].bytes));
    json_object_set_new(root, "dtypes", dt);
    if (all || n <= 2 * HEAD_TAIL)
        json_object_set_new(root, "tensors", tensor_range(in, 0, n));
    else {
        json_object_set_new(root, "first_tensors", tensor_range(in, 0, HEAD_TAIL));
        json_object_set_new(root, "last_tensors", tensor_range(in, n - HEAD_TAIL, n));
    }
    if (in->config) {
        json_t *c = json_object();
        for (size_t k = 0; k < sizeof config_keys / sizeof config_keys[0]; k++) {
            json_t *v = json_object_get(in->config, config_keys[k]);
            if (v)
                json_object_set(c, config_keys[k], v);
        }
        json_object_set_new(root, "config", c);
    } else
        json_object_set_new(root, "config", json_null());
    json_object_set(root, "quantization_config", in->quant ? in->quant : json_null());
    json_object_set_new(root, "quantization_source", in->quant_source ? json_string(in->quant_source) : json_null());
    json_t *meta = json_object();
    for (size_t i = 0; i < awq_safetensors_meta_count(in->st); i++) {
        const char *k, *v;
        awq_safetensors_meta_at(in->st, i, &k, &v);
        json_object_set_new(meta, k, json_string(v));
    }
    json_object_set_new(root, "metadata", meta);
    int rc = json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(root);
    putchar('\n');
    return rc;
}

int awq_cmd_info(int argc, char **argv)
{
    const char *path = NULL;
    int all = 0, as_json = 0;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--tensors"))
            all = 1;
        else if (!strcmp(argv[i], "--json"))
            as_json = 1;
        else if (!strcmp(argv[i], "--")) {
            if (i + 1 < argc && !path)
                path = argv[++i];
            if (i + 1 < argc) {
                cli_error(CMD, "one PATH only ('%s' is extra)", argv[i + 1]);
                return 2;
            }
        } else if (argv[i][0] == '-' && argv[i][1]) {
            cli_error(CMD, "unknown option '%s' (see awq info --help)", argv[i]);
            return 2;
        } else if (path) {
            cli_error(CMD, "one PATH only ('%s' is extra)", argv[i]);
            return 2;
        } else
            path = argv[i];
    }
    if (!path) {
        cli_error(CMD, "no model given");
        usage(stderr);
        return 2;
    }

    struct info in;
    memset(&in, 0, sizeof in);
    in.path = path;
    struct awq_errbuf err = { 0, "" };
    int rc = awq_safetensors_open(path, &in.st, &err);
    if (rc < 0) {
        /* the library's message usually starts with the (more precise) file name already */
        if (!strncmp(err.msg, path, strlen(path)))
            cli_error(CMD, "%s (%s)", err.msg, awq_strerror(rc));
        else
            cli_error(CMD, "%s: %s (%s)", path, err.msg, awq_strerror(rc));
        return 1;
    }
    if (!(in.dir = model_dir(path))) {
        cli_error(CMD, "out of memory");
        awq_safetensors_close(in.st);
        return 1;
    }
    gather(&in);
    int out = 0;
    if (as_json)
        out = print_json(&in, all) ? 1 : 0;
    else
        print_text(&in, all);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        cli_error(CMD, "writing the output failed: %s", strerror(errno));
        out = 1;
    }
    if (in.quant_owned)
        json_decref(in.quant);
    json_decref(in.config);
    free(in.dir);
    awq_safetensors_close(in.st);
    return out;
}
