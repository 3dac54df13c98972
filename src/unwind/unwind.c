/*
** CFI unwinding over a copied user stack (see unwind.h).
**
** Each step asks libdw for the frame state at the PC (the return address
** minus one for callers: a call may be the last instruction of its
** function), evaluates the CFA and the return address rule, and moves on
** with rsp = CFA. Only rsp, rbp and rip are tracked: the CFA rules of
** x86_64 compilers use rsp or rbp, and other registers are not needed to
** find return addresses.
*/
#define _GNU_SOURCE
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <fcntl.h>
#include <gelf.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../proc/proc.h"
#include "unwind.h"

/* DWARF register numbers of x86_64. */
#define DW_RBP 6
#define DW_RSP 7
#define DW_RA 16
#define NREGS 17

#define MAPS_REREAD_EVERY 1.0 /* s: an unknown PC rereads the maps */
#define EVAL_DEPTH 8

/* An executable mapping of an object and its CFI. */
struct module {
  uint64_t lo, hi, bias; /* runtime = link-time + bias */
  int fd;
  Elf *elf;
  Dwarf_CFI *cfi; /* NULL: the object has no .eh_frame */
};

struct unwinder {
  pid_t pid;
  struct proc_maps maps;
  double maps_at; /* when the maps were read */
  struct module *mods;
  size_t nmods;
};

/* The stack copy and the registers known at one frame. */
struct ustate {
  const uint8_t *stack;
  uint64_t stack_lo;
  size_t len;
  uint64_t regs[NREGS];
  unsigned known; /* bit per register */
};

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

struct unwinder *unwinder_new(pid_t pid)
{
  struct unwinder *u = calloc(1, sizeof(*u));
  if (!u) return NULL;
  u->pid = pid;
  elf_version(EV_CURRENT);
  if (proc_maps_read(pid, &u->maps)) u->maps.n = 0;
  u->maps_at = now_s();
  return u;
}

void unwinder_free(struct unwinder *u)
{
  if (!u) return;
  for (size_t i = 0; i < u->nmods; i++) {
    if (u->mods[i].cfi) dwarf_cfi_end(u->mods[i].cfi);
    if (u->mods[i].elf) elf_end(u->mods[i].elf);
    if (u->mods[i].fd >= 0) close(u->mods[i].fd);
  }
  free(u->mods);
  proc_maps_free(&u->maps);
  free(u);
}

/* The load bias of the object mapped at m: the PT_LOAD segment holding
 * m's file offset maps link-time addresses to m. */
static int load_bias(Elf *elf, const struct proc_map *m, uint64_t *bias)
{
  size_t n;
  if (elf_getphdrnum(elf, &n)) return -1;
  for (size_t i = 0; i < n; i++) {
    GElf_Phdr ph;
    if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_LOAD) continue;
    if (m->offset >= ph.p_offset && m->offset < ph.p_offset + ph.p_filesz) {
      *bias = m->lo - m->offset - ph.p_vaddr + ph.p_offset;
      return 0;
    }
  }
  return -1;
}

