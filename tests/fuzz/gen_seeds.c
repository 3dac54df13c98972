/*
** Seed images for the memory fuzz targets: a plausible LuaJIT VM (GC64,
** openresty layout) whose main thread runs three Lua functions, each
** called from the one below it:
**     main chunk (seed.lua:0) -> outer (seed.lua:10) -> inner (seed.lua:20)
** with GCfunc, GCproto (bytecode, line info), chunk name string, a C frame
** and a registry table, all linked on the GC root list, so the fuzzer
** starts from inputs that reach the deep paths of the walker, symbolizer
** and heap walker instead of failing on the first pointer check.
**
**   gen_seeds DIR   writes DIR/stack-c (vmstate C: PCs from the C frame),
**                   DIR/stack-interp (interpreter registers) and
**                   DIR/stack-trace (in trace 1, with a trace object)
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"

#define GG_ADDR 0x10000ull
#define STACK_ADDR 0x20000ull
#define OBJ_ADDR 0x30000ull /* functions, prototypes, strings, tables */
#define CFRAME_ADDR 0x40000ull
#define CODE_LO 0x50000ull
#define OBJ_SIZE 0x2000

#define TAG(t, p) (((uint64_t)(t) << 47) | (p))
#define NSLOTS 16

static const struct lj_layout *lay;
static uint8_t gg[8192], stack[NSLOTS * 8], obj[OBJ_SIZE], cframe[64];

static void put64(uint8_t *b, uint64_t off, uint64_t v)
{
  memcpy(b + off, &v, 8);
}
static void put32(uint8_t *b, uint64_t off, uint32_t v)
{
  memcpy(b + off, &v, 4);
}

/* A GC object header: nextgc, marked, gct. */
static void gchdr(uint8_t *b, uint64_t off, uint64_t next, uint8_t gct)
{
  put64(b, off, next);
  b[off + 9] = gct;
}

/* Object area offsets. */
enum {
  STR_OFF = 0,
  TAB_OFF = 0x80,
  NODE_OFF = 0x100,
  FN_OFF = 0x200,
  PT_OFF = 0x400,
  TRACE_OFF = 0x1000,
  TRACES_OFF = 0x1100
};
#define PT_STRIDE 0x200
#define FN_STRIDE 0x40
#define NBC 8

static uint64_t fn_addr(int i)
{
  return OBJ_ADDR + FN_OFF + i * FN_STRIDE;
}
static uint64_t pt_addr(int i)
{
  return OBJ_ADDR + PT_OFF + i * PT_STRIDE;
}
/* PC pointing past bytecode number ins of prototype i. */
static uint64_t pc_after(int i, int ins)
{
  return pt_addr(i) + lay->pt_size + 4 * (ins + 1);
}

