/*
** Naming the stacks of traced events (see stacks.h).
*/
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "../cmd/common.h"
#include "../output/json.h"
#include "../output/strmap.h"
#include "../record/bpfglue.h"
#include "stacks.h"

_Static_assert(LS_RAW_NATIVE == LJ_RAW_NATIVE && LS_RAW_FUNC == LJ_RAW_FUNC,
               "raw frame kinds differ");
_Static_assert(LJ_MAX_OBJECTS <= LS_MAX_OBJS, "too many LuaJIT objects");

/* What naming needs besides the VMs in tt->t. */
static int prepare(struct ttarget *tt, int kernel_names)
{
  if (!(tt->sym = lj_symbolizer_new(tt->pid, &tt->t)) ||
      !(tt->uw = unwinder_new(tt->pid)) ||
      !(tt->frames = calloc(TSTACK_MAX, sizeof(*tt->frames))) ||
      !(tt->raw = calloc(LS_MAX_FRAMES, sizeof(*tt->raw)))) {
    die_msg("out of memory");
    ttarget_close(tt);
    return -1;
  }
  /* Reading kallsyms takes about 0.1 s: only for who names kernel frames. */
  if (kernel_names) tt->ks = ksyms_load();
  return 0;
}

int ttarget_open(struct ttarget *tt, pid_t pid, int kernel_names)
{
  char why[512];
  memset(tt, 0, sizeof(*tt));
  tt->pid = pid;
  if (lj_discover(pid, &tt->t, why, sizeof(why))) {
    die_msg("%s", why);
    return -1;
  }
  return prepare(tt, kernel_names);
}

int ttarget_open_found(struct ttarget *tt, const struct lj_target *t,
                       int kernel_names)
{
  memset(tt, 0, sizeof(*tt));
  tt->pid = t->pid;
  tt->t = *t;
  if (!(tt->t.vms = malloc(t->nvms * sizeof(*t->vms)))) {
    die_msg("out of memory");
    return -1;
  }
  memcpy(tt->t.vms, t->vms, t->nvms * sizeof(*t->vms));
  return prepare(tt, kernel_names);
}

void ttarget_close(struct ttarget *tt)
{
  lj_symbolizer_free(tt->sym);
  unwinder_free(tt->uw);
  ksyms_free(tt->ks);
  free(tt->frames);
  free(tt->raw);
  lj_target_free(&tt->t);
  memset(tt, 0, sizeof(*tt));
}

int ttarget_push(const struct ttarget *tt, int procs_fd, int vms_fd)
{
  return bpfglue_push_target(procs_fd, vms_fd, &tt->t);
}

static const struct lj_vm *vm_of(const struct ttarget *tt, uint64_t dispatch)
{
  for (size_t i = 0; i < tt->t.nvms; i++)
    if (tt->t.vms[i].dispatch == dispatch) return &tt->t.vms[i];
  return NULL;
}

size_t stack_splice(const struct lj_target *t, const uint64_t *pcs, size_t np)
{
  for (size_t i = 0; i < np; i++)
    for (size_t v = 0; v < t->nvms; v++)
      if (pcs[i] >= t->vms[v].code_lo && pcs[i] < t->vms[v].code_hi) return i;
  return np;
}

static void from_lj(struct tframe *f, const struct lj_frame *lf)
{
  f->kind = lj_kind_name(lf->kind);
  snprintf(f->name, sizeof(f->name), "%s", lf->name);
  snprintf(f->chunk, sizeof(f->chunk), "%s", lf->chunk);
  f->line = lf->line;
  lj_frame_format(lf, f->str, sizeof(f->str));
}

static void marker(struct tframe *f, const char *s)
{
  f->kind = "vm";
  snprintf(f->name, sizeof(f->name), "%s", s);
  f->chunk[0] = 0;
  f->line = -1;
  snprintf(f->str, sizeof(f->str), "%s", s);
}

static void native(struct ttarget *tt, struct tframe *f, uint64_t pc)
{
  struct lj_rawframe rf = {.kind = LJ_RAW_NATIVE, .pc = pc};
  struct lj_frame lf;
  lj_symbolize(tt->sym, &tt->t.vms[0], &rf, 1, &lf); /* any VM: for layout */
  from_lj(f, &lf);
}

/* The Lua frames of s, root first, at out. Returns how many. */
static size_t lua_frames(struct ttarget *tt, const struct ls_sample *s,
                         int line_mode, struct tframe *out)
{
  struct lj_rawframe *raw = tt->raw;
  const struct lj_vm *vm;
  size_t n = 0, nf = s->nframes < LS_MAX_FRAMES ? s->nframes : LS_MAX_FRAMES;
  if (s->status != LS_WALKED || !(vm = vm_of(tt, s->dispatch))) return 0;
  for (size_t i = 0; i < nf; i++) {
    const struct ls_frame *f = &s->frames[i];
    raw[i] = (struct lj_rawframe){.kind = f->kind,
                                  .ftype = f->ftype,
                                  .aux = f->aux,
                                  .fn = f->fn,
                                  .pc = f->pc,
                                  .L = f->L};
  }
  /* Named after the call site, as record and dump do. */
  for (size_t i = 0; i + 1 < nf; i++)
    if (raw[i].kind == LJ_RAW_FUNC && raw[i + 1].kind == LJ_RAW_FUNC &&
        raw[i + 1].L == raw[i].L) {
      raw[i].callfn = raw[i + 1].fn;
      raw[i].callpc = raw[i + 1].pc;
    }
  if (s->partial != LS_OK && s->partial <= LS_PARTIAL_LOOP) {
    char buf[64];
    snprintf(buf, sizeof(buf), "[partial: %s]",
             lj_partial_name((enum lj_partial)s->partial));
    marker(&out[n++], buf);
  }
  for (size_t i = nf; i-- > 0;) {
    struct lj_frame lf;
    /* The C function on top: the native unwinder has it, and its callers. */
    if (raw[i].kind == LJ_RAW_NATIVE) continue;
    lj_symbolize(tt->sym, vm, &raw[i], line_mode, &lf);
    from_lj(&out[n++], &lf);
  }
  return n;
}

