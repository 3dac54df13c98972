/*
** The allocation probes (see probe.h and src/bpf/alloc.bpf.c).
*/
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "../cmd/common.h"
#include "../record/bpfglue.h"
#include "alloc.skel.h"
#include "probe.h"

/* Finds each VM's allocator (G->allocf, G->allocd) and the distinct
 * functions among them, in the files that map them. */
static int find_sites(struct allocprobe *ap, const struct lj_target *t,
                      const char *cmd)
{
  struct proc_maps maps;
  int rc = 0;
  if (proc_maps_read(t->pid, &maps)) {
    die_msg("%s: cannot read the mappings of process %d: %s", cmd, (int)t->pid,
            strerror(errno));
    return -1;
  }
  for (size_t i = 0; i < t->nvms && !rc; i++) {
    const struct lj_vm *vm = &t->vms[i];
    const struct proc_map *m;
    uint64_t fn;
    size_t k;
    if (proc_read_u64(t->pid, vm->G + vm->lay->g_allocf, &fn) ||
        proc_read_u64(t->pid, vm->G + vm->lay->g_allocd, &ap->uds[i])) {
      die_msg("%s: cannot read the allocator of the VM at 0x%llx", cmd,
              (unsigned long long)vm->G);
      rc = -1;
      break;
    }
    for (k = 0; k < ap->nsites && ap->sites[k].addr != fn; k++) continue;
    if (k < ap->nsites) continue;
    m = proc_maps_find(&maps, fn);
    if (!m || !m->x || m->path[0] != '/') {
      die_msg("%s: the allocator of the VM at 0x%llx (0x%llx) is not code "
              "of a mapped file; cannot probe it",
              cmd, (unsigned long long)vm->G, (unsigned long long)fn);
      rc = -1;
    } else if (ap->nsites == ALLOC_MAX_SITES) {
      die_msg("%s: more than %d distinct allocators in process %d", cmd,
              ALLOC_MAX_SITES, (int)t->pid);
      rc = -1;
    } else {
      struct allocsite *s = &ap->sites[ap->nsites++];
      s->addr = fn;
      s->offset = fn - m->lo + m->offset;
      proc_root_path(t->pid, m->path, s->path, sizeof(s->path));
    }
  }
  proc_maps_free(&maps);
  return rc;
}

/* The walker's maps, and which VM each allocator ud belongs to. */
static int push_vms(struct allocprobe *ap, const struct ttarget *tt)
{
  int fd = bpf_map__fd(ap->skel->maps.luaspy_allocators);
  if (ttarget_push(tt, bpf_map__fd(ap->skel->maps.luaspy_procs),
                   bpf_map__fd(ap->skel->maps.luaspy_vms)))
    return -1;
  for (size_t i = 0; i < tt->t.nvms; i++) {
    struct ls_allockey key = {.pid = (__u32)tt->pid, .ud = ap->uds[i]};
    __u64 dispatch = tt->t.vms[i].dispatch;
    if (bpf_map_update_elem(fd, &key, &dispatch, BPF_ANY)) return -1;
  }
  return 0;
}

int allocprobe_open(struct allocprobe *ap, const struct ttarget *tt,
                    int returns, const char *cmd)
{
  int ncpus = libbpf_num_possible_cpus(), err;
  memset(ap, 0, sizeof(*ap));
  ap->pid = tt->pid;
  ap->returns = returns;
  if (!(ap->uds = calloc(tt->t.nvms, sizeof(*ap->uds)))) {
    die_msg("out of memory");
    return -1;
  }
  if (find_sites(ap, &tt->t, cmd)) goto fail_quiet;
  bpfglue_quiet_libbpf();
  if (!(ap->skel = luaspy_alloc__open())) {
    err = errno;
    goto fail;
  }
  ap->skel->rodata->with_returns = (__u32)returns;
  bpf_map__set_max_entries(ap->skel->maps.luaspy_scratch,
                           ncpus > 0 ? (__u32)ncpus : 1);
  if ((err = -luaspy_alloc__load(ap->skel))) goto fail;
  if (push_vms(ap, tt)) {
    die_msg("%s: cannot pass the Lua VMs to the kernel: %s", cmd,
            strerror(errno));
    goto fail_quiet;
  }
  return 0;
fail:
  die_msg("%s: cannot load the BPF programs: %s%s", cmd, strerror(err),
          bpfglue_hint(err));
fail_quiet:
  allocprobe_close(ap);
  return -1;
}

void allocprobe_detach(struct allocprobe *ap)
{
  /* Returns first: a return seen without its call would pair the block
   * with the call before it. */
  for (size_t i = 0; i < ap->nsites; i++) {
    bpf_link__destroy(ap->sites[i].ret);
    ap->sites[i].ret = NULL;
  }
  for (size_t i = 0; i < ap->nsites; i++) {
    bpf_link__destroy(ap->sites[i].call);
    ap->sites[i].call = NULL;
  }
  ap->attached = 0;
}

int allocprobe_attach(struct allocprobe *ap, const char *cmd)
{
  size_t i;
  int err;
  /* Calls first, then returns, for the same reason. */
  for (i = 0; i < ap->nsites; i++) {
    struct allocsite *s = &ap->sites[i];
    LIBBPF_OPTS(bpf_uprobe_opts, call_opts);
    LIBBPF_OPTS(bpf_uprobe_opts, ret_opts, .retprobe = true);
    if (!(s->call = bpf_program__attach_uprobe_opts(
              ap->skel->progs.luaspy_alloc_call, ap->pid, s->path, s->offset,
              &call_opts)))
      goto fail;
    if (ap->returns && !(s->ret = bpf_program__attach_uprobe_opts(
                             ap->skel->progs.luaspy_alloc_return, ap->pid,
                             s->path, s->offset, &ret_opts)))
      goto fail;
  }
  ap->attached = 1;
  return 0;
fail:
  err = errno;
  allocprobe_detach(ap);
  die_msg("%s: cannot attach a uprobe to the allocator in %s: %s%s", cmd,
          ap->sites[i].path, strerror(err), bpfglue_hint(err));
  return -1;
}

void allocprobe_close(struct allocprobe *ap)
{
  allocprobe_detach(ap);
  luaspy_alloc__destroy(ap->skel);
  free(ap->uds);
  memset(ap, 0, sizeof(*ap));
}

int allocprobe_events_fd(const struct allocprobe *ap)
{
  return bpf_map__fd(ap->skel->maps.luaspy_events);
}

void allocprobe_counts(const struct allocprobe *ap, uint64_t c[LS_NACOUNTERS])
{
  int ncpus = libbpf_num_possible_cpus(),
      fd = bpf_map__fd(ap->skel->maps.luaspy_counts);
  __u64 *v = ncpus > 0 ? calloc((size_t)ncpus, sizeof(*v)) : NULL;
  for (__u32 i = 0; i < LS_NACOUNTERS; i++) {
    c[i] = 0;
    if (v && !bpf_map_lookup_elem(fd, &i, v))
      for (int k = 0; k < ncpus; k++) c[i] += v[k];
  }
  free(v);
}

int allocprobe_vm(const struct allocprobe *ap, size_t nvms, uint64_t ud)
{
  for (size_t i = 0; i < nvms; i++)
    if (ap->uds[i] == ud) return (int)i;
  return -1;
}
