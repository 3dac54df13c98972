/*
** Reading jit_State, GCtrace and the penalty cache of a target VM.
**
** jit_State is copied in one read (about 3 KiB) and picked apart here,
** so one look costs three system calls: J, the trace table, g->vmstate.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jitstate.h"

#define J_READ_MAX 8192             /* sanity bound on the jit_State copy */
#define MCAREA_CHAIN_MAX 4096       /* areas walked through MCLink.next */
#define PROTO_SCAN_MAX (256u << 10) /* bytes of bytecode scanned back */
#define PROTO_SCAN_CHUNK 4096

int jit_supported(const struct lj_vm *vm)
{
  return vm->lay->J_penalty != 0;
}

int jit_state_read(pid_t pid, const struct lj_vm *vm, struct jit_state *st)
{
  const struct lj_layout *lay = vm->lay;
  unsigned char j[J_READ_MAX];
  uint32_t need = lay->J_errinfo + 8;
  uint64_t traces;
  if (need > sizeof(j) || proc_read(pid, vm->J, j, need) ||
      proc_read(pid, vm->G + lay->g_dispatchmode, &st->dispatchmode, 1))
    return -1;
  st->flags = lj_get_u32(j, lay->J_flags);
  st->state = lj_get_u32(j, lay->J_state);
  for (int i = 0; i < JIT_NPARAM; i++)
    st->param[i] = lj_get_u32(j, lay->J_param + 4 * i);
  st->mcarea = lj_get_u64(j, lay->J_mcarea);
  st->mctop = lj_get_u64(j, lay->J_mctop);
  st->mcbot = lj_get_u64(j, lay->J_mcbot);
  st->szmcarea = lj_get_u64(j, lay->J_szmcarea);
  st->szallmcarea = lj_get_u64(j, lay->J_szallmcarea);
  st->sizetrace = lj_get_u32(j, lay->J_sizetrace);
  st->penaltyslot = lj_get_u32(j, lay->J_penaltyslot);
  st->errinfo = lj_get_u64(j, lay->J_errinfo);
  for (int i = 0; i < JIT_PENALTY_SLOTS; i++) {
    uint32_t o = lay->J_penalty + i * lay->penalty_size;
    st->penalty[i].pc = lj_get_u64(j, o);
    st->penalty[i].val = lj_get_u16(j, o + 8);
    st->penalty[i].reason = lj_get_u16(j, o + 10);
  }
  traces = lj_get_u64(j, lay->J_trace);
  if (st->sizetrace > JIT_TRACES_MAX + 1) return -1;
  if (st->sizetrace > st->trace_cap) {
    uint64_t *t = realloc(st->trace, st->sizetrace * sizeof(*t));
    if (!t) return -1;
    st->trace = t;
    st->trace_cap = st->sizetrace;
  }
  if (st->sizetrace &&
      proc_read(pid, traces, st->trace, st->sizetrace * sizeof(uint64_t)))
    return -1;
  return 0;
}

void jit_state_free(struct jit_state *st)
{
  free(st->trace);
  st->trace = NULL;
  st->trace_cap = 0;
}

int jit_trace_read(pid_t pid, const struct lj_vm *vm, uint64_t T,
                   struct jit_trace_hdr *h)
{
  const struct lj_layout *lay = vm->lay;
  unsigned char b[256];
  if (lay->tr_size > sizeof(b) || proc_read(pid, T, b, lay->tr_size)) return -1;
  if (b[lay->L_gct] != LJ_GCT_TRACE) return -1;
  h->startpt = lj_get_u64(b, lay->tr_startpt) & LJ_GC64_PTRMASK;
  h->startpc = lj_get_u64(b, lay->tr_startpc);
  h->mcode = lj_get_u64(b, lay->tr_mcode);
  h->snap = lj_get_u64(b, lay->tr_snap);
  h->szmcode = lj_get_u32(b, lay->tr_szmcode);
  h->traceno = lj_get_u16(b, lay->tr_traceno);
  h->root = lj_get_u16(b, lay->tr_root);
  h->link = lj_get_u16(b, lay->tr_link);
  h->nsnap = lj_get_u16(b, lay->tr_nsnap);
  h->linktype = b[lay->tr_linktype];
  return 0;
}

