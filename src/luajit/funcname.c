/*
** Function names as LuaJIT's debug info derives them (lj_debug.c): from
** the instruction that made the call, tracing the called slot back to a
** global, field, method, local or upvalue. Works on a local copy of the
** caller's prototype, so it never reads target memory but for constants.
*/
#include <string.h>

#include "funcname.h"

enum { BCM_OTHER, BCM_DST, BCM_BASE };

/* Operand-A mode and metamethod of each bytecode, in LuaJIT 2.1 order
 * (identical in upstream 2022 and openresty 2023; lj_bc.h BCDEF). */
static const struct {
  unsigned char amode;
  const char *mm;
} bcmode[] = {
    {BCM_OTHER, "lt"},       /* ISLT */
    {BCM_OTHER, "lt"},       /* ISGE */
    {BCM_OTHER, "le"},       /* ISLE */
    {BCM_OTHER, "le"},       /* ISGT */
    {BCM_OTHER, "eq"},       /* ISEQV */
    {BCM_OTHER, "eq"},       /* ISNEV */
    {BCM_OTHER, "eq"},       /* ISEQS */
    {BCM_OTHER, "eq"},       /* ISNES */
    {BCM_OTHER, "eq"},       /* ISEQN */
    {BCM_OTHER, "eq"},       /* ISNEN */
    {BCM_OTHER, "eq"},       /* ISEQP */
    {BCM_OTHER, "eq"},       /* ISNEP */
    {BCM_DST, NULL},         /* ISTC */
    {BCM_DST, NULL},         /* ISFC */
    {BCM_OTHER, NULL},       /* IST */
    {BCM_OTHER, NULL},       /* ISF */
    {BCM_OTHER, NULL},       /* ISTYPE */
    {BCM_OTHER, NULL},       /* ISNUM */
    {BCM_DST, NULL},         /* MOV */
    {BCM_DST, NULL},         /* NOT */
    {BCM_DST, "unm"},        /* UNM */
    {BCM_DST, "len"},        /* LEN */
    {BCM_DST, "add"},        /* ADDVN */
    {BCM_DST, "sub"},        /* SUBVN */
    {BCM_DST, "mul"},        /* MULVN */
    {BCM_DST, "div"},        /* DIVVN */
    {BCM_DST, "mod"},        /* MODVN */
    {BCM_DST, "add"},        /* ADDNV */
    {BCM_DST, "sub"},        /* SUBNV */
    {BCM_DST, "mul"},        /* MULNV */
    {BCM_DST, "div"},        /* DIVNV */
    {BCM_DST, "mod"},        /* MODNV */
    {BCM_DST, "add"},        /* ADDVV */
    {BCM_DST, "sub"},        /* SUBVV */
    {BCM_DST, "mul"},        /* MULVV */
    {BCM_DST, "div"},        /* DIVVV */
    {BCM_DST, "mod"},        /* MODVV */
    {BCM_DST, "pow"},        /* POW */
    {BCM_DST, "concat"},     /* CAT */
    {BCM_DST, NULL},         /* KSTR */
    {BCM_DST, NULL},         /* KCDATA */
    {BCM_DST, NULL},         /* KSHORT */
    {BCM_DST, NULL},         /* KNUM */
    {BCM_DST, NULL},         /* KPRI */
    {BCM_BASE, NULL},        /* KNIL */
    {BCM_DST, NULL},         /* UGET */
    {BCM_OTHER, NULL},       /* USETV */
    {BCM_OTHER, NULL},       /* USETS */
    {BCM_OTHER, NULL},       /* USETN */
    {BCM_OTHER, NULL},       /* USETP */
    {BCM_OTHER, NULL},       /* UCLO */
    {BCM_DST, "gc"},         /* FNEW */
    {BCM_DST, "gc"},         /* TNEW */
    {BCM_DST, "gc"},         /* TDUP */
    {BCM_DST, "index"},      /* GGET */
    {BCM_OTHER, "newindex"}, /* GSET */
    {BCM_DST, "index"},      /* TGETV */
    {BCM_DST, "index"},      /* TGETS */
    {BCM_DST, "index"},      /* TGETB */
    {BCM_DST, "index"},      /* TGETR */
    {BCM_OTHER, "newindex"}, /* TSETV */
    {BCM_OTHER, "newindex"}, /* TSETS */
    {BCM_OTHER, "newindex"}, /* TSETB */
    {BCM_BASE, "newindex"},  /* TSETM */
    {BCM_OTHER, "newindex"}, /* TSETR */
    {BCM_BASE, "call"},      /* CALLM */
    {BCM_BASE, "call"},      /* CALL */
    {BCM_BASE, "call"},      /* CALLMT */
    {BCM_BASE, "call"},      /* CALLT */
    {BCM_BASE, "call"},      /* ITERC */
    {BCM_BASE, "call"},      /* ITERN */
    {BCM_BASE, NULL},        /* VARG */
    {BCM_BASE, NULL},        /* ISNEXT */
    {BCM_BASE, NULL},        /* RETM */
    {BCM_OTHER, NULL},       /* RET */
    {BCM_OTHER, NULL},       /* RET0 */
    {BCM_OTHER, NULL},       /* RET1 */
    {BCM_BASE, NULL},        /* FORI */
    {BCM_BASE, NULL},        /* JFORI */
    {BCM_BASE, NULL},        /* FORL */
    {BCM_BASE, NULL},        /* IFORL */
    {BCM_BASE, NULL},        /* JFORL */
    {BCM_BASE, NULL},        /* ITERL */
    {BCM_BASE, NULL},        /* IITERL */
    {BCM_BASE, NULL},        /* JITERL */
    {BCM_OTHER, NULL},       /* LOOP */
    {BCM_OTHER, NULL},       /* ILOOP */
    {BCM_OTHER, NULL},       /* JLOOP */
    {BCM_OTHER, NULL},       /* JMP */
    {BCM_OTHER, NULL},       /* FUNCF */
    {BCM_OTHER, NULL},       /* IFUNCF */
    {BCM_OTHER, NULL},       /* JFUNCF */
    {BCM_OTHER, NULL},       /* FUNCV */
    {BCM_OTHER, NULL},       /* IFUNCV */
    {BCM_OTHER, NULL},       /* JFUNCV */
    {BCM_OTHER, NULL},       /* FUNCC */
    {BCM_OTHER, NULL},       /* FUNCCW */
};