static void build(int vmstate)
{
  const uint64_t G = GG_ADDR + lay->gg_g, L = GG_ADDR;
  const char *chunk = "@seed.lua";
  memset(gg, 0, sizeof(gg));
  memset(stack, 0, sizeof(stack));
  memset(obj, 0, sizeof(obj));
  memset(cframe, 0, sizeof(cframe));

  /* Chunk name string. */
  gchdr(obj, STR_OFF, 0, LJ_GCT_STR);
  put32(obj, STR_OFF + lay->str_len, (uint32_t)strlen(chunk));
  memcpy(obj + STR_OFF + lay->str_data, chunk, strlen(chunk));

  /* Registry: an empty table with one free node. */
  gchdr(obj, TAB_OFF, 0, LJ_GCT_TAB);
  put64(obj, TAB_OFF + lay->tab_node, OBJ_ADDR + NODE_OFF);

  /* Three Lua functions and their prototypes; each prototype's bytecode
   * ends with a CALL A=0 at instruction 3 (A is all the walker decodes). */
  for (int i = 0; i < 3; i++) {
    uint64_t f = FN_OFF + i * FN_STRIDE, p = PT_OFF + i * PT_STRIDE;
    uint32_t sizept = lay->pt_size + 4 * NBC + NBC;
    gchdr(obj, f, i < 2 ? fn_addr(i + 1) : OBJ_ADDR + TAB_OFF, LJ_GCT_FUNC);
    obj[f + lay->fn_ffid] = 0;
    put64(obj, f + lay->fn_pc, pt_addr(i) + lay->pt_size);
    put64(obj, f + lay->fn_env, OBJ_ADDR + TAB_OFF);
    gchdr(obj, p, 0, LJ_GCT_PROTO);
    put32(obj, p + lay->pt_sizebc, NBC);
    put32(obj, p + lay->pt_sizept, sizept);
    put64(obj, p + lay->pt_chunkname, OBJ_ADDR + STR_OFF);
    put32(obj, p + lay->pt_firstline, 10 * i);
    put32(obj, p + lay->pt_numline, NBC);
    put64(obj, p + lay->pt_lineinfo, pt_addr(i) + lay->pt_size + 4 * NBC);
    for (int b = 0; b < NBC; b++) {
      put32(obj, p + lay->pt_size + 4 * b, b == 3 ? 0x42u /* CALL, A=0 */ : 0);
      obj[p + lay->pt_size + 4 * NBC + b] = (uint8_t)(b + 1);
    }
  }

  /* Stack, LJ_FR2: slot 0 unused, slot 1 the bottom dummy frame; each
   * frame is (function, link) with base just above. */
  put64(stack, 8 * 1, 0);
  put64(stack, 8 * 2, TAG(LJ_TAG_FUNC, fn_addr(0)));
  put64(stack, 8 * 3, 16 | LJ_FRAME_C); /* called by lua_pcall */
  put64(stack, 8 * 4, TAG(LJ_TAG_FUNC, fn_addr(1)));
  put64(stack, 8 * 5, pc_after(0, 3)); /* return into main chunk's CALL */
  put64(stack, 8 * 6, TAG(LJ_TAG_FUNC, fn_addr(2)));
  put64(stack, 8 * 7, pc_after(1, 3));

  /* C frame of the pcall: innermost, saves the top frame's PC. */
  put32(cframe, lay->cf_nres, 0);
  put64(cframe, lay->cf_pc, pc_after(2, 5));
  put64(cframe, lay->cf_L, L);

  /* Main lua_State at the start of GG_State. */
  gchdr(gg, 0, fn_addr(0), LJ_GCT_THREAD);
  put64(gg, lay->L_glref, G);
  put64(gg, lay->L_base, STACK_ADDR + 8 * 8);
  put64(gg, lay->L_top, STACK_ADDR + 8 * 10);
  put64(gg, lay->L_maxstack, STACK_ADDR + 8 * (NSLOTS - 1));
  put64(gg, lay->L_stack, STACK_ADDR);
  put64(gg, lay->L_cframe, CFRAME_ADDR);
  put32(gg, lay->L_stacksize, NSLOTS);
  put64(gg, lay->L_env, OBJ_ADDR + TAB_OFF);

  /* global_State */
  put64(gg, lay->gg_g + lay->g_gc_root, L);
  put64(gg, lay->gg_g + lay->g_gc_total, 0x10000);
  put32(gg, lay->gg_g + lay->g_vmstate, (uint32_t)vmstate);
  put64(gg, lay->gg_g + lay->g_mainthref, L);
  put64(gg, lay->gg_g + lay->g_cur_L, L);
  put64(gg, lay->gg_g + lay->g_registrytv, TAG(LJ_TAG_TAB, OBJ_ADDR + TAB_OFF));
  put64(gg, lay->gg_g + lay->g_jit_base, STACK_ADDR + 8 * 8);

  /* jit_State: trace 1 started at instruction 2 of the top function. */
  put64(gg, lay->gg_J + lay->J_trace, OBJ_ADDR + TRACES_OFF);
  put32(gg, lay->gg_J + lay->J_sizetrace, 2);
  put64(obj, TRACES_OFF + 8, OBJ_ADDR + TRACE_OFF);
  gchdr(obj, TRACE_OFF, 0, LJ_GCT_TRACE);
  put64(obj, TRACE_OFF + lay->tr_startpt, TAG(LJ_TAG_PROTO, pt_addr(2)));
  put64(obj, TRACE_OFF + lay->tr_startpc, pt_addr(2) + lay->pt_size + 8);
}

static void region(FILE *f, uint64_t addr, const void *p, uint32_t len)
{
  fwrite(&addr, 8, 1, f);
  fwrite(&len, 4, 1, f);
  fwrite(p, 1, len, f);
}

static int write_seed(const char *dir, const char *name, int vmstate, int regs)
{
  char path[1024];
  FILE *f;
  struct image_hdr h = {
      .flags = regs ? IMAGE_USE_REGS : 0,
      .GG = GG_ADDR,
      .G = GG_ADDR + lay->gg_g,
      .J = GG_ADDR + lay->gg_J,
      .dispatch = GG_ADDR + lay->gg_dispatch,
      .mainL = GG_ADDR,
      .code_lo = CODE_LO,
      .code_hi = CODE_LO + 0x1000,
  };
  h.flavor = (uint8_t)(LJ_FLAVOR_OPENRESTY - 1); /* image_load: % 3 + 1 */
  if (regs) { /* in the interpreter, in the top function at instruction 5 */
    h.rip = CODE_LO + 0x10;
    h.r14 = h.dispatch;
    h.rdx = STACK_ADDR + 8 * 8;
    h.rbx = pc_after(2, 5);
  }
  build(vmstate);
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  if (!(f = fopen(path, "wb"))) {
    perror(path);
    return -1;
  }
  fwrite(&h, sizeof(h), 1, f);
  region(f, GG_ADDR, gg, lay->gg_size);
  region(f, STACK_ADDR, stack, sizeof(stack));
  region(f, OBJ_ADDR, obj, sizeof(obj));
  region(f, CFRAME_ADDR, cframe, sizeof(cframe));
  return fclose(f);
}

int main(int argc, char **argv)
{
  if (argc != 2) {
    fprintf(stderr, "usage: gen_seeds DIR\n");
    return 2;
  }
  lay = lj_layout_for(LJ_FLAVOR_OPENRESTY);
  if (write_seed(argv[1], "stack-c", LJ_VMST_C, 0) ||
      write_seed(argv[1], "stack-interp", LJ_VMST_INTERP, 1) ||
      write_seed(argv[1], "stack-trace", 1, 0))
    return 1;
  return 0;
}