uint32_t jit_mcode_areas(pid_t pid, const struct jit_state *st)
{
  uint64_t mc = st->mcarea;
  uint32_t n = 0;
  /* MCLink { MCode *next; size_t size; } heads every area. */
  while (mc && n < MCAREA_CHAIN_MAX) {
    n++;
    if (proc_read_u64(pid, mc, &mc)) break;
  }
  return n;
}

uint32_t jit_alive(const struct lj_vm *vm, const struct jit_state *st)
{
  uint32_t n = 0;
  for (uint32_t i = 1; i < st->sizetrace; i++)
    if (st->trace[i] && st->trace[i] != vm->J) n++;
  return n;
}

int32_t jit_vmstate(pid_t pid, const struct lj_vm *vm)
{
  int32_t v;
  if (proc_read(pid, vm->G + vm->lay->g_vmstate, &v, 4)) return INT32_MIN;
  return v;
}

/* -- LuaJIT's names ---------------------------------------------------------
 */

const char *jit_param_name(int i)
{
  static const char *const names[JIT_NPARAM] = {
      "maxtrace",   "maxrecord",  "maxirconst", "maxside",   "maxsnap",
      "minstitch",  "hotloop",    "hotexit",    "tryside",   "instunroll",
      "loopunroll", "callunroll", "recunroll",  "sizemcode", "maxmcode"};
  return i >= 0 && i < JIT_NPARAM ? names[i] : "?";
}

const char *jit_linktype_name(unsigned lt)
{
  /* jit/dump.lua's names for LJ_TRLINK_* */
  static const char *const names[] = {
      "none",           "root",         "loop",
      "tail-recursion", "up-recursion", "down-recursion",
      "interpreter",    "return",       "stitch"};
  return lt < sizeof(names) / sizeof(names[0]) ? names[lt] : "?";
}

/* lj_traceerr.h, identical in Debian's upstream (2022) and openresty
 * (2023) trees; head is not supported (jit_supported). */
static const char *const traceerr_21[] = {
    "error thrown or hook called during recording",
    "trace too short",
    "trace too long",
    "trace too deep",
    "too many snapshots",
    "blacklisted",
    "retry recording",
    "NYI: bytecode %d",
    "leaving loop in root trace",
    "inner loop in root trace",
    "loop unroll limit reached",
    "bad argument type",
    "JIT compilation disabled for function",
    "call unroll limit reached",
    "down-recursion, restarting",
    "NYI: unsupported variant of FastFunc %s",
    "NYI: return to lower frame",
    "store with nil or NaN key",
    "missing metamethod",
    "looping index lookup",
    "NYI: mixed sparse/dense table",
    "symbol not in cache",
    "NYI: unsupported C type conversion",
    "NYI: unsupported C function type",
    "guard would always fail",
    "too many PHIs",
    "persistent type instability",
    "failed to allocate mcode memory",
    "machine code too long",
    "hit mcode limit (retrying)",
    "too many spill slots",
    "inconsistent register allocation",
    "NYI: cannot assemble IR instruction %d",
    "NYI: PHI shuffling too complex",
    "NYI: register coalescing too complex",
};
#define TRERR_NYIBC 7
#define TRERR_NYIFFU 15

const char *jit_abort_reason(const struct lj_layout *lay, unsigned reason)
{
  (void)lay; /* one table for the supported 2.1 builds */
  return reason < sizeof(traceerr_21) / sizeof(traceerr_21[0])
             ? traceerr_21[reason]
             : "unknown reason";
}

const char *jit_abort_text(const struct lj_layout *lay, unsigned reason,
                           const char *detail, char *buf, size_t len)
{
  const char *r = jit_abort_reason(lay, reason), *pct;
  if (detail && detail[0]) return detail;
  if (!(pct = strchr(r, '%')) || !pct[1]) return r;
  snprintf(buf, len, "%.*s?%s", (int)(pct - r), r, pct + 2);
  return buf;
}

int jit_reason_is_nyibc(const struct lj_layout *lay, unsigned reason)
{
  (void)lay;
  return reason == TRERR_NYIBC;
}

int jit_reason_is_nyiffu(const struct lj_layout *lay, unsigned reason)
{
  (void)lay;
  return reason == TRERR_NYIFFU;
}