#define BC_MAX (sizeof(bcmode) / sizeof(bcmode[0]))
#define BC_MOV 18
#define BC_KNIL 44
#define BC_UGET 45
#define BC_GGET 54
#define BC_TGETS 57
#define BC_ITERC 69

#define bc_op(i) ((i)&0xff)
#define bc_a(i) (((i) >> 8) & 0xff)
#define bc_b(i) ((i) >> 24)
#define bc_c(i) (((i) >> 16) & 0xff)
#define bc_d(i) ((i) >> 16)

/* Names of the VM's internal locals (lj_debug.h VARNAMEDEF). */
static const char *const varname_builtin[] = {
    NULL,
    "(for index)",
    "(for limit)",
    "(for step)",
    "(for generator)",
    "(for state)",
    "(for control)",
};

static uint32_t uleb128(const unsigned char **p, const unsigned char *end)
{
  uint32_t v = 0;
  int shift = 0;
  while (*p < end && shift < 35) {
    unsigned char b = *(*p)++;
    v |= (uint32_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) break;
    shift += 7;
  }
  return v;
}

/* Name of the local variable in slot at pc (debug_varname). */
static int varname(const struct lj_protoimg *pi, uint32_t pc, uint32_t slot,
                   char *buf, size_t len)
{
  const unsigned char *p = pi->varinfo, *end = pi->varinfo_end;
  uint32_t lastpc = 0;
  if (!p) return 0;
  while (p < end) {
    const unsigned char *name = p;
    uint32_t vn = *p, startpc, endpc;
    if (vn == 0) break; /* VARNAME_END */
    if (vn < 7) {
      p++;
    } else {
      while (p < end && *p) p++;
      if (p >= end) return 0;
      p++;
    }
    lastpc = startpc = lastpc + uleb128(&p, end);
    if (startpc > pc) break;
    endpc = startpc + uleb128(&p, end);
    if (pc < endpc && slot-- == 0) {
      if (vn < 7)
        snprintf(buf, len, "%s", varname_builtin[vn]);
      else
        snprintf(buf, len, "%s", (const char *)name);
      return 1;
    }
  }
  return 0;
}

/* Name of upvalue idx (lj_debug_uvname). */
static void uvname(const struct lj_protoimg *pi, uint32_t idx, char *buf,
                   size_t len)
{
  const unsigned char *p = pi->uvinfo, *end = pi->uvinfo_end;
  buf[0] = '\0';
  if (!p || idx >= pi->sizeuv) return;
  while (idx && p < end)
    if (*p++ == 0) idx--;
  if (p < end)
    snprintf(buf, len, "%.*s", (int)strnlen((const char *)p, end - p),
             (const char *)p);
}

/* lj_debug_slotname: what slot holds at instruction ip. */
static const char *slotname(const struct lj_protoimg *pi, uint32_t ip,
                            uint32_t slot, lj_kstr_fn kstr, void *ud, char *buf,
                            size_t len)
{
  for (int restarts = 0; restarts < 256; restarts++) {
    int restarted = 0;
    if (varname(pi, ip, slot, buf, len)) return "local";
    while (ip-- > 1) { /* instruction 0 is the function header */
      uint32_t ins = pi->bc[ip], op = bc_op(ins), ra = bc_a(ins);
      if (op >= BC_MAX) return NULL;
      if (bcmode[op].amode == BCM_BASE) {
        if (slot >= ra && (op != BC_KNIL || slot <= bc_d(ins))) return NULL;
      } else if (bcmode[op].amode == BCM_DST && ra == slot) {
        switch (op) {
        case BC_MOV:
          slot = bc_d(ins);
          restarted = 1;
          break;
        case BC_GGET:
          return kstr(ud, pi, bc_d(ins), buf, len) ? "global" : NULL;
        case BC_TGETS:
          if (!kstr(ud, pi, bc_c(ins), buf, len)) return NULL;
          if (ip > 1) {
            uint32_t insp = pi->bc[ip - 1];
            if (bc_op(insp) == BC_MOV && bc_a(insp) == ra + 2 &&
                bc_d(insp) == bc_b(ins))
              return "method";
          }
          return "field";
        case BC_UGET: uvname(pi, bc_d(ins), buf, len); return "upvalue";
        default: return NULL;
        }
        if (restarted) break;
      }
    }
    if (!restarted) return NULL;
  }
  return NULL;
}

const char *lj_funcname(const struct lj_protoimg *pi, uint32_t pos,
                        lj_kstr_fn kstr, void *ud, char *buf, size_t len)
{
  uint32_t ins, op;
  buf[0] = '\0';
  if (pos >= pi->sizebc) return NULL;
  ins = pi->bc[pos];
  op = bc_op(ins);
  if (op >= BC_MAX || !bcmode[op].mm) return NULL;
  if (!strcmp(bcmode[op].mm, "call")) {
    uint32_t slot = bc_a(ins);
    if (op == BC_ITERC) slot -= 3;
    return slotname(pi, pos, slot, kstr, ud, buf, len);
  }
  snprintf(buf, len, "__%s", bcmode[op].mm);
  return "metamethod";
}