size_t ttarget_lua_stack(struct ttarget *tt, const struct ls_sample *s,
                         int line_mode)
{
  size_t n = lua_frames(tt, s, line_mode, tt->frames);
  if (!n)
    marker(&tt->frames[n++], s->status == LS_IDLE    ? "[not running Lua]"
                             : s->status == LS_NO_VM ? "[no Lua VM identified]"
                                                     : "[unknown]");
  return n;
}

/* Frames of the tracing machinery that took the stack, not the thread's.
 * BPF code without a kallsyms entry lies past the kernel's text: it reads
 * as _einittext, the last text symbol. */
static int is_tracing(const char *name)
{
  static const char *const prefixes[] = {"bpf_prog_",
                                         "bpf_trace_run",
                                         "__bpf_trace_",
                                         "__traceiter_",
                                         "__mmap_lock_do_trace_",
                                         "_einittext",
                                         NULL};
  for (const char *const *p = prefixes; *p; p++)
    if (!strncmp(name, *p, strlen(*p))) return 1;
  return 0;
}

size_t ttarget_stack(struct ttarget *tt, const struct ls_event *ev,
                     int with_kernel)
{
  uint64_t pcs[UNWIND_MAX_FRAMES];
  struct unwind_regs r = {.ip = ev->nat.ip, .sp = ev->nat.sp, .bp = ev->nat.bp};
  size_t ulen = ev->nat.ulen < LS_USTACK_BYTES ? ev->nat.ulen : LS_USTACK_BYTES;
  /* No user registers: an event with a kernel stack only. */
  size_t np = ev->nat.ip ? unwind_stack(tt->uw, &r, ev->nat.ustack, ulen, pcs,
                                        UNWIND_MAX_FRAMES)
                         : 0;
  size_t n = 0, splice = np ? stack_splice(&tt->t, pcs, np) : 0, nl;
  struct tframe *f = tt->frames;
  for (size_t i = np; i-- > splice;) native(tt, &f[n++], pcs[i]);
  nl = lua_frames(tt, &ev->lua, 1, &f[n]);
  n += nl;
  for (size_t i = splice < np ? splice : np; i-- > 0;)
    native(tt, &f[n++], pcs[i]);
  if (with_kernel) {
    size_t nk = ev->nat.kdepth < LS_KSTACK_MAX ? ev->nat.kdepth : LS_KSTACK_MAX;
    for (size_t i = nk; i-- > 0;) {
      const char *name = ksyms_name(tt->ks, ev->nat.kstack[i]);
      struct tframe *k;
      if (name && is_tracing(name)) continue;
      k = &f[n++];
      k->kind = "kernel";
      if (name)
        snprintf(k->name, sizeof(k->name), "%s", name);
      else
        snprintf(k->name, sizeof(k->name), "0x%llx",
                 (unsigned long long)ev->nat.kstack[i]);
      k->chunk[0] = 0;
      k->line = -1;
      snprintf(k->str, sizeof(k->str), "kernel:%s", k->name);
    }
  }
  if (!n) marker(&f[n++], "[unknown]");
  return n;
}

void tframes_json(struct json *j, const struct tframe *frames, size_t n)
{
  json_begin_arr(j);
  for (size_t i = 0; i < n; i++) {
    const struct tframe *f = &frames[i];
    json_begin_obj(j);
    json_key(j, "kind");
    json_str(j, f->kind);
    json_key(j, "name");
    json_str(j, f->name);
    json_key(j, "chunk");
    if (f->chunk[0])
      json_str(j, f->chunk);
    else
      json_null(j);
    json_key(j, "line");
    if (f->line >= 0)
      json_int(j, f->line);
    else
      json_null(j);
    json_key(j, "frame");
    json_str(j, f->str);
    json_end_obj(j);
  }
  json_end_arr(j);
}

int tframes_intern(struct strmap *keys, const char *prefix,
                   const struct tframe *frames, size_t n, struct tkeybuf *kb,
                   uint32_t *id)
{
  size_t len = (prefix ? strlen(prefix) : 0) + 1;
  for (size_t i = 0; i < n; i++) len += strlen(frames[i].str) + 1;
  if (len > kb->cap) {
    char *nb = realloc(kb->buf, len);
    if (!nb) return -1;
    kb->buf = nb;
    kb->cap = len;
  }
  len = 0;
  if (prefix) {
    len = strlen(prefix);
    memcpy(kb->buf, prefix, len);
  }
  for (size_t i = 0; i < n; i++) {
    size_t l = strlen(frames[i].str);
    if (i || prefix) kb->buf[len++] = TSTACK_SEP;
    memcpy(kb->buf + len, frames[i].str, l);
    len += l;
  }
  kb->buf[len] = 0;
  return strmap_id(keys, kb->buf, len, id);
}

void tframe_json_site(struct json *j, const struct tframe *site)
{
  char where[LJ_CHUNK_MAX + 16];
  if (!site) {
    json_null(j);
    return;
  }
  snprintf(where, sizeof(where), "%s:%d", site->chunk, site->line);
  json_str(j, where);
}