static struct module *open_module(struct unwinder *u, const struct proc_map *m)
{
  struct module mod = {.lo = m->lo, .hi = m->hi, .fd = -1}, *nv;
  char path[PROC_PATH_MAX + 64];
  if (m->path[0] == '/') {
    proc_root_path(u->pid, m->path, path, sizeof(path));
    if ((mod.fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0 &&
        (mod.elf = elf_begin(mod.fd, ELF_C_READ_MMAP, NULL)) &&
        !load_bias(mod.elf, m, &mod.bias))
      mod.cfi = dwarf_getcfi_elf(mod.elf);
  }
  /* A module without CFI is kept too: it stops unwinding quickly. */
  if (!(nv = realloc(u->mods, (u->nmods + 1) * sizeof(*nv)))) {
    if (mod.elf) elf_end(mod.elf);
    if (mod.fd >= 0) close(mod.fd);
    return NULL;
  }
  u->mods = nv;
  u->mods[u->nmods] = mod;
  return &u->mods[u->nmods++];
}

static struct module *module_at(struct unwinder *u, uint64_t pc)
{
  const struct proc_map *m;
  double t;
  for (size_t i = 0; i < u->nmods; i++)
    if (pc >= u->mods[i].lo && pc < u->mods[i].hi) return &u->mods[i];
  m = proc_maps_find(&u->maps, pc);
  if (!m && (t = now_s()) - u->maps_at >= MAPS_REREAD_EVERY) {
    /* Mapped since (dlopen): read the maps again, now and then. */
    proc_maps_free(&u->maps);
    if (proc_maps_read(u->pid, &u->maps)) u->maps.n = 0;
    u->maps_at = t;
    m = proc_maps_find(&u->maps, pc);
  }
  if (!m || !m->x) return NULL;
  return open_module(u, m);
}

static int read_stack(const struct ustate *s, uint64_t addr, uint64_t *v)
{
  if (addr < s->stack_lo || addr - s->stack_lo + 8 > s->len) return -1;
  memcpy(v, s->stack + (addr - s->stack_lo), 8);
  return 0;
}

static int reg_value(const struct ustate *s, unsigned r, uint64_t *v)
{
  if (r >= NREGS || !(s->known & (1u << r))) return -1;
  *v = s->regs[r];
  return 0;
}

/* Evaluates a CFI expression. *is_value: the result is the value itself
 * (DW_OP_stack_value, DW_OP_regN), else the address holding it. */
static int eval(const struct ustate *s, const Dwarf_Op *ops, size_t nops,
                uint64_t cfa, uint64_t *out, int *is_value)
{
  uint64_t st[EVAL_DEPTH], v;
  size_t sp = 0;
  *is_value = 0;
#define PUSH(x)                                                                \
  do {                                                                         \
    if (sp >= EVAL_DEPTH) return -1;                                           \
    st[sp++] = (x);                                                            \
  } while (0)
#define NEED(k)                                                                \
  if (sp < (k)) return -1
  for (size_t i = 0; i < nops; i++) {
    const Dwarf_Op *op = &ops[i];
    uint8_t a = op->atom;
    if (a >= DW_OP_lit0 && a <= DW_OP_lit31) {
      PUSH((uint64_t)(a - DW_OP_lit0));
    } else if (a >= DW_OP_breg0 && a <= DW_OP_breg31) {
      if (reg_value(s, a - DW_OP_breg0, &v)) return -1;
      PUSH(v + (uint64_t)(int64_t)op->number);
    } else if (a >= DW_OP_reg0 && a <= DW_OP_reg31) {
      if (reg_value(s, a - DW_OP_reg0, &v)) return -1;
      *out = v;
      *is_value = 1;
      return 0;
    } else {
      switch (a) {
      case DW_OP_call_frame_cfa: PUSH(cfa); break;
      case DW_OP_bregx:
        if (reg_value(s, (unsigned)op->number, &v)) return -1;
        PUSH(v + (uint64_t)(int64_t)op->number2);
        break;
      case DW_OP_const1u:
      case DW_OP_const2u:
      case DW_OP_const4u:
      case DW_OP_const8u:
      case DW_OP_constu:
      case DW_OP_const1s:
      case DW_OP_const2s:
      case DW_OP_const4s:
      case DW_OP_const8s:
      case DW_OP_consts: PUSH(op->number); break;
      case DW_OP_plus_uconst:
        NEED(1);
        st[sp - 1] += op->number;
        break;
      case DW_OP_plus:
        NEED(2);
        sp--;
        st[sp - 1] += st[sp];
        break;
      case DW_OP_minus:
        NEED(2);
        sp--;
        st[sp - 1] -= st[sp];
        break;
      case DW_OP_and:
        NEED(2);
        sp--;
        st[sp - 1] &= st[sp];
        break;
      case DW_OP_shl:
        NEED(2);
        sp--;
        st[sp - 1] <<= (st[sp] & 63);
        break;
      case DW_OP_ge:
        NEED(2);
        sp--;
        st[sp - 1] = (int64_t)st[sp - 1] >= (int64_t)st[sp];
        break;
      case DW_OP_deref:
        NEED(1);
        if (read_stack(s, st[sp - 1], &st[sp - 1])) return -1;
        break;
      case DW_OP_stack_value: *is_value = 1; break;
      default: return -1; /* not seen in .eh_frame of x86_64 code */
      }
    }
  }
#undef PUSH
#undef NEED
  if (!sp) return -1;
  *out = st[sp - 1];
  return 0;
}

/* The caller's value of register r, by frame's rule. Returns 0, or -1
 * when it cannot be had (then it is unknown in the caller). */
static int caller_reg(const struct ustate *s, Dwarf_Frame *frame, int r,
                      uint64_t cfa, uint64_t *v)
{
  Dwarf_Op mem[3], *ops;
  size_t nops;
  int is_value;
  uint64_t x;
  if (dwarf_frame_register(frame, r, mem, &ops, &nops)) return -1;
  if (nops == 0) /* same value, or undefined */
    return ops == NULL ? reg_value(s, (unsigned)r, v) : -1;
  if (eval(s, ops, nops, cfa, &x, &is_value)) return -1;
  if (is_value) {
    *v = x;
    return 0;
  }
  return read_stack(s, x, v);
}

size_t unwind_stack(struct unwinder *u, const struct unwind_regs *regs,
                    const uint8_t *stack, size_t len, uint64_t *pcs, size_t max)
{
  struct ustate s = {.stack = stack, .stack_lo = regs->sp, .len = len};
  size_t n = 0;
  uint64_t pc = regs->ip;
  s.regs[DW_RSP] = regs->sp;
  s.regs[DW_RBP] = regs->bp;
  s.known = 1u << DW_RSP | 1u << DW_RBP;
  if (max) pcs[n++] = pc;
  while (n < max && n < UNWIND_MAX_FRAMES) {
    struct module *m = module_at(u, pc);
    Dwarf_Frame *frame = NULL;
    Dwarf_Op *ops;
    size_t nops;
    uint64_t cfa, ra, bp;
    int is_value;
    if (!m || !m->cfi) break;
    /* A return address may be just past the end of its function. */
    if (dwarf_cfi_addrframe(m->cfi, pc - (n > 1 ? 1 : 0) - m->bias, &frame))
      break;
    if (dwarf_frame_cfa(frame, &ops, &nops) || !nops ||
        eval(&s, ops, nops, 0, &cfa, &is_value) ||
        caller_reg(&s, frame, DW_RA, cfa, &ra)) {
      free(frame);
      break;
    }
    if (caller_reg(&s, frame, DW_RBP, cfa, &bp))
      s.known &= ~(1u << DW_RBP);
    else
      s.regs[DW_RBP] = bp;
    free(frame);
    /* The stack grows down: a caller's frame lies above. */
    if (ra == 0 || cfa <= s.regs[DW_RSP]) break;
    s.regs[DW_RSP] = cfa;
    pcs[n++] = pc = ra;
  }
  return n;
}