const char *jit_bc_name(const struct lj_layout *lay, unsigned op)
{
  /* lj_bc.h BCDEF order of the 2.1 builds with bc_max == 97 */
  static const char *const names[] = {
      "ISLT",   "ISGE",  "ISLE",   "ISGT",   "ISEQV",  "ISNEV",  "ISEQS",
      "ISNES",  "ISEQN", "ISNEN",  "ISEQP",  "ISNEP",  "ISTC",   "ISFC",
      "IST",    "ISF",   "ISTYPE", "ISNUM",  "MOV",    "NOT",    "UNM",
      "LEN",    "ADDVN", "SUBVN",  "MULVN",  "DIVVN",  "MODVN",  "ADDNV",
      "SUBNV",  "MULNV", "DIVNV",  "MODNV",  "ADDVV",  "SUBVV",  "MULVV",
      "DIVVV",  "MODVV", "POW",    "CAT",    "KSTR",   "KCDATA", "KSHORT",
      "KNUM",   "KPRI",  "KNIL",   "UGET",   "USETV",  "USETS",  "USETN",
      "USETP",  "UCLO",  "FNEW",   "TNEW",   "TDUP",   "GGET",   "GSET",
      "TGETV",  "TGETS", "TGETB",  "TGETR",  "TSETV",  "TSETS",  "TSETB",
      "TSETM",  "TSETR", "CALLM",  "CALL",   "CALLMT", "CALLT",  "ITERC",
      "ITERN",  "VARG",  "ISNEXT", "RETM",   "RET",    "RET0",   "RET1",
      "FORI",   "JFORI", "FORL",   "IFORL",  "JFORL",  "ITERL",  "IITERL",
      "JITERL", "LOOP",  "ILOOP",  "JLOOP",  "JMP",    "FUNCF",  "IFUNCF",
      "JFUNCF", "FUNCV", "IFUNCV", "JFUNCV", "FUNCC",  "FUNCCW"};
  if (lay->bc_max != sizeof(names) / sizeof(names[0]) || op >= lay->bc_max)
    return "?";
  return names[op];
}

/* -- From a bare bytecode address back to its prototype ------------------- */

static int is_funchead(const struct lj_layout *lay, uint8_t op)
{
  return op >= lay->bc_funcf && op < lay->bc_funcf + 6;
}

static int proto_fits(pid_t pid, const struct lj_layout *lay, uint64_t pt,
                      uint64_t pc)
{
  unsigned char h[128];
  uint32_t sizebc, sizept;
  if (lay->pt_size > sizeof(h) || proc_read(pid, pt, h, lay->pt_size)) return 0;
  sizebc = lj_get_u32(h, lay->pt_sizebc);
  sizept = lj_get_u32(h, lay->pt_sizekgc + 8); /* sizept follows sizekn */
  return h[lay->L_gct] == LJ_GCT_PROTO &&
         pc < pt + lay->pt_size + 4ull * sizebc &&
         sizept >= lay->pt_size + 4ull * sizebc;
}

uint64_t jit_proto_of_pc(pid_t pid, const struct lj_layout *lay, uint64_t pc)
{
  uint32_t buf[PROTO_SCAN_CHUNK / 4];
  uint64_t hi = pc + 4; /* the scan includes pc itself */
  if (!pc || (pc & 3)) return 0;
  /* Every prototype starts with a FUNCF/FUNCV family op and has none
   * elsewhere, so walk back to the nearest one and check its header. */
  for (uint32_t done = 0; done < PROTO_SCAN_MAX; done += sizeof(buf)) {
    uint64_t lo = hi - sizeof(buf);
    if (proc_read(pid, lo, buf, sizeof(buf))) return 0;
    for (int i = (int)(sizeof(buf) / 4) - 1; i >= 0; i--) {
      uint64_t bc0 = lo + 4 * (uint64_t)i;
      if (is_funchead(lay, (uint8_t)buf[i]))
        return proto_fits(pid, lay, bc0 - lay->pt_size, pc) ? bc0 - lay->pt_size
                                                            : 0;
    }
    hi = lo;
  }
  return 0;
}

int jit_pc_blacklisted(pid_t pid, const struct lj_layout *lay, uint64_t pt,
                       uint64_t pc)
{
  uint32_t ins;
  uint8_t op;
  if (!pt || jit_proto_of_pc(pid, lay, pc) != pt ||
      proc_read_u32(pid, pc, &ins))
    return -1;
  op = (uint8_t)ins;
  return op == lay->bc_forl + 1 || op == lay->bc_forl + 4 ||
         op == lay->bc_forl + 7 || op == lay->bc_funcf + 1 ||
         op == lay->bc_funcf + 4 || op == lay->bc_iterc;
}
