/*
** The struct layouts of the LuaJIT builds luaspy knows, x86_64 GC64.
** Offsets were checked with offsetof() on each version's headers and then
** on live processes (see shared/design/luajit-internals.md). Discovery
** picks one by the dispatch table's place and length and validates it on
** the target before anything is read through it.
*/
#include <string.h>

#include "luajit.h"

/* Fields common to the 2.1 family; the flavors differ in a few places. */
#define LJ21_COMMON                                                            \
  .gc64 = 1, .L_gct = 9, .L_glref = 16, .L_base = 32, .L_top = 40,             \
  .L_maxstack = 48, .L_stack = 56, .L_cframe = 80, .L_stacksize = 88,          \
  .g_allocf = 0, .g_allocd = 8, .g_gc_total = 16, .g_gc_root = 40,             \
  .g_strhash = 152, .g_strmask = 160, .g_hookmask = 145, .g_vmstate = 184,     \
  .g_mainthref = 192, .g_registrytv = 272, .J_flags = 168, .J_state = 236,     \
  .J_trace = 384, .J_sizetrace = 396, .J_nparam = 15, .J_mcarea = 3048,        \
  .J_szmcarea = 3072, .J_szallmcarea = 3080, .cf_prev = 32, .cf_pc = 24,       \
  .cf_L = 16, .cf_nres = 8, .fn_ffid = 10, .fn_nupvalues = 11, .fn_pc = 32,    \
  .fn_cf = 40, .fn_uvptr = 40, .pt_sizebc = 12, .pt_k = 32, .pt_sizekgc = 48,  \
  .pt_sizeuv = 60, .pt_chunkname = 64, .pt_firstline = 72, .pt_numline = 76,   \
  .pt_lineinfo = 80, .pt_uvinfo = 88, .pt_varinfo = 96, .pt_size = 104,        \
  .str_len = 20, .str_data = 24, .tab_array = 16, .tab_metatable = 32,         \
  .tab_node = 40, .tab_asize = 48, .tab_hmask = 52, .node_size = 24,           \
  .tr_nsnap = 10, .tr_snap = 48, .tr_snapmap = 56, .tr_startpt = 64,           \
  .tr_startpc = 72, .tr_szmcode = 84, .tr_mcode = 88, .tr_traceno = 104,       \
  .tr_link = 106, .tr_root = 108, .tr_linktype = 116, .snap_size = 12,         \
  .snap_mapofs = 0, .snap_mcofs = 6, .snap_nent = 10, .L_openupval = 64,       \
  .L_env = 72, .g_gc_mmudata = 80, .g_ngcroot = 38, .tab_colo = 11,            \
  .tab_size = 64, .ud_env = 16, .ud_len = 24, .ud_metatable = 32,              \
  .ud_size = 48, .cd_ctypeid = 10, .cd_size = 16, .cts_tab = 0,                \
  .ctype_size = 24, .uv_next = 24, .uv_v = 32, .uv_size = 48, .fn_env = 16,    \
  .fn_cupvalue = 48, .pt_sizept = 56, .tr_nins = 12, .tr_nk = 40,              \
  .tr_nsnapmap = 44, .tr_size = 120, .irins_size = 8

/* jit_State beyond param[], and the bytecode numbering: the same in both
 * Debian builds (offsetof on both trees), not known for head. */
#define LJ21_JIT                                                               \
  .J_penalty = 1824, .J_penaltyslot = 2848, .J_errinfo = 3088,                 \
  .J_mctop = 3056, .J_mcbot = 3064, .g_dispatchmode = 146, .snap_count = 11,   \
  .penalty_size = 16, .bc_forl = 79, .bc_funcf = 89, .bc_iterc = 69,           \
  .bc_max = 97

static const struct lj_layout layouts[] = {
    {
        /* Debian 12 `luajit`: upstream 2.1 as of 2022-03 */
        LJ21_COMMON,
        LJ21_JIT,
        .flavor = LJ_FLAVOR_UPSTREAM,
        .gg_g = 96,
        .gg_J = 824,
        .gg_hotcount = 3936,
        .gg_dispatch = 4064,
        .gg_size = 6240,
        .dispatch_len = 243,
        .L_size = 96,
        .g_cur_L = 368,
        .g_jit_base = 376,
        .J_param = 1632,
        .g_uvhead = 280,
        .g_ctype_state = 384,
        .g_gcroot = 424,
    },
    {
        /* Debian 12 `luajit2`: openresty/luajit2 v2.1-20230119; lua_State
         * carries exdata, exdata2 */
        LJ21_COMMON,
        LJ21_JIT,
        .flavor = LJ_FLAVOR_OPENRESTY,
        .gg_g = 112,
        .gg_J = 848,
        .gg_hotcount = 3992,
        .gg_dispatch = 4120,
        .gg_size = 6296,
        .dispatch_len = 243,
        .L_size = 112,
        .g_cur_L = 368,
        .g_jit_base = 376,
        .J_param = 1632,
        .g_uvhead = 280,
        .g_ctype_state = 384,
        .g_gcroot = 424,
    },
    {
        /* upstream v2.1 after the 2023 rewrites (more bytecodes) */
        LJ21_COMMON,
        .flavor = LJ_FLAVOR_HEAD,
        .gg_g = 96,
        .gg_J = 840,
        .gg_hotcount = 3968,
        .gg_dispatch = 4096,
        .gg_size = 6384,
        .dispatch_len = 257,
        .L_size = 96,
        .g_cur_L = 376,
        .g_jit_base = 384,
        .J_param = 1636,
        .g_uvhead = 288,
        .g_ctype_state = 392,
        .g_gcroot = 432,
    },
};

const struct lj_layout *lj_layout_for(enum lj_flavor flavor)
{
  for (size_t i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++)
    if (layouts[i].flavor == (__u32)flavor) return &layouts[i];
  return NULL;
}

const char *lj_flavor_name(enum lj_flavor flavor)
{
  switch (flavor) {
  case LJ_FLAVOR_UPSTREAM: return "upstream";
  case LJ_FLAVOR_OPENRESTY: return "openresty";
  case LJ_FLAVOR_HEAD: return "head";
  default: return "unknown";
  }
}
